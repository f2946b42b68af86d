"""The command line, end to end: good runs and every kind of bad input."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from support import call, digest, files_under, synth, write_damaged_mp3, write_wav

from vocalsep import __version__, pretrained

RATE = 22050


def run_cli(*args, env=None, cwd=None):
    """The installed module as a user runs it, in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "vocalsep", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )


@pytest.fixture
def song(tmp_path):
    return write_wav(tmp_path / "in" / "song.wav", synth(RATE, RATE * 3, 2), RATE)


def test_version_and_models():
    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"vocalsep {__version__}"
    result = run_cli("models")
    lines = result.stdout.strip().splitlines()
    assert result.returncode == 0 and len(lines) == len(pretrained.MODELS)
    assert any(line.startswith("vocalsep-small (default of vocalsep separate)") for line in lines)
    assert any(line.startswith("camvid-unet (default of vocalsep segment)") for line in lines)
    result = run_cli("models", "--verbose")
    assert result.returncode == 0 and "## Training data" in result.stdout


def test_separate_end_to_end_subprocess(tmp_path, song, tiny_checkpoint):
    before = digest(song)
    out = tmp_path / "out"
    result = run_cli("separate", song, "-o", out, "--model", tiny_checkpoint, "--bit-depth", "32f")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert files_under(out) == ["song/accompaniment.wav", "song/vocals.wav"]
    assert [p.name for p in out.iterdir()] == ["song"]  # no empty folders left by failures
    mixture, _ = sf.read(song, always_2d=True)
    vocals, rate = sf.read(out / "song" / "vocals.wav", always_2d=True)
    accompaniment, _ = sf.read(out / "song" / "accompaniment.wav", always_2d=True)
    assert rate == RATE and vocals.shape == mixture.shape == accompaniment.shape
    assert np.abs(vocals + accompaniment - mixture).max() < 1e-5
    assert digest(song) == before


def test_no_default_model_is_one_line(tmp_path, song, capsys, monkeypatch):
    from vocalsep import pretrained

    monkeypatch.setattr(pretrained, "DEFAULT_MODELS", {})  # as before a model shipped
    code, _, err = call(capsys, "separate", song, "-o", tmp_path / "out")
    assert code == 1 and len(err) == 1
    assert "no default" in err[0] and "--model" in err[0]
    assert not (tmp_path / "out").exists()


def test_default_model_separates_out_of_the_box(tmp_path, song):
    """No --model: the shipped default model, in a fresh process, as a new user runs it."""
    before = digest(song)
    result = run_cli("separate", song, "-o", tmp_path / "out", "--no-progress")
    assert result.returncode == 0, result.stderr
    mixture, rate = sf.read(song, always_2d=True)
    vocals, out_rate = sf.read(tmp_path / "out" / "song" / "vocals.wav", always_2d=True)
    accompaniment, _ = sf.read(tmp_path / "out" / "song" / "accompaniment.wav", always_2d=True)
    assert out_rate == rate and vocals.shape == mixture.shape
    assert np.abs(vocals + accompaniment - mixture).max() < 1e-3  # 16-bit files
    assert digest(song) == before


def test_formats_stems_and_filename(tmp_path, song, tiny_checkpoint, capsys):
    out = tmp_path / "out"
    code, _, err = call(
        capsys,
        "separate",
        song,
        "-o",
        out,
        "--model",
        tiny_checkpoint,
        "--stems",
        "vocals",
        "--format",
        "flac",
        "--bit-depth",
        "24",
        "--filename",
        "{parent}-{track}_{stem}.{ext}",
    )
    assert code == 0, err
    assert files_under(out) == ["in-song_vocals.flac"]
    info = sf.info(out / "in-song_vocals.flac")
    assert (info.samplerate, info.channels, info.subtype) == (RATE, 2, "PCM_24")


def test_existing_output_needs_overwrite(tmp_path, song, tiny_checkpoint, capsys):
    out = tmp_path / "out"
    assert call(capsys, "separate", song, "-o", out, "--model", tiny_checkpoint)[0] == 0
    vocals = out / "song" / "vocals.wav"
    vocals.write_bytes(b"precious")
    code, _, err = call(capsys, "separate", song, "-o", out, "--model", tiny_checkpoint)
    assert code == 1 and len(err) == 1 and "--overwrite" in err[0] and str(vocals) in err[0]
    assert vocals.read_bytes() == b"precious"
    code, _, err = call(
        capsys, "separate", song, "-o", out, "--model", tiny_checkpoint, "--overwrite"
    )
    assert code == 0 and sf.info(vocals).frames == RATE * 3


