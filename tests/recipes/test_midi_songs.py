"""recipes/synthetic/midi_songs.py (band accompaniment): the MIDI file, determinism, the
no-voice rule and a real render."""

from __future__ import annotations

import io
import shutil

import midi_songs
import mido
import numpy as np
import pytest
import soundfile as sf

from vocalsep.core.errors import VocalsepError


def read_midi(data: bytes) -> tuple[mido.MidiFile, list[list[tuple[int, mido.Message]]]]:
    """The file as mido reads it back, and every track's (absolute tick, message) events."""
    midi = mido.MidiFile(file=io.BytesIO(data))
    tracks = []
    for track in midi.tracks:
        events, tick = [], 0
        for message in track:
            tick += message.time
            events.append((tick, message))
        tracks.append(events)
    return midi, tracks


@pytest.fixture(scope="module")
def song() -> midi_songs.Song:
    return midi_songs.compose_song(np.random.default_rng(3), seconds=40, style="funk")


def test_event_times_survive_the_file(song):
    """Delta times of one, two and three bytes read back as the ticks the notes were given."""
    data = midi_songs.midi_bytes(song)
    midi, tracks = read_midi(data)
    end_tick = midi_songs._ticks(song.beats)
    assert end_tick > 0x3FFF  # the conductor's end-of-track delta takes three bytes
    assert [(t, m.type) for t, m in tracks[0]][-1] == (end_tick, "end_of_track")
    deltas = {m.time for track in midi.tracks for m in track}
    assert min(deltas) == 0 and any(0x7F < d <= 0x3FFF for d in deltas)
    for part, events in zip(song.parts, tracks[1:], strict=True):
        starts = sorted((midi_songs._ticks(note.start), note.pitch) for note in part.notes)
        ons = sorted((t, m.note) for t, m in events if m.type == "note_on")
        assert ons == starts
        assert events[-1][0] == end_tick


def test_midi_file_holds_tempo_programs_and_notes(song):
    midi, tracks = read_midi(midi_songs.midi_bytes(song))
    assert (midi.type, len(midi.tracks), midi.ticks_per_beat) == (
        1,
        len(song.parts) + 1,
        midi_songs.TICKS_PER_BEAT,
    )
    tempo = [m for _, m in tracks[0] if m.type == "set_tempo"]
    assert tempo[0].tempo == round(60_000_000 / song.tempo)
    signature = [m for _, m in tracks[0] if m.type == "time_signature"]
    assert [(m.numerator, m.denominator) for m in signature] == [(4, 4)]
    for part, events in zip(song.parts, tracks[1:], strict=True):
        assert events[-1][1].type == "end_of_track"
        channel = part.channel
        assert [m for _, m in events[:5]] == [  # at tick 0, in this order
            mido.MetaMessage("track_name", name=part.name),
            mido.Message("control_change", channel=channel, control=7, value=part.volume),
            mido.Message("control_change", channel=channel, control=10, value=part.pan),
            mido.Message("control_change", channel=channel, control=91, value=part.reverb),
            mido.Message("program_change", channel=channel, program=part.program),
        ]
        programs = [m for _, m in events if m.type == "program_change"]
        assert [(m.channel, m.program) for m in programs] == [(part.channel, part.program)]
        ons = [(t, m) for t, m in events if m.type == "note_on"]
        offs = [(t, m) for t, m in events if m.type == "note_off"]
        assert len(ons) == len(offs) == len(part.notes) > 0
        assert {m.channel for _, m in ons + offs} == {part.channel}
        assert all(1 <= m.velocity <= 127 for _, m in ons)
        sounding: dict[int, int] = {}  # every note-off ends a sounding note of its pitch
        for _, message in events:
            if message.type == "note_on":
                assert not sounding.get(message.note)
                sounding[message.note] = 1
            elif message.type == "note_off":
                assert sounding.pop(message.note) == 1
    drums = [part for part in song.parts if part.name == "drums"]
    assert len(drums) == 1 and drums[0].channel == midi_songs.DRUM_CHANNEL == 9
    assert len({part.channel for part in song.parts}) == len(song.parts)


def test_same_seed_same_bytes():
    first = midi_songs.midi_bytes(midi_songs.compose_song(np.random.default_rng([7, 1])))
    again = midi_songs.midi_bytes(midi_songs.compose_song(np.random.default_rng([7, 1])))
    other = midi_songs.midi_bytes(midi_songs.compose_song(np.random.default_rng([7, 2])))
    assert first == again != other


@pytest.mark.parametrize("style", sorted(midi_songs.STYLES))
def test_songs_have_no_voice_like_or_lead_instrument(style):
    pools = midi_songs.STYLES[style]
    forbidden = midi_songs.FORBIDDEN_PROGRAMS
    assert not {p for _, programs in pools.comping for p in programs} & forbidden
    assert {52, 53, 54, 85, 91} <= forbidden
    for seed in range(4):
        song = midi_songs.compose_song(np.random.default_rng(seed), seconds=30, style=style)
        assert song.style == style and {"drums", "bass"} <= {p.name for p in song.parts}
        for part in song.parts:
            if part.name == "drums" or part.name == "bass":
                continue
            assert part.program not in forbidden
            if part.name.startswith("arpeggio"):
                continue
            # No line of single notes: chordal parts strike at least 2 notes at most onsets
            # (a strum spreads one chord's notes over up to ~0.2 beats).
            starts = np.sort([note.start for note in part.notes])
            sizes = np.diff(np.flatnonzero(np.diff(starts, prepend=-1, append=1e9) > 0.25))
            assert np.mean(sizes >= 2) > 0.9, part.name


