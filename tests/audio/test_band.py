"""Band accompaniment: the MIDI writer, determinism, the no-voice rule and a real render."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import soundfile as sf

from vocalsep.audio import band
from vocalsep.core.errors import VocalsepError


def read_midi(data: bytes) -> tuple[tuple[int, int, int], list[list[tuple[int, bytes]]]]:
    """(format, tracks, division) and every track's (absolute tick, message) events."""

    def number(start: int, size: int) -> int:
        return int.from_bytes(data[start : start + size], "big")

    def variable_length(position: int) -> tuple[int, int]:
        value = 0
        while True:
            byte = data[position]
            value, position = (value << 7) | (byte & 0x7F), position + 1
            if byte < 0x80:
                return value, position

    assert data[:4] == b"MThd" and number(4, 4) == 6
    header = (number(8, 2), number(10, 2), number(12, 2))
    tracks, position = [], 14
    while position < len(data):
        assert data[position : position + 4] == b"MTrk"
        end = position + 8 + number(position + 4, 4)
        events, tick, position, status = [], 0, position + 8, 0
        while position < end:
            delta, position = variable_length(position)
            tick += delta
            if data[position] == 0xFF:  # meta: FF type length data
                length, start = variable_length(position + 2)
                message, position = data[position : start + length], start + length
            else:
                if data[position] & 0x80:
                    status, position = data[position], position + 1
                size = 1 if status >> 4 in (0xC, 0xD) else 2
                message = bytes([status]) + data[position : position + size]
                position += size
            events.append((tick, message))
        assert position == end
        tracks.append(events)
    assert len(tracks) == header[1]
    return header, tracks


@pytest.fixture(scope="module")
def song() -> band.Song:
    return band.compose_song(np.random.default_rng(3), seconds=40, style="funk")


def test_variable_length_quantities():
    examples = {0: "00", 0x7F: "7f", 0x80: "8100", 0x3FFF: "ff7f", 0x200000: "81808000"}
    for value, encoded in examples.items():
        assert band._variable_length(value).hex() == encoded


def test_midi_file_holds_tempo_programs_and_notes(song):
    (form, count, division), tracks = read_midi(band.midi_bytes(song))
    assert (form, count, division) == (1, len(song.parts) + 1, band.TICKS_PER_BEAT)
    tempo = [m for _, m in tracks[0] if m[:2] == b"\xff\x51"]
    assert int.from_bytes(tempo[0][3:], "big") == round(60_000_000 / song.tempo)
    for part, events in zip(song.parts, tracks[1:], strict=True):
        assert events[-1][1] == b"\xff\x2f\x00"
        programs = [m for _, m in events if m[0] >> 4 == 0xC]
        assert programs == [bytes([0xC0 | part.channel, part.program])]
        ons = [(t, m) for t, m in events if m[0] >> 4 == 0x9]
        offs = [(t, m) for t, m in events if m[0] >> 4 == 0x8]
        assert len(ons) == len(offs) == len(part.notes) > 0
        assert {m[0] & 0x0F for _, m in ons + offs} == {part.channel}
        assert all(1 <= m[2] <= 127 for _, m in ons)
        sounding: dict[int, int] = {}  # every note-off ends a sounding note of its pitch
        for _, message in events:
            if message[0] >> 4 == 0x9:
                assert not sounding.get(message[1])
                sounding[message[1]] = 1
            elif message[0] >> 4 == 0x8:
                assert sounding.pop(message[1]) == 1
    drums = [part for part in song.parts if part.name == "drums"]
    assert len(drums) == 1 and drums[0].channel == band.DRUM_CHANNEL == 9
    assert len({part.channel for part in song.parts}) == len(song.parts)


def test_same_seed_same_bytes():
    first = band.midi_bytes(band.compose_song(np.random.default_rng([7, 1])))
    again = band.midi_bytes(band.compose_song(np.random.default_rng([7, 1])))
    other = band.midi_bytes(band.compose_song(np.random.default_rng([7, 2])))
    assert first == again != other


@pytest.mark.parametrize("style", sorted(band.STYLES))
def test_songs_have_no_voice_like_or_lead_instrument(style):
    pools = band.STYLES[style]
    assert not {p for _, programs in pools.comping for p in programs} & band.FORBIDDEN_PROGRAMS
    assert {52, 53, 54, 85, 91} <= band.FORBIDDEN_PROGRAMS
    for seed in range(4):
        song = band.compose_song(np.random.default_rng(seed), seconds=30, style=style)
        assert song.style == style and {"drums", "bass"} <= {p.name for p in song.parts}
        for part in song.parts:
            if part.name == "drums" or part.name == "bass":
                continue
            assert part.program not in band.FORBIDDEN_PROGRAMS
            if part.name.startswith("arpeggio"):
                continue
            # No line of single notes: chordal parts strike at least 2 notes at most onsets
            # (a strum spreads one chord's notes over up to ~0.2 beats).
            starts = np.sort([note.start for note in part.notes])
            sizes = np.diff(np.flatnonzero(np.diff(starts, prepend=-1, append=1e9) > 0.25))
            assert np.mean(sizes >= 2) > 0.9, part.name


def test_song_lengths_follow_the_request():
    for seed in range(6):
        song = band.compose_song(np.random.default_rng(seed))
        assert 60 <= song.seconds <= 150
    song = band.compose_song(np.random.default_rng(0), seconds=90, style="ballad")
    assert 90 - 8 * 60 / song.tempo <= song.seconds <= 90


