"""Where `separate` and `segment` write: confined to OUTDIR, never colliding by default,
resumable with --skip-existing, and the --plot picture beside the stems."""

from __future__ import annotations

import importlib.util
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image
from support import call, digest, files_under, synth, write_wav

RATE = 16000


@pytest.fixture
def song(tmp_path):
    return write_wav(tmp_path / "in" / "song.wav", synth(RATE, RATE * 2, 2), RATE)


# -- confinement ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "template,phrase",
    [
        ("../escaped/{track}/{stem}.{ext}", "'..'"),
        ("{track}/../../escaped/{stem}.{ext}", "'..'"),
        ("/tmp/vocalsep-escaped/{track}/{stem}.{ext}", "absolute"),
        ("~/{track}/{stem}.{ext}", "absolute"),
    ],
)
def test_a_template_that_leaves_outdir_is_refused(
    tmp_path, song, tiny_checkpoint, capsys, template, phrase
):
    out = tmp_path / "out"
    code, stdout, err = call(
        capsys, "separate", song, "-o", out, "--model", tiny_checkpoint, "--filename", template
    )
    assert code == 1 and len(err) == 1 and phrase in err[0] and not stdout, err
    assert not out.exists() and not (tmp_path / "escaped").exists()
    assert not Path("/tmp/vocalsep-escaped").exists()
    assert files_under(tmp_path) == ["in/song.wav"]


def test_a_symlinked_folder_inside_outdir_is_not_followed_out(
    tmp_path, song, tiny_checkpoint, capsys
):
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / "song").symlink_to(elsewhere, target_is_directory=True)
    other = write_wav(tmp_path / "in" / "other.wav", synth(RATE, RATE * 2, 2, seed=1), RATE)
    code, stdout, err = call(capsys, "separate", song, other, "-o", out, "--model", tiny_checkpoint)
    # The symlinked track fails with one line; the other input of the batch is still separated.
    assert code == 1 and len(err) == 1 and "outside the output folder" in err[0], err
    assert str(song) in err[0]
    assert not any(elsewhere.iterdir())
    assert files_under(out) == ["other/accompaniment.wav", "other/vocals.wav"]


def test_a_track_named_dot_dot_stays_inside(tmp_path, tiny_checkpoint, capsys):
    """A file called `...wav` has the track name `..`: its outputs would climb out."""
    odd = tmp_path / "in" / "...wav"
    odd.parent.mkdir()
    sf.write(odd, synth(RATE, RATE * 2, 2).T, RATE, format="WAV")
    out = tmp_path / "sub" / "out"
    code, _, err = call(capsys, "separate", odd, "-o", out, "--model", tiny_checkpoint)
    assert code == 1 and len(err) == 1 and "outside the output folder" in err[0], err
    assert files_under(tmp_path) == ["in/...wav"]


def test_segment_outputs_are_confined_too(tmp_path, capsys):
    image = tmp_path / "in" / "photo.png"
    image.parent.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(image)
    out = tmp_path / "out"
    code, _, err = call(
        capsys, "segment", image, "-o", out, "--filename", "../{track}_{stem}.{ext}"
    )
    assert code == 1 and len(err) == 1 and "'..'" in err[0], err
    assert files_under(tmp_path) == ["in/photo.png"]


# -- names ------------------------------------------------------------------------------------


def test_album_folders_with_the_same_track_names_never_collide(tmp_path, tiny_checkpoint, capsys):
    music = tmp_path / "music"
    for album in ("album1", "album2"):
        for track in ("01", "02"):
            write_wav(music / album / f"{track}.wav", synth(RATE, RATE, 1), RATE)
    write_wav(music / "album1" / "intro.wav", synth(RATE, RATE, 1), RATE)
    out = tmp_path / "out"
    # As a folder, as two folders and as files from a shell glob: the same names each time.
    for inputs in (
        [music],
        [music / "album1", music / "album2"],
        sorted(music.glob("*/*.wav")),
    ):
        shutil.rmtree(out, ignore_errors=True)
        code, _, err = call(capsys, "separate", *inputs, "-o", out, "--model", tiny_checkpoint)
        assert code == 0, err
        assert files_under(out) == [
            f"{name}/{stem}.wav"
            for name in ("album1/01", "album1/02", "album2/01", "album2/02", "intro")
            for stem in ("accompaniment", "vocals")
        ]


