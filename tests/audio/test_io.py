"""Tests of vocalsep.audio.io on small audio synthesized in tmp_path."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys

import numpy as np
import pytest
import soundfile
from support import write_damaged_mp3

from vocalsep.audio.errors import AudioDecodeError, AudioWriteError, InvalidAudioError
from vocalsep.audio.io import (
    AUDIO_EXTENSIONS,
    AudioInfo,
    check_audio,
    load_audio,
    open_audio,
    resample,
)
from vocalsep.audio.writer import AudioWriter, write_audio
from vocalsep.core.errors import OutputExistsError, VocalsepError, VocalsepWarning

SR = 16000
needs_ffmpeg = pytest.mark.skipif(
    not (shutil.which("ffmpeg") and shutil.which("ffprobe")), reason="ffmpeg is not installed"
)
posix_only = pytest.mark.skipif(os.name != "posix", reason="fake executables need a POSIX shell")


def sine(freq: float = 440.0, seconds: float = 0.5, channels: int = 2, sr: int = SR) -> np.ndarray:
    """`(channels, samples)` float32 sines at amplitude 0.5, one octave apart per channel."""
    t = np.arange(round(seconds * sr)) / sr
    return np.stack([0.5 * np.sin(2 * np.pi * freq * 2**c * t) for c in range(channels)]).astype(
        np.float32
    )


def noise(channels: int = 2, samples: int = 4000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(-0.5, 0.5, (channels, samples)).astype(np.float32)


def listing(path) -> list[str]:
    return sorted(os.listdir(path))


def test_errors_are_vocalsep_errors():
    for error in (AudioDecodeError, InvalidAudioError, AudioWriteError):
        assert issubclass(error, VocalsepError)
    assert {".wav", ".flac", ".mp3", ".m4a", ".opus", ".w64"} <= AUDIO_EXTENSIONS


@pytest.mark.parametrize(
    ("format", "bit_depth", "tolerance"),
    [("wav", "16", 2**-15), ("wav", "24", 2**-23), ("wav", "32f", 0.0), ("flac", "16", 2**-15),
     ("flac", "24", 2**-23)],
)  # fmt: skip
def test_lossless_round_trip(tmp_path, format, bit_depth, tolerance):
    audio = noise(channels=3)
    path = write_audio(tmp_path / f"out.{format}", audio, SR, format, bit_depth)
    with open_audio(path) as reader:
        assert reader.info == AudioInfo(SR, 3, audio.shape[1], "soundfile")
    loaded, rate = load_audio(path)
    assert rate == SR and loaded.dtype == np.float32 and loaded.shape == audio.shape
    assert np.abs(loaded - audio).max() <= tolerance
    assert soundfile.info(str(path)).subtype == {"16": "PCM_16", "24": "PCM_24"}.get(
        bit_depth, "FLOAT"
    )


@pytest.mark.parametrize(("format", "subtype"), [("OGG", "VORBIS"), ("MP3", "MPEG_LAYER_III")])
def test_lossy_round_trip(tmp_path, format, subtype):
    if format not in soundfile.available_formats():
        pytest.skip(f"this libsndfile cannot write {format}")
    audio = sine(seconds=1.0, sr=44100)
    path = tmp_path / f"song.{format.lower()}"
    soundfile.write(path, audio.T, 44100, format=format, subtype=subtype)
    loaded, rate = load_audio(path)
    assert rate == 44100 and loaded.shape[0] == 2
    assert abs(loaded.shape[1] - audio.shape[1]) <= 2048  # codec delay and padding
    rms = np.sqrt(np.mean(loaded**2, axis=1))
    assert np.allclose(rms, 0.5 / np.sqrt(2), rtol=0.1)


@pytest.mark.parametrize("block_frames", [1, 7, 1000, 4000, 4001, 100000])
def test_blocks_concatenate_to_the_whole(tmp_path, block_frames):
    audio = noise(samples=4000)
    path = write_audio(tmp_path / "a.wav", audio, SR, bit_depth="32f")
    with open_audio(path) as reader:
        blocks = list(reader.blocks(block_frames))
        again = np.concatenate(list(reader.blocks(block_frames)), axis=1)  # restarts at 0
    assert all(b.dtype == np.float32 and b.flags.c_contiguous for b in blocks)
    assert all(b.shape == (2, block_frames) for b in blocks[:-1])
    assert 1 <= blocks[-1].shape[1] <= block_frames
    np.testing.assert_array_equal(np.concatenate(blocks, axis=1), audio)
    np.testing.assert_array_equal(again, audio)
    with open_audio(path) as reader, pytest.raises(ValueError):
        reader.blocks(0)


def test_flac_rejects_float(tmp_path):
    with pytest.raises(AudioWriteError, match="bit-depth 16 or 24"):
        AudioWriter(tmp_path / "x.flac", SR, 2, format="flac", bit_depth="32f")
    with pytest.raises(AudioWriteError, match="format must be one of"):
        AudioWriter(tmp_path / "x.mp3", SR, 2, format="mp3")
    assert listing(tmp_path) == []


@pytest.mark.parametrize(("format", "bit_depth"), [("wav", "16"), ("wav", "24"), ("flac", "16")])
def test_integer_formats_clip_instead_of_wrapping(tmp_path, format, bit_depth):
    audio = np.array([[1.5, -1.5, 0.5, 1.0, -1.0]], np.float32)
    loaded, _ = load_audio(write_audio(tmp_path / f"c.{format}", audio, SR, format, bit_depth))
    np.testing.assert_allclose(loaded, np.clip(audio, -1, 1), atol=1e-4)


def test_float_keeps_out_of_range_samples(tmp_path):
    audio = np.array([[1.5, -2.0, 0.25]], np.float32)
    loaded, _ = load_audio(write_audio(tmp_path / "f.wav", audio, SR, bit_depth="32f"))
    np.testing.assert_array_equal(loaded, audio)


@pytest.mark.parametrize("bit_depth", ["16", "24", "32f"])
def test_truncated_wav(tmp_path, bit_depth):
    path = write_audio(tmp_path / "cut.wav", noise(samples=8000), SR, bit_depth=bit_depth)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 1000])
    with pytest.raises(AudioDecodeError, match=r"truncated: header says 8000 frames"):
        load_audio(path)


def test_truncated_flac(tmp_path, monkeypatch):
    """libsndfile fails on it; ffmpeg decodes what is there, with one warning that says how
    much; without ffmpeg the error says how far libsndfile got and how to do better."""
    path = write_audio(tmp_path / "cut.flac", noise(samples=16000), SR, format="flac")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    if shutil.which("ffmpeg"):
        with pytest.warns(VocalsepWarning) as caught:
            audio, _ = load_audio(path)
        assert len(caught) == 1 and 0 < audio.shape[-1] < 16000
        message = str(caught[0].message)
        assert f"ffmpeg decoded {audio.shape[-1]} frames of the 16000 in its header" in message
    monkeypatch.setenv("PATH", "")
    with pytest.raises(AudioDecodeError, match=r"cut.flac after \d+ frames .*install ffmpeg"):
        load_audio(path)


def test_unfinished_streaming_header_is_not_truncation(tmp_path):
    """Writers that stream to a pipe leave 0xFFFFFFFF as the data size; the audio is whole."""
    path = write_audio(tmp_path / "stream.wav", noise(samples=1000), SR)
    data = bytearray(path.read_bytes())
    at = data.index(b"data") + 4
    data[at : at + 4] = b"\xff\xff\xff\xff"
    path.write_bytes(bytes(data))
    assert load_audio(path)[0].shape == (2, 1000)


def test_random_bytes(tmp_path):
    path = tmp_path / "noise.wav"
    path.write_bytes(np.random.default_rng(1).bytes(5000))
    with pytest.raises(AudioDecodeError, match="noise.wav"):
        open_audio(path)


@pytest.mark.parametrize(
    ("make", "message"),
    [(lambda p: p.write_bytes(b""), "empty"), (lambda p: None, "does not exist"),
     (lambda p: p.mkdir(), "is a directory")],
)  # fmt: skip
def test_unreadable_paths(tmp_path, make, message):
    path = tmp_path / "in.wav"
    make(path)
    with pytest.raises(AudioDecodeError, match=message) as caught:
        load_audio(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_zero_length_wav(tmp_path):
    path = write_audio(tmp_path / "empty.wav", np.zeros((2, 0), np.float32), SR)
    with open_audio(path) as reader:
        assert reader.info.frames == 0
    audio, rate = load_audio(path)
    assert audio.shape == (2, 0) and rate == SR


def test_nan_detection(tmp_path):
    audio = noise()
    check_audio(audio, "fine.wav")
    audio[1, 10] = np.nan
    with pytest.raises(InvalidAudioError, match="bad.wav contains NaN"):
        check_audio(audio, "bad.wav")
    audio[1, 10] = np.inf
    path = write_audio(tmp_path / "inf.wav", audio, SR, bit_depth="32f")
    with pytest.raises(InvalidAudioError, match="inf.wav"):
        check_audio(load_audio(path)[0], path)


@pytest.mark.parametrize("samples", [0, 1, 2, 3, 5, 1001, 4410, 44101])
@pytest.mark.parametrize(
    ("orig", "target"),
    [(44100, 48000), (48000, 44100), (44100, 22050), (8000, 48000), (48000, 8000)],
)
def test_resample_length(samples, orig, target):
    out = resample(noise(samples=samples), orig, target)
    assert out.dtype == np.float32 and out.shape == (2, round(samples * target / orig))


def test_resample_identity_and_mono():
    audio = noise(samples=100)
    same = resample(audio, SR, SR)
    np.testing.assert_array_equal(same, audio)
    assert resample(audio[0], SR, 2 * SR).shape == (200,)
    with pytest.raises(ValueError):
        resample(audio, 0, SR)


def test_resample_keeps_frequency():
    audio = sine(freq=1000.0, seconds=1.0, channels=1, sr=44100)
    out = resample(audio, 44100, 16000)
    spectrum = np.abs(np.fft.rfft(out[0] * np.hanning(out.shape[1])))
    peak_hz = np.argmax(spectrum) * 16000 / out.shape[1]
    assert abs(peak_hz - 1000.0) < 2.0
    assert np.isclose(np.sqrt(np.mean(out**2)), 0.5 / np.sqrt(2), rtol=0.02)


def test_writer_streams_into_hidden_temp_then_renames(tmp_path):
    target = tmp_path / "new" / "dir" / "out.wav"  # parents are created
    with AudioWriter(target, SR, 2) as writer:
        writer.write(noise(samples=100))
        writer.write(noise(samples=50, seed=2))
        assert not target.exists()
        (temp,) = listing(target.parent)
        assert temp.startswith(".out.wav.partial-")
    assert listing(target.parent) == ["out.wav"]
    assert soundfile.info(str(target)).frames == 150
    umask = os.umask(0)
    os.umask(umask)
    if os.name == "posix":  # like any new file, not the owner-only mode of mkstemp
        assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask


def test_abort_and_exception_leave_nothing(tmp_path):
    writer = AudioWriter(tmp_path / "a.wav", SR, 1)
    writer.write(noise(channels=1))
    writer.abort()
    writer.abort()
    with pytest.raises(RuntimeError, match="boom"), AudioWriter(tmp_path / "b.wav", SR, 1) as w:
        w.write(noise(channels=1))
        raise RuntimeError("boom")
    assert listing(tmp_path) == []
    with pytest.raises(ValueError), AudioWriter(tmp_path / "c.wav", SR, 2) as w:
        w.write(noise(channels=3))  # wrong channel count is a programming error
    assert listing(tmp_path) == []


def test_existing_output_is_kept_without_overwrite(tmp_path):
    target = tmp_path / "song.wav"
    target.write_bytes(b"original")
    with pytest.raises(OutputExistsError, match="exists; pass overwrite=True") as caught:
        write_audio(target, noise(), SR)
    assert caught.value.path == target
    assert target.read_bytes() == b"original" and listing(tmp_path) == ["song.wav"]
    # The target may also appear while the writer is busy: checked again before the rename.
    other = tmp_path / "other.wav"
    with pytest.raises(OutputExistsError, match="exists"), AudioWriter(other, SR, 2) as writer:
        writer.write(noise())
        other.write_bytes(b"someone else")
    assert other.read_bytes() == b"someone else"
    assert listing(tmp_path) == ["other.wav", "song.wav"]


def test_overwrite_replaces(tmp_path):
    target = tmp_path / "song.flac"
    target.write_bytes(b"original")
    write_audio(target, noise(), SR, format="flac", overwrite=True)
    assert load_audio(target)[0].shape == (2, 4000) and listing(tmp_path) == ["song.flac"]


def test_unwritable_targets(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_bytes(b"not a folder")
    for target in (blocker / "out.wav", blocker / "sub" / "out.wav"):
        with pytest.raises(AudioWriteError, match="is a file, not a directory.*-o") as caught:
            write_audio(target, noise(), SR)
        assert str(blocker) in str(caught.value)
    (tmp_path / "dir.wav").mkdir()
    with pytest.raises(AudioWriteError, match="is a directory"):
        write_audio(tmp_path / "dir.wav", noise(), SR, overwrite=True)
    assert blocker.read_bytes() == b"not a folder"


def make_m4a(path, seconds: float = 1.0) -> None:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
         f"sine=frequency=440:duration={seconds}:sample_rate=44100", "-ac", "2",
         "-c:a", "aac", str(path)],
        check=True,
    )  # fmt: skip


@needs_ffmpeg
def test_ffmpeg_fallback_reads_m4a(tmp_path):
    path = tmp_path / "song.m4a"
    make_m4a(path)
    with open_audio(path) as reader:
        assert reader.info == AudioInfo(44100, 2, None, "ffmpeg")
        blocks = list(reader.blocks(10000))
    assert all(b.shape == (2, 10000) and b.dtype == np.float32 for b in blocks[:-1])
    audio = np.concatenate(blocks, axis=1)
    assert abs(audio.shape[1] - 44100) <= 2048
    assert 0.1 < np.abs(audio).max() * 8 <= 1.1  # lavfi's sine has amplitude 1/8
    loaded, rate = load_audio(path)
    assert rate == 44100 and loaded.shape == audio.shape


@needs_ffmpeg
def test_mp3_frame_estimate_is_not_truncation(tmp_path):
    """Without a Xing header libsndfile estimates an MP3's length (here too long)."""
    path = tmp_path / "noxing.mp3"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "sine=duration=1",
         "-c:a", "libmp3lame", "-write_xing", "0", str(path)],
        check=True,
    )  # fmt: skip
    with open_audio(path) as reader:
        assert reader.info.backend == "soundfile"
        estimate = reader.info.frames
        audio = np.concatenate(list(reader.blocks(4096)), axis=1)
    assert audio.shape[1] <= estimate and abs(audio.shape[1] - 44100) <= 2048