def test_folder_input_skips_the_output_folder(tmp_path, tiny_checkpoint, capsys):
    folder = tmp_path / "album"
    for name in ("a.wav", "sub/b.flac"):
        write_wav(folder / name, synth(RATE, RATE, 1), RATE, subtype="PCM_16")
    (folder / "notes.txt").write_text("not audio")
    out = folder / "separated"
    for _ in range(2):  # the second run must not pick up the first run's outputs
        code, _, err = call(
            capsys, "separate", folder, "-o", out, "--model", tiny_checkpoint, "--overwrite"
        )
        assert code == 0, err
    assert files_under(out) == [
        "a/accompaniment.wav",
        "a/vocals.wav",
        "b/accompaniment.wav",
        "b/vocals.wav",
    ]


# -- bad input -------------------------------------------------------------------------------


def make_bad_inputs(folder: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, a phrase its one-line error must contain)."""
    folder.mkdir(parents=True)
    bad = {}
    bad["missing"] = (folder / "missing.wav", "does not exist")
    empty_dir = folder / "empty_dir"
    empty_dir.mkdir()
    (empty_dir / "readme.txt").write_text("no audio here")
    bad["empty_dir"] = (empty_dir, "no audio files")
    corrupt = folder / "corrupt.wav"
    corrupt.write_bytes(os.urandom(5000))
    bad["corrupt"] = (corrupt, "corrupt.wav")
    truncated = write_wav(folder / "truncated.wav", synth(RATE, RATE * 2, 2), RATE, "PCM_16")
    truncated.write_bytes(truncated.read_bytes()[:50000])
    bad["truncated"] = (truncated, "truncated")
    zero = folder / "zero.wav"
    sf.write(zero, np.zeros((0, 2), np.float32), RATE)
    bad["zero_length"] = (zero, "no audio samples")
    short = write_wav(folder / "short.wav", synth(RATE, 100, 2), RATE)
    bad["too_short"] = (short, "too short")
    nan = synth(RATE, RATE * 2, 2)
    nan[0, 777] = np.nan
    bad["nan"] = (write_wav(folder / "nan.wav", nan, RATE), "NaN")
    return bad


def test_every_bad_input_in_one_batch(tmp_path, song, tiny_checkpoint, capsys):
    bad = make_bad_inputs(tmp_path / "bad")
    before = {name: digest(path) for name, (path, _) in bad.items() if path.is_file()}
    out = tmp_path / "out"
    inputs = [path for path, _ in bad.values()] + [song, song]  # the same input twice, too
    code, _, err = call(capsys, "separate", *inputs, "-o", out, "--model", tiny_checkpoint)
    assert code == 1
    assert not any("Traceback" in line for line in err)
    for name, (path, phrase) in bad.items():
        lines = [line for line in err if str(path) in line]
        assert len(lines) == 1, (name, err)
        assert phrase in lines[0], (name, lines[0])
    duplicate = [line for line in err if "more than once" in line]
    assert len(duplicate) == 1 and str(song) in duplicate[0]
    assert len(err) == len(bad) + 1
    # The good file was still separated; nothing else (no partial or temp files) was written.
    assert files_under(out) == ["song/accompaniment.wav", "song/vocals.wav"]
    assert [p.name for p in out.iterdir()] == ["song"]  # no empty folders left by failures
    assert {name: digest(path) for name, (path, _) in bad.items() if path.is_file()} == before


def test_silent_audio_is_valid(tmp_path, tiny_checkpoint, capsys):
    silent = write_wav(tmp_path / "silent.wav", np.zeros((2, RATE * 2), np.float32), RATE)
    code, _, err = call(
        capsys, "separate", silent, "-o", tmp_path / "out", "--model", tiny_checkpoint
    )
    assert code == 0, err
    vocals, _ = sf.read(tmp_path / "out" / "silent" / "vocals.wav")
    assert vocals.shape == (RATE * 2, 2) and np.abs(vocals).max() == 0


def test_unsupported_container_without_ffmpeg(tmp_path, tiny_checkpoint):
    fake = tmp_path / "song.m4a"
    fake.write_bytes(b"\x00\x00\x00\x20ftypM4A " + os.urandom(3000))
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}  # no ffmpeg on PATH
    result = run_cli("separate", fake, "-o", tmp_path / "out", "--model", tiny_checkpoint, env=env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "ffmpeg" in lines[0] and str(fake) in lines[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kind", ["random", "truncated", "code", "foreign", "missing"])
def test_bad_model_file(tmp_path, song, tiny_checkpoint, kind, capsys):
    model = tmp_path / "bad.ckpt"
    if kind == "random":
        model.write_bytes(os.urandom(2048))
    elif kind == "truncated":
        model.write_bytes(tiny_checkpoint.read_bytes()[:3000])
    elif kind == "code":
        torch.save({"format": "vocalsep-checkpoint", "x": Path("/")}, model)
    elif kind == "foreign":
        torch.save({"weight": torch.zeros(3)}, model)
    code, _, err = call(capsys, "separate", song, "-o", tmp_path / "out", "--model", model)
    assert code == 1 and len(err) == 1 and str(model) in err[0], err
    expected = {
        "random": "not a checkpoint",
        "truncated": "truncated or not a checkpoint",
        "code": "Python objects",
        "foreign": "not a vocalsep checkpoint",
        "missing": "nor an existing file",
    }[kind]
    assert expected in err[0], err
    assert not (tmp_path / "out").exists()


def test_unwritable_output_folder(tmp_path, song, tiny_checkpoint, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    code, _, err = call(capsys, "separate", song, "-o", blocker / "out", "--model", tiny_checkpoint)
    assert code == 1 and len(err) == 1 and "-o" in err[0], err
    assert blocker.read_text() == "a file where a folder should be"


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to read-only folders")
def test_read_only_output_folder(tmp_path, song, tiny_checkpoint, capsys):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o500)
    try:
        code, _, err = call(capsys, "separate", song, "-o", out, "--model", tiny_checkpoint)
    finally:
        out.chmod(0o700)
    assert code == 1 and len(err) == 1


def test_output_equal_to_input_is_refused_even_with_overwrite(tmp_path, tiny_checkpoint, capsys):
    folder = tmp_path / "music"
    vocals_in = write_wav(folder / "vocals.wav", synth(RATE, RATE * 2, 2), RATE)
    before = digest(vocals_in)
    code, _, err = call(
        capsys,
        "separate",
        vocals_in,
        "-o",
        folder,
        "--filename",
        "{stem}.{ext}",
        "--overwrite",
        "--model",
        tiny_checkpoint,
    )
    assert code == 1 and len(err) == 1 and "replace an input" in err[0], err
    assert digest(vocals_in) == before
    assert files_under(folder) == ["vocals.wav"]


def test_two_inputs_with_the_same_output(tmp_path, tiny_checkpoint, capsys):
    first = write_wav(tmp_path / "a" / "song.wav", synth(RATE, RATE, 1), RATE)
    second = write_wav(tmp_path / "b" / "song.wav", synth(RATE, RATE, 1), RATE)
    out = tmp_path / "out"

    def separate(template):
        args = ["separate", first, second, "-o", out, "--model", tiny_checkpoint]
        return call(capsys, *args, "--filename", template)

    # A template that cannot tell them apart: the second input fails, the first is separated.
    code, _, err = separate("{stem}.{ext}")
    assert code == 1 and len(err) == 1 and str(second) in err[0] and "{track}" in err[0], err
    assert files_under(out) == ["accompaniment.wav", "vocals.wav"]
    code, _, err = separate("{parent}/{track}/{stem}.{ext}")
    assert code == 0, err
    assert len(files_under(out)) == 6  # 2 from the first call + 4


@pytest.mark.parametrize(
    "args,phrase",
    [
        (["--stems", "drums"], "unknown stem"),
        (["--filename", "{track}.{ext}"], "{stem}"),
        (["--filename", "{artist}/{stem}.{ext}"], "unknown field"),
        (["--format", "flac", "--bit-depth", "32f"], "FLAC"),
    ],
)
def test_bad_options(tmp_path, song, tiny_checkpoint, args, phrase, capsys):
    code, _, err = call(
        capsys, "separate", song, "-o", tmp_path / "out", "--model", tiny_checkpoint, *args
    )
    assert code != 0 and len(err) == 1 and phrase in err[0], err
    assert not (tmp_path / "out").exists()


def test_damaged_mp3_is_separated_with_one_warning_line(tmp_path, tiny_checkpoint):
    # A subprocess: libmpg123 writes to descriptor 2 itself, below Python's sys.stderr.
    path = write_damaged_mp3(tmp_path / "damaged.mp3", synth(44100, 44100 * 6, 2), 44100)
    out = tmp_path / "out"
    result = run_cli("separate", path, "-o", out, "--model", tiny_checkpoint, "--no-progress")
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vocalsep: warning: "), result.stderr
    assert "damaged.mp3" in lines[0] and "re-download" in lines[0]
    assert files_under(out) == ["damaged/accompaniment.wav", "damaged/vocals.wav"]


def test_output_cut_short_by_a_pipe_is_quiet():
    """`vocalsep models --verbose | head -1`: no 'internal error' when head stops reading."""
    process = subprocess.Popen(
        [sys.executable, "-m", "vocalsep", "models", "--verbose"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    process.stdout.readline()
    process.stdout.close()  # the reader goes away with most of the cards unread
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=60) in (0, 141) and stderr == "", stderr