def test_song_lengths_follow_the_request():
    for seed in range(6):
        song = midi_songs.compose_song(np.random.default_rng(seed))
        assert 60 <= song.seconds <= 150
    song = midi_songs.compose_song(np.random.default_rng(0), seconds=90, style="ballad")
    assert 90 - 8 * 60 / song.tempo <= song.seconds <= 90


def test_missing_fluidsynth_is_a_one_line_error(monkeypatch, tmp_path):
    monkeypatch.setattr(midi_songs.shutil, "which", lambda name: None)
    with pytest.raises(VocalsepError, match="apt-get install fluidsynth fluid-soundfont-gm"):
        song = midi_songs.compose_song(np.random.default_rng(0), 5)
        midi_songs.render_song(song, tmp_path / "x.flac")
    with pytest.raises(midi_songs.BandRenderError, match="fluid-soundfont-gm"):
        midi_songs.find_soundfont(tmp_path / "missing.sf2")
    assert not list(tmp_path.iterdir())


def _renderable() -> bool:
    try:
        midi_songs.find_soundfont()
    except midi_songs.BandRenderError:
        return False
    return shutil.which("fluidsynth") is not None


@pytest.mark.skipif(not _renderable(), reason="needs apt-get install fluidsynth fluid-soundfont-gm")
def test_render_a_short_song(tmp_path):
    song = midi_songs.compose_song(np.random.default_rng(1), seconds=5, style="rock")
    path = midi_songs.render_song(song, tmp_path / "song.flac")
    info = sf.info(str(path))
    assert (info.samplerate, info.channels, info.subtype) == (44100, 2, "PCM_16")
    assert 3 < info.duration <= song.seconds + 1
    audio, _ = sf.read(str(path), always_2d=True)
    rms = np.sqrt(np.mean(audio**2, axis=0))
    assert (rms > 0.02).all() and np.abs(audio).max() <= 0.96


def test_plan_songs_is_reproducible_and_keeps_to_the_styles():
    songs = midi_songs.plan_songs(0, 4)
    # Song k comes from the generator [seed, k] alone (a resumed render plans the same songs).
    compose = midi_songs.compose_song
    assert songs == [compose(np.random.default_rng([0, k])) for k in range(len(songs))]
    assert sum(song.seconds for song in songs) >= 4 * 60 > sum(s.seconds for s in songs[:-1])
    rock_pop = midi_songs.plan_songs(2, 12, ["rock", "pop"])
    assert {song.style for song in rock_pop} == {"rock", "pop"}
    assert midi_songs.plan_songs(2, 12, ["pop", "rock", "rock"]) == rock_pop
    with pytest.raises(midi_songs.BandRenderError, match="unknown style jazz"):
        midi_songs.plan_songs(0, 1, ["rock", "jazz"])


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
    out = midi_songs.amp(tone, 18.0, rate)
    assert out.shape == tone.shape
    assert np.sqrt(np.mean(out**2)) == pytest.approx(np.sqrt(np.mean(tone**2)), rel=1e-3)
    spectrum = np.abs(np.fft.rfft(out[0]))  # 1 Hz bins
    assert spectrum[660] > 0.1 * spectrum[220]  # a strong third harmonic
    # the cabinet, a 2nd-order low-pass at 5 kHz: the 69th harmonic (15.18 kHz) keeps about
    # a tenth of what plain tanh gives it, the 5th (1.1 kHz) nearly all
    raw = np.abs(np.fft.rfft(np.tanh(tone[0] * 10 ** (18 / 20) / 0.2)))
    assert spectrum[15180] / spectrum[220] < 0.15 * raw[15180] / raw[220]
    assert spectrum[1100] / spectrum[220] > 0.95 * raw[1100] / raw[220]
    assert not np.any(midi_songs.amp(np.zeros((2, 100), np.float32), 18.0, rate))


def test_driven_guitars_are_the_overdrive_and_distortion_programs(song):
    guitars = [part for part in song.parts if midi_songs._is_driven_guitar(part)]
    assert all(part.program in (29, 30) for part in guitars)
    drums = next(part for part in song.parts if part.channel == midi_songs.DRUM_CHANNEL)
    assert not midi_songs._is_driven_guitar(drums)


@pytest.mark.skipif(not _renderable(), reason="needs apt-get install fluidsynth fluid-soundfont-gm")
def test_guitar_drive_changes_only_songs_with_driven_guitars(tmp_path):
    songs = midi_songs.plan_songs(2, 6, ["rock"])
    with_guitars = next(s for s in songs if any(midi_songs._is_driven_guitar(p) for p in s.parts))
    short = midi_songs.compose_song(np.random.default_rng(5), seconds=4, style="pop")
    for name, song in (("rock", with_guitars), ("pop", short)):
        plain = midi_songs.render_song(song, tmp_path / f"{name}-plain.flac")
        driven = midi_songs.render_song(
            song, tmp_path / f"{name}-driven.flac", guitar_drive_db=18.0
        )
        a, _ = sf.read(str(plain), always_2d=True)
        b, _ = sf.read(str(driven), always_2d=True)
        has_guitars = any(midi_songs._is_driven_guitar(p) for p in song.parts)
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