def test_missing_fluidsynth_is_a_one_line_error(monkeypatch, tmp_path):
    monkeypatch.setattr(band.shutil, "which", lambda name: None)
    with pytest.raises(VocalsepError, match="apt-get install fluidsynth fluid-soundfont-gm"):
        band.render_song(band.compose_song(np.random.default_rng(0), 5), tmp_path / "x.flac")
    with pytest.raises(band.BandRenderError, match="fluid-soundfont-gm"):
        band.find_soundfont(tmp_path / "missing.sf2")
    assert not list(tmp_path.iterdir())


def _renderable() -> bool:
    try:
        band.find_soundfont()
    except band.BandRenderError:
        return False
    return shutil.which("fluidsynth") is not None


@pytest.mark.skipif(not _renderable(), reason="needs apt-get install fluidsynth fluid-soundfont-gm")
def test_render_a_short_song(tmp_path):
    song = band.compose_song(np.random.default_rng(1), seconds=5, style="rock")
    path = band.render_song(song, tmp_path / "song.flac")
    info = sf.info(str(path))
    assert (info.samplerate, info.channels, info.subtype) == (44100, 2, "PCM_16")
    assert 3 < info.duration <= song.seconds + 1
    audio, _ = sf.read(str(path), always_2d=True)
    rms = np.sqrt(np.mean(audio**2, axis=0))
    assert (rms > 0.02).all() and np.abs(audio).max() <= 0.96


def test_plan_songs_is_reproducible_and_keeps_to_the_styles():
    songs = band.plan_songs(0, 4)
    # Song k comes from the generator [seed, k] alone (a resumed render plans the same songs).
    assert songs == [band.compose_song(np.random.default_rng([0, k])) for k in range(len(songs))]
    assert sum(song.seconds for song in songs) >= 4 * 60 > sum(s.seconds for s in songs[:-1])
    rock_pop = band.plan_songs(2, 12, ["rock", "pop"])
    assert {song.style for song in rock_pop} == {"rock", "pop"}
    assert band.plan_songs(2, 12, ["pop", "rock", "rock"]) == rock_pop
    with pytest.raises(band.BandRenderError, match="unknown style jazz"):
        band.plan_songs(0, 1, ["rock", "jazz"])


def test_render_script_rejects_an_unknown_style(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).parents[2] / "recipes" / "synthetic" / "render_band.py"
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "out"), "--styles", "rock,jazz"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: --styles: unknown style jazz (known: ballad, electronic, funk, pop, rock)"
    ]
    assert not (tmp_path / "out").exists()


def test_amp_overdrives_rolls_off_the_top_and_keeps_the_level():
    rate = 44100
    t = np.arange(rate) / rate
    tone = np.stack([0.2 * np.sin(2 * np.pi * 220 * t)] * 2).astype(np.float32)
    out = band.amp(tone, 18.0, rate)
    assert out.shape == tone.shape
    assert np.sqrt(np.mean(out**2)) == pytest.approx(np.sqrt(np.mean(tone**2)), rel=1e-3)
    spectrum = np.abs(np.fft.rfft(out[0]))  # 1 Hz bins
    assert spectrum[660] > 0.1 * spectrum[220]  # a strong third harmonic
    # the cabinet, a 2nd-order low-pass at 5 kHz: the 69th harmonic (15.18 kHz) keeps about
    # a tenth of what plain tanh gives it, the 5th (1.1 kHz) nearly all
    raw = np.abs(np.fft.rfft(np.tanh(tone[0] * 10 ** (18 / 20) / 0.2)))
    assert spectrum[15180] / spectrum[220] < 0.15 * raw[15180] / raw[220]
    assert spectrum[1100] / spectrum[220] > 0.95 * raw[1100] / raw[220]
    assert not np.any(band.amp(np.zeros((2, 100), np.float32), 18.0, rate))


def test_driven_guitars_are_the_overdrive_and_distortion_programs(song):
    guitars = [part for part in song.parts if band._is_driven_guitar(part)]
    assert all(part.program in (29, 30) for part in guitars)
    drums = next(part for part in song.parts if part.channel == band.DRUM_CHANNEL)
    assert not band._is_driven_guitar(drums)


@pytest.mark.skipif(not _renderable(), reason="needs apt-get install fluidsynth fluid-soundfont-gm")
def test_guitar_drive_changes_only_songs_with_driven_guitars(tmp_path):
    songs = band.plan_songs(2, 6, ["rock"])
    with_guitars = next(s for s in songs if any(band._is_driven_guitar(p) for p in s.parts))
    short = band.compose_song(np.random.default_rng(5), seconds=4, style="pop")
    for name, song in (("rock", with_guitars), ("pop", short)):
        plain = band.render_song(song, tmp_path / f"{name}-plain.flac")
        driven = band.render_song(song, tmp_path / f"{name}-driven.flac", guitar_drive_db=18.0)
        a, _ = sf.read(str(plain), always_2d=True)
        b, _ = sf.read(str(driven), always_2d=True)
        has_guitars = any(band._is_driven_guitar(p) for p in song.parts)
        assert (a.shape == b.shape) and (np.abs(a - b).max() > 0.01) == has_guitars


def test_render_script_rejects_a_bad_guitar_drive(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).parents[2] / "recipes" / "synthetic" / "render_band.py"
    for value in ("10", "20,10", "x,3", "0,5"):
        result = subprocess.run(
            [sys.executable, str(script), str(tmp_path / "out"), "--guitar-drive", value],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 2, value
        assert result.stderr.strip().splitlines() == [
            f"error: --guitar-drive must be LOW,HIGH in dB with 0 < LOW <= HIGH, got {value!r}"
        ]
    assert not (tmp_path / "out").exists()