# -- --skip-existing --------------------------------------------------------------------------


def test_skip_existing_resumes_an_interrupted_batch(tmp_path, tiny_checkpoint, capsys):
    songs = [
        write_wav(tmp_path / "in" / f"{name}.wav", synth(RATE, RATE, 1, seed=i), RATE)
        for i, name in enumerate(("a", "b", "c"))
    ]
    out = tmp_path / "out"
    code, _, _ = call(capsys, "separate", songs[0], "-o", out, "--model", tiny_checkpoint)
    assert code == 0
    # An interrupted run: c's vocals were written, its accompaniment was not.
    code, _, _ = call(capsys, "separate", songs[2], "-o", out, "--model", tiny_checkpoint)
    (out / "c" / "accompaniment.wav").unlink()
    kept = {path: digest(path) for path in (out / "a" / "vocals.wav", out / "c" / "vocals.wav")}

    # Without --skip-existing, inputs with existing outputs fail (b is still separated).
    code, stdout, err = call(
        capsys, "separate", tmp_path / "in", "-o", out, "--model", tiny_checkpoint
    )
    assert code == 1 and len(err) == 2 and all("--skip-existing" in line for line in err), err
    assert stdout.split() == [str(out / "b" / "vocals.wav"), str(out / "b" / "accompaniment.wav")]

    def resume():
        return call(
            capsys, "separate", tmp_path / "in", "-o", out, "--model", tiny_checkpoint,
            "--skip-existing",
        )  # fmt: skip

    code, stdout, err = resume()
    assert code == 0, err
    assert err == ["vocalsep: info: kept the existing outputs of 2 input(s) (--skip-existing)"]
    assert stdout.split() == [str(out / "c" / "accompaniment.wav")]
    assert {path: digest(path) for path in kept} == kept  # existing outputs untouched
    assert len(files_under(out)) == 6
    # The missing accompaniment of c is the one a whole run gives.
    whole = tmp_path / "whole"
    call(capsys, "separate", songs[2], "-o", whole, "--model", tiny_checkpoint)
    assert digest(out / "c" / "accompaniment.wav") == digest(whole / "c" / "accompaniment.wav")

    # Everything exists now: nothing to do, exit 0.
    code, stdout, err = resume()
    assert code == 0 and not stdout and len(err) == 1 and "of 3 input(s)" in err[0]


def test_skip_existing_and_overwrite_exclude_each_other(tmp_path, song, tiny_checkpoint, capsys):
    with pytest.raises(SystemExit) as exit_:
        call(capsys, "separate", song, "--overwrite", "--skip-existing")
    assert exit_.value.code == 2


# -- --plot -----------------------------------------------------------------------------------


@pytest.mark.skipif(
    importlib.util.find_spec("librosa") is None or importlib.util.find_spec("matplotlib") is None,
    reason="needs the plot extra (matplotlib, librosa)",
)
def test_plot_writes_one_png_beside_the_stems(tmp_path, song, tiny_checkpoint, capsys):
    out = tmp_path / "out"
    code, stdout, err = call(
        capsys, "separate", song, "-o", out, "--model", tiny_checkpoint, "--plot"
    )
    assert code == 0, err
    picture = out / "song" / "spectrogram.png"
    assert str(picture) in stdout.split()
    assert files_under(out) == ["song/accompaniment.wav", "song/spectrogram.png", "song/vocals.wav"]
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and picture.stat().st_size > 20_000
    with Image.open(picture) as image:
        width, height = image.size
        pixels = np.asarray(image.convert("RGB"), np.float64)
    assert width >= 800 and height >= 600
    assert pixels.std() > 20  # a drawing, not a blank page
    # Another template puts it beside the stems too ({stem} = spectrogram, {ext} = png).
    code, stdout, err = call(
        capsys, "separate", song, "-o", out, "--model", tiny_checkpoint, "--plot",
        "--filename", "{track}_{stem}.{ext}", "--stems", "vocals",
    )  # fmt: skip
    assert code == 0, err
    assert (out / "song_spectrogram.png").is_file() and (out / "song_vocals.wav").is_file()