@needs_ffmpeg
def test_ffmpeg_is_stopped_on_early_close(tmp_path):
    path = tmp_path / "long.m4a"
    make_m4a(path, seconds=5.0)
    reader = open_audio(path)
    blocks = reader.blocks(1024)
    assert next(blocks).shape == (2, 1024)
    (process,) = reader._processes
    reader.close()
    assert process.returncode is not None  # killed and reaped: no zombie
    # An abandoned generator stops its ffmpeg too.
    with open_audio(path) as reader:
        blocks = reader.blocks(1024)
        next(blocks)
        (process,) = reader._processes
        del blocks
        assert process.returncode is not None and not reader._processes


@needs_ffmpeg
def test_ffmpeg_cannot_decode_either(tmp_path):
    path = tmp_path / "junk.m4a"
    path.write_bytes(b"this is text, not audio\n" * 50)
    with pytest.raises(AudioDecodeError, match="not a readable audio file"):
        open_audio(path)


def test_without_ffmpeg_the_message_says_install_it(tmp_path, monkeypatch):
    path = tmp_path / "song.m4a"
    if shutil.which("ffmpeg"):
        make_m4a(path)
    else:
        path.write_bytes(b"\x00\x00\x00\x18ftypM4A " + bytes(200))
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(AudioDecodeError, match="install ffmpeg") as caught:
        open_audio(path)
    assert str(path) in str(caught.value)


