"""Paired track folders and MUSDB18: discovery, loading, rates, channel and length rules."""

import shutil
import sys

import numpy as np
import pytest
import soundfile as sf
from support import make_musdb_hq, make_musdb_stems, synth_stems, write_track, write_wav

from vocalsep.audio.errors import AudioDecodeError
from vocalsep.audio.io import resample
from vocalsep.audio.tracks import (
    LENGTH_TOLERANCE_SECONDS,
    MusdbTrack,
    Track,
    TrackError,
    find_folder_tracks,
    load_track,
    musdb_tracks,
    track_sample_rate,
)

RATE = 8000


def test_find_folder_tracks(tmp_path):
    vocals, accompaniment = synth_stems(RATE, RATE)
    write_track(tmp_path / "b-song", vocals, accompaniment, RATE)
    write_track(tmp_path / "a-song", vocals, accompaniment, RATE, mixture=False, ext="flac")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("not a track")
    write_track(tmp_path / ".hidden", vocals, accompaniment, RATE)
    (tmp_path / "b-song" / "vocals.txt").write_text("not audio")
    tracks = find_folder_tracks(tmp_path)
    assert [track.name for track in tracks] == ["a-song", "b-song"]
    assert isinstance(tracks[0], Track)
    assert set(tracks[0].paths) == {"vocals", "accompaniment"}
    assert tracks[1].paths["mixture"] == tmp_path / "b-song" / "mixture.wav"


@pytest.mark.parametrize(
    "layout,phrase",
    [
        ("missing", "does not exist"),
        ("empty", "holds no track folders"),
        ("single", "looks like one track"),
        ("no_accompaniment", "no accompaniment"),
        ("two_vocals", "two vocals files"),
    ],
)
def test_bad_folders(tmp_path, layout, phrase):
    vocals, accompaniment = synth_stems(RATE, RATE)
    root = tmp_path / "data"
    if layout != "missing":
        root.mkdir()
    if layout == "single":
        write_track(root, vocals, accompaniment, RATE)
    elif layout == "no_accompaniment":
        write_wav(root / "song" / "vocals.wav", vocals, RATE)
        write_wav(root / "song" / "mixture.wav", vocals, RATE)
    elif layout == "two_vocals":
        write_track(root / "song", vocals, accompaniment, RATE)
        write_wav(root / "song" / "vocals.flac", vocals, RATE, "PCM_16")
    with pytest.raises(TrackError, match=phrase) as error:
        find_folder_tracks(root)
    assert "\n" not in str(error.value) and str(root) in str(error.value)


def test_load_track_resamples_to_the_mixture_rate(tmp_path):
    vocals, accompaniment = synth_stems(RATE, RATE * 2, channels=2)
    folder = tmp_path / "song"
    write_wav(folder / "mixture.wav", vocals + accompaniment, RATE)
    write_wav(folder / "vocals.flac", resample(vocals, RATE, 16000), 16000, "PCM_24")
    write_wav(folder / "accompaniment.wav", resample(accompaniment, RATE, 11025), 11025)
    (track,) = find_folder_tracks(tmp_path)
    assert track_sample_rate(track) == RATE
    audio = load_track(track)
    assert set(audio) == {"mixture", "vocals", "accompaniment"}
    assert all(
        value.shape == (2, RATE * 2) and value.dtype == np.float32 for value in audio.values()
    )
    # resampled round trips stay close to the originals, away from the edges
    middle = slice(200, -200)
    assert np.abs(audio["vocals"][:, middle] - vocals[:, middle]).max() < 1e-2
    assert np.abs(audio["accompaniment"][:, middle] - accompaniment[:, middle]).max() < 2e-2
    at_16k = load_track(track, sample_rate=16000)
    assert all(value.shape == (2, 32000) for value in at_16k.values())


def test_missing_mixture_is_the_sum(tmp_path):
    vocals, accompaniment = synth_stems(RATE, RATE)
    (track,) = find_folder_tracks(
        write_track(tmp_path / "song", vocals, accompaniment, RATE, mixture=False).parent
    )
    audio = load_track(track)
    np.testing.assert_allclose(audio["mixture"], vocals + accompaniment, atol=1e-7)


def test_channel_rule(tmp_path):
    stereo_vocals, stereo_accompaniment = synth_stems(RATE, RATE, channels=2)
    # stereo mixture, mono vocals: the vocals are copied to both channels
    folder = write_track(tmp_path / "a" / "song", stereo_vocals, stereo_accompaniment, RATE)
    write_wav(folder / "vocals.wav", stereo_vocals[:1], RATE)
    audio = load_track(find_folder_tracks(tmp_path / "a")[0])
    assert audio["vocals"].shape == (2, RATE)
    np.testing.assert_array_equal(audio["vocals"][0], audio["vocals"][1])
    # mono mixture, stereo references: the references are averaged to mono
    folder = write_track(tmp_path / "b" / "song", stereo_vocals, stereo_accompaniment, RATE)
    write_wav(folder / "mixture.wav", (stereo_vocals + stereo_accompaniment).mean(0), RATE)
    audio = load_track(find_folder_tracks(tmp_path / "b")[0])
    assert all(value.shape == (1, RATE) for value in audio.values())
    np.testing.assert_allclose(audio["vocals"][0], stereo_vocals.mean(0), atol=1e-7)
    # no mixture: the references meet at the larger channel count
    folder = write_track(tmp_path / "c" / "song", stereo_vocals, stereo_accompaniment, RATE)
    (folder / "mixture.wav").unlink()
    write_wav(folder / "vocals.wav", stereo_vocals[:1], RATE)
    assert load_track(find_folder_tracks(tmp_path / "c")[0])["mixture"].shape == (2, RATE)
    # stereo against three channels cannot be converted
    folder = write_track(tmp_path / "d" / "song", stereo_vocals, stereo_accompaniment, RATE)
    write_wav(folder / "accompaniment.wav", np.concatenate([stereo_accompaniment] * 2)[:3], RATE)
    with pytest.raises(TrackError, match="3 channels"):
        load_track(find_folder_tracks(tmp_path / "d")[0])