def test_plot_without_the_plot_extra_is_one_line(
    tmp_path, song, tiny_checkpoint, capsys, monkeypatch
):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "librosa" else real(name, *a)
    )
    out = tmp_path / "out"
    code, _, err = call(capsys, "separate", song, "-o", out, "--model", tiny_checkpoint, "--plot")
    assert code == 1 and len(err) == 1 and 'pip install "vocalsep[plot]"' in err[0], err
    assert not out.exists()


# -- a damaged MP3 ----------------------------------------------------------------------------


def write_noisy_mp3(path: Path, seconds: float = 20.0) -> Path:
    """A stereo 44.1 kHz MP3 with 16 KB of random bytes written into its middle: libsndfile
    gives up partway through it, ffmpeg skips the damaged frames and decodes the rest."""
    if "MP3" not in sf.available_formats():
        pytest.skip("this libsndfile cannot write MP3")
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, synth(44100, int(44100 * seconds), 2).T, 44100, format="MP3")
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 16384] = np.random.default_rng(0).bytes(16384)
    path.write_bytes(bytes(data))
    return path


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")
def test_an_mp3_with_16_kb_of_noise_separates_in_full_with_ffmpeg(
    tmp_path, tiny_checkpoint, capsys
):
    path = write_noisy_mp3(tmp_path / "in" / "noisy.mp3")
    before = digest(path)
    out = tmp_path / "out"
    code, _, err = call(capsys, "separate", path, "-o", out, "--model", tiny_checkpoint)
    assert code == 0, err
    assert len(err) == 1 and err[0].startswith("vocalsep: warning: ") and "ffmpeg" in err[0], err
    assert "may have gaps" in err[0]
    # As long as ffmpeg's own decode: everything but the damaged frames (20 s in all).
    import subprocess

    decoded = subprocess.run(
        ["ffmpeg", "-v", "quiet", "-i", str(path), "-f", "f32le", "-ac", "2", "-"],
        capture_output=True,
        check=True,
    ).stdout
    frames = len(decoded) // 8
    assert frames > 0.9 * 20 * 44100
    for stem in ("vocals", "accompaniment"):
        info = sf.info(out / "noisy" / f"{stem}.wav")
        assert info.frames == frames and info.samplerate == 44100 and info.channels == 2
    assert digest(path) == before


def test_without_ffmpeg_the_error_says_how_far_libsndfile_got(
    tmp_path, tiny_checkpoint, capsys, monkeypatch
):
    path = write_noisy_mp3(tmp_path / "in" / "noisy.mp3")
    monkeypatch.setenv("PATH", "")
    out = tmp_path / "out"
    code, _, err = call(capsys, "separate", path, "-o", out, "--model", tiny_checkpoint)
    assert code == 1 and len(err) == 1 and "install ffmpeg" in err[0], err
    frames = int(err[0].split(" after ")[1].split()[0])
    # The frames libsndfile decodes before it gives up, counted here in small reads.
    with sf.SoundFile(path) as file:
        counted = 0
        try:
            while len(piece := file.read(64)):
                counted += len(piece)
        except (sf.SoundFileError, RuntimeError):
            pass
    assert 400_000 < frames and abs(frames - counted) <= 64
    assert not out.exists()


def test_when_both_decoders_fail_the_error_gives_both_counts(
    tmp_path, tiny_checkpoint, capsys, monkeypatch
):
    path = write_noisy_mp3(tmp_path / "in" / "noisy.mp3")
    tools = tmp_path / "bin"
    tools.mkdir()
    # A stand-in ffmpeg that decodes 1000 frames of silence and then fails.
    fake = {
        "ffprobe": 'echo \'{"streams": [{"sample_rate": "44100", "channels": 2}]}\'',
        "ffmpeg": "head -c 8000 /dev/zero; echo 'Invalid data found' >&2; exit 1",
    }
    for name, body in fake.items():
        script = tools / name
        script.write_text(f"#!/bin/sh\n{body}\n")
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}/usr/bin{os.pathsep}/bin")
    code, _, err = call(
        capsys, "separate", path, "-o", tmp_path / "out", "--model", tiny_checkpoint
    )
    assert code == 1 and len(err) == 1, err
    assert (
        "libsndfile stopped after" in err[0] and "ffmpeg after 1000 (Invalid data found)" in err[0]
    )
    assert not (tmp_path / "out").exists()