def fake_tools(tmp_path, monkeypatch, ffmpeg_body: str, probe: str) -> None:
    """Put fake `ffprobe` (printing `probe`) and `ffmpeg` (running `ffmpeg_body`) on PATH."""
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    scripts = {"ffprobe": f"import sys\nsys.stdout.write({probe!r})\n", "ffmpeg": ffmpeg_body}
    for name, body in scripts.items():
        (bin_dir / name).write_text(f"#!{sys.executable}\n{body}")
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))


@posix_only
def test_ffmpeg_error_is_reported_without_deadlock(tmp_path, monkeypatch):
    body = (
        "import sys\n"
        "sys.stderr.write('Decoder exploded at frame 3\\n' + 'x' * 1_000_000)\n"  # > pipe buffer
        "sys.stdout.buffer.write(bytes(8 * 300))\n"  # 300 stereo float32 frames of silence
        "sys.exit(1)\n"
    )
    fake_tools(tmp_path, monkeypatch, body, '{"streams": [{"sample_rate": "8000", "channels": 2}]}')
    path = tmp_path / "x.m4a"
    path.write_bytes(b"not for libsndfile")
    with open_audio(path) as reader:
        assert reader.info == AudioInfo(8000, 2, None, "ffmpeg")
        blocks = reader.blocks(128)
        assert [next(blocks).shape for _ in range(2)] == [(2, 128), (2, 128)]
        with pytest.raises(AudioDecodeError, match="Decoder exploded at frame 3"):
            list(blocks)