def test_length_rule(tmp_path):
    vocals, accompaniment = synth_stems(RATE, RATE * 2)
    folder = write_track(tmp_path / "song", vocals, accompaniment, RATE)
    slack = int(LENGTH_TOLERANCE_SECONDS * RATE) - 1
    write_wav(folder / "vocals.wav", vocals[:, :-slack], RATE)  # a little short: cut to fit
    audio = load_track(find_folder_tracks(tmp_path)[0])
    assert all(value.shape == (1, RATE * 2 - slack) for value in audio.values())
    write_wav(folder / "vocals.wav", vocals[:, : RATE // 2], RATE)  # far too short
    with pytest.raises(TrackError, match="one length"):
        load_track(find_folder_tracks(tmp_path)[0])


def test_corrupt_file_is_a_one_line_error(tmp_path):
    vocals, accompaniment = synth_stems(RATE, RATE)
    folder = write_track(tmp_path / "song", vocals, accompaniment, RATE)
    (folder / "accompaniment.wav").write_bytes(b"RIFF" + bytes(100))
    with pytest.raises(AudioDecodeError, match="accompaniment.wav") as error:
        load_track(find_folder_tracks(tmp_path)[0])
    assert "\n" not in str(error.value)


# -- MUSDB18 ---------------------------------------------------------------------------------


needs_musdb = pytest.mark.skipif(
    shutil.which("ffprobe") is None, reason="musdb reads audio through ffmpeg/ffprobe"
)


@needs_musdb
def test_musdb_tracks(tmp_path):
    pytest.importorskip("musdb")
    root = make_musdb_hq(tmp_path / "musdb")
    tracks = musdb_tracks(root, subset="test", is_wav=True)
    assert [track.name for track in tracks] == ["Artist - One", "Artist - Two"]
    assert isinstance(tracks[0], MusdbTrack) and track_sample_rate(tracks[0]) == 44100
    audio = load_track(tracks[0])
    assert all(value.shape == (2, 44100) and value.dtype == np.float32 for value in audio.values())
    drums, _ = sf.read(root / "test" / "Artist - One" / "drums.wav", dtype="float32")
    bass, _ = sf.read(root / "test" / "Artist - One" / "bass.wav", dtype="float32")
    other, _ = sf.read(root / "test" / "Artist - One" / "other.wav", dtype="float32")
    np.testing.assert_allclose(audio["accompaniment"], (drums + bass + other).T, atol=1e-4)
    assert load_track(tracks[0], sample_rate=22050)["vocals"].shape == (2, 22050)


@needs_musdb
def test_musdb_stem_mp4(tmp_path):
    # MUSDB18 as distributed: one .stem.mp4 per track, decoded by musdb/stempeg with ffmpeg.
    pytest.importorskip("musdb")
    root, wav = make_musdb_stems(tmp_path / "musdb")
    tracks = musdb_tracks(root, subset="test")
    assert [track.name for track in tracks] == ["Artist - One", "Artist - Two"]
    assert track_sample_rate(tracks[0]) == 44100
    audio = load_track(tracks[0])
    assert sorted(audio) == ["accompaniment", "mixture", "vocals"]
    for value in audio.values():
        assert value.dtype == np.float32 and value.shape[0] == 2
        assert abs(value.shape[1] - 44100) <= 2048, value.shape  # AAC frames round the length
    folder = wav / "test" / "Artist - One"
    reference = {
        "vocals": sf.read(folder / "vocals.wav", dtype="float32")[0].T,
        "accompaniment": sum(
            sf.read(folder / f"{stem}.wav", dtype="float32")[0].T
            for stem in ("drums", "bass", "other")
        ),
    }
    for stem, expected in reference.items():
        n = min(expected.shape[1], audio[stem].shape[1])
        error = audio[stem][:, :n] - expected[:, :n]
        snr = 10 * np.log10(np.sum(expected[:, :n] ** 2) / np.sum(error**2))
        assert snr > 15, (stem, snr)  # the right streams, aligned (lossy AAC, not exact)


def test_musdb_errors(tmp_path, monkeypatch):
    pytest.importorskip("musdb")
    with pytest.raises(TrackError, match="train/ and test/"):
        musdb_tracks(tmp_path / "missing")
    (tmp_path / "empty" / "test").mkdir(parents=True)
    with pytest.raises(TrackError, match="no MUSDB18 tracks"):
        musdb_tracks(tmp_path / "empty")
    monkeypatch.setitem(sys.modules, "musdb", None)  # as if the extra were not installed
    with pytest.raises(TrackError, match=r"pip install 'vocalsep\[train\]'"):
        musdb_tracks(tmp_path / "empty")
