"""`vocalsep evaluate` end to end on tiny synthesized folders, and its one-line errors."""

import csv
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from support import make_musdb_hq, make_musdb_stems, synth_stems, write_track, write_wav

from vocalsep.cli import main

pytest.importorskip("museval")

RATE = 8000


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("dev")
    for seed, name in enumerate(["alpha", "beta"]):
        vocals, accompaniment = synth_stems(RATE, RATE * 2, seed=seed)
        write_track(root / name, vocals, accompaniment, RATE, ext="flac")
    return root


def call(capsys, *args):
    code = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return code, captured.out, [line for line in captured.err.splitlines() if line.strip()]


def test_irm_baseline_end_to_end(dataset, tmp_path):
    out, table = tmp_path / "scores", tmp_path / "table.csv"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "vocalsep",
            "evaluate",
            "--root",
            str(dataset),
            "--baseline",
            "irm",
            "--output",
            str(out),
            "--csv",
            str(table),
            "--compare",
            "published",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "\r" not in result.stderr  # no bar off a TTY
    lines = result.stdout.splitlines()
    assert lines[0].startswith("BSSEval v4 (museval)") and "baseline irm" in lines[0]
    assert any(line.startswith("alpha") for line in lines)
    summary = [line for line in lines if line.startswith("median of 2 tracks")]
    vocals_sdr = float(summary[0].split()[5])
    assert vocals_sdr > 5  # the oracle mask separates these signals well
    assert "DIFFERENT TEST DATA" in result.stdout and "Open-Unmix UMX" in result.stdout
    assert sorted(p.name for p in (out / "test").iterdir()) == ["alpha.json", "beta.json"]
    assert json.loads((out / "test" / "alpha.json").read_text())["targets"][1]["name"] == (
        "accompaniment"
    )
    rows = list(csv.DictReader(table.open()))
    assert [(row["scope"], row["track"], row["target"]) for row in rows] == [
        ("track", "alpha", "vocals"),
        ("track", "alpha", "accompaniment"),
        ("track", "beta", "vocals"),
        ("track", "beta", "accompaniment"),
        ("overall", "", "vocals"),
        ("overall", "", "accompaniment"),
    ]
    assert float(rows[4]["SDR"]) == pytest.approx(vocals_sdr, abs=0.01)


def test_model_and_estimates(dataset, tiny_checkpoint, tmp_path, capsys):
    model = ["--model", tiny_checkpoint, "--device", "cpu", "--targets", "vocals"]
    code, out, err = call(capsys, "evaluate", "--root", dataset, *model, "--filter", "beta")
    assert code == 0, err
    assert "model" in out and "beta" in out and "alpha" not in out
    assert "accompaniment" not in out.split("\n", 1)[1]  # only the vocals rows
    # the mixture written as estimates (museval's <subset>/<track> layout) scores exactly as
    # the mixture baseline
    mixture = dataset / "alpha" / "mixture.flac"
    for target in ("vocals", "accompaniment"):
        (tmp_path / "test" / "alpha").mkdir(parents=True, exist_ok=True)
        (tmp_path / "test" / "alpha" / f"{target}.flac").write_bytes(mixture.read_bytes())
    first = ["--root", dataset, "--tracks", "1"]
    code, from_disk, err = call(capsys, "evaluate", *first, "--estimates", tmp_path)
    assert code == 0, err
    code, baseline, err = call(capsys, "evaluate", *first, "--baseline", "mixture")
    assert code == 0, err
    assert from_disk.splitlines()[2:] == baseline.splitlines()[2:]


@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="musdb reads audio via ffmpeg")
def test_musdb18_hq(tmp_path, capsys):
    pytest.importorskip("musdb")
    root = make_musdb_hq(tmp_path / "musdb", seconds=1.5)
    code, out, err = call(
        capsys,
        "evaluate",
        "--dataset",
        "musdb18",
        "--root",
        root,
        "--baseline",
        "mixture",
        "--compare",
        "published",
        "--output",
        tmp_path / "json",
    )
    assert code == 0, err
    assert "MUSDB18-HQ test" in out and "Artist - One" in out
    assert "DIFFERENT TEST DATA" in out  # 2 tracks are not the 50-track test set
    assert (tmp_path / "json" / "test" / "Artist - Two.json").is_file()


@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="musdb reads audio via ffmpeg")
def test_musdb18_stem_mp4(tmp_path, capsys):
    pytest.importorskip("musdb")
    root, _ = make_musdb_stems(tmp_path / "musdb", names=("Artist - One",), seconds=1.5)
    args = ["evaluate", "--dataset", "musdb18", "--root", root, "--baseline", "irm"]
    code, out, err = call(capsys, *args)
    assert code == 0, err
    assert "MUSDB18 test" in out and "MUSDB18-HQ" not in out and "Artist - One" in out


def test_overwrite(dataset, tmp_path, capsys):
    args = ["evaluate", "--root", dataset, "--baseline", "mixture", "--tracks", 1]
    args += ["--csv", tmp_path / "t.csv"]
    assert call(capsys, *args)[0] == 0
    code, _, err = call(capsys, *args)
    assert code == 1 and len(err) == 1 and "--overwrite" in err[0]
    assert call(capsys, *args, "--overwrite")[0] == 0


def bad_inputs(tmp_path, dataset):
    """name -> (extra arguments, phrase of the one-line error, expected exit code)."""
    empty = tmp_path / "empty"
    empty.mkdir()
    short = tmp_path / "short"
    for name in ("alpha", "beta"):
        write_wav(short / name / "vocals.wav", np.ones((1, RATE // 4), np.float32), RATE)
        write_wav(short / name / "accompaniment.wav", np.ones((1, RATE // 4), np.float32), RATE)
    partial = tmp_path / "partial"
    write_wav(partial / "alpha" / "vocals.wav", np.ones((1, RATE), np.float32), RATE)
    return {
        "missing_root": (["--root", tmp_path / "nope", "--baseline", "irm"], "does not exist", 1),
        "no_tracks": (["--root", empty, "--baseline", "irm"], "no track folders", 1),
        "both": (["--root", dataset, "--baseline", "irm", "--model", "x.ckpt"], "exactly one", 2),
        "neither": (["--root", dataset], "exactly one", 2),
        "bad_model": (["--root", dataset, "--model", tmp_path / "x.ckpt"], "x.ckpt", 1),
        "short_estimates": (["--root", dataset, "--estimates", short], "long but", 1),
        "missing_estimate": (["--root", dataset, "--estimates", partial], "accompaniment", 1),
        "unknown_target": (
            ["--root", dataset, "--baseline", "irm", "--targets", "drums"],
            "unknown target",
            2,  # options that do not fit: a usage error, like an unknown stem in separate
        ),
        "no_match": (["--root", dataset, "--baseline", "irm", "--filter", "zzz"], "matches", 1),
        "musdb_root": (["--dataset", "musdb18", "--root", empty, "--baseline", "irm"], "test", 1),
    }


def test_bad_inputs_are_one_line(dataset, tmp_path, capsys):
    for name, (args, phrase, expected) in bad_inputs(tmp_path, dataset).items():
        code, _, err = call(capsys, "evaluate", *args)
        assert code == expected, (name, err)
        assert len(err) == 1 and phrase in err[0] and "Traceback" not in err[0], (name, err)
        assert err[0].startswith("vocalsep: error: "), name