@posix_only
def test_ffprobe_without_audio_stream(tmp_path, monkeypatch):
    fake_tools(tmp_path, monkeypatch, "", '{"programs": [], "streams": []}')
    path = tmp_path / "video.mp4"
    path.write_bytes(b"not for libsndfile")
    with pytest.raises(AudioDecodeError, match="no audio stream"):
        open_audio(path)


def test_junk_mp3_leaves_nothing_on_stderr_but_our_error(tmp_path, capfd):
    """libmpg123 (inside libsndfile) writes "Note: ..." lines to descriptor 2 when it probes
    a file that is not audio; the user must see only the one-line error."""
    path = tmp_path / "junk.mp3"
    path.write_bytes(b"not audio\n")
    with pytest.raises(AudioDecodeError, match="junk.mp3"):
        open_audio(path)
    out, err = capfd.readouterr()
    assert err == ""
    print("still writable", file=sys.stderr)  # descriptor 2 is restored
    assert capfd.readouterr().err == "still writable\n"


def test_damaged_mp3_decodes_with_one_warning_and_no_decoder_noise(tmp_path, capfd):
    """libmpg123 writes "Note: Illegal Audio-MPEG-Header ..." and "error: ..." lines to
    descriptor 2 for every damaged frame it skips; the user gets one warning instead."""
    path = write_damaged_mp3(tmp_path / "damaged.mp3", sine(seconds=6.0, sr=44100), 44100)
    with pytest.warns(VocalsepWarning, match="damaged.mp3.*damaged data") as caught:
        audio, rate = load_audio(path)
    assert len(caught) == 1
    assert rate == 44100 and audio.shape[0] == 2 and audio.shape[1] > 5 * 44100
    assert capfd.readouterr().err == ""
    print("still writable", file=sys.stderr)  # descriptor 2 is restored
    assert capfd.readouterr().err == "still writable\n"


def test_intact_mp3_gives_no_warning(tmp_path, recwarn):
    if "MP3" not in soundfile.available_formats():
        pytest.skip("this libsndfile cannot write MP3")
    path = tmp_path / "intact.mp3"
    soundfile.write(path, sine(seconds=2.0, sr=44100).T, 44100, format="MP3")
    load_audio(path)
    assert not [w for w in recwarn if issubclass(w.category, VocalsepWarning)]


def test_ffmpeg_reason_drops_the_path_and_the_component_address():
    from vocalsep.audio.io import _first_line

    stderr = b"[mp3 @ 0x55ab97b81500] Failed to read frame size: Could not seek to 1027.\n/a: x\n"
    assert _first_line(stderr, "/a") == "Failed to read frame size: Could not seek to 1027."
    assert _first_line(b"/a/s.m4a: Invalid data found\n", "/a/s.m4a") == "Invalid data found"
    assert _first_line(b"", "/a") == "no error message"
