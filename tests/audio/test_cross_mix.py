"""recipes/synthetic/cross_mix.py: the vocals-by-accompaniment diagnostic."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SCRIPT = Path(__file__).parents[2] / "recipes" / "synthetic" / "cross_mix.py"
RATE = 44100


def _module():
    spec = importlib.util.spec_from_file_location("cross_mix", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _GivesTheMixture:
    """A 'separator' whose vocals are the whole mixture: its SDR is the mixing level."""

    def separate(self, mixture, rate):
        assert rate == RATE
        return {"vocals": np.asarray(mixture, np.float32)}


class _GivesTheScaledMixture:
    """Vocals = `share` of the mixture, for a check that the mixture's peak gain is undone."""

    def __init__(self, share):
        self.share = share

    def separate(self, mixture, rate):
        return {"vocals": np.asarray(mixture * self.share, np.float32)}


def test_pair_sdr_is_the_mixing_level_when_the_estimate_is_the_mixture():
    module = _module()
    rng = np.random.default_rng(0)
    t = np.arange(RATE) / RATE
    vocals = np.stack([np.sin(2 * np.pi * 330 * t)] * 2).astype(np.float32) * 0.01
    accompaniment = (0.3 * rng.standard_normal((2, RATE))).astype(np.float32)
    for level in (-7.5, 0.0, 3.0):
        # estimate = vocals + accompaniment, so the error is the accompaniment and
        # SDR = 10 log10(|v|^2 / |a|^2) = the level the vocals were mixed at
        sdr = module.pair_sdr(_GivesTheMixture(), vocals, accompaniment, level)
        assert sdr == pytest.approx(level, abs=1e-3)


def test_pair_sdr_undoes_the_peak_gain():
    module = _module()
    rng = np.random.default_rng(1)
    vocals = rng.standard_normal((2, RATE)).astype(np.float32)
    silence = np.zeros_like(vocals)
    silence[0, 0] = 1e-3  # a non-zero accompaniment RMS; the vocals end up far above it
    # Half of the mixture as the estimate: error = half the vocals (plus a speck), SDR 6.02 dB,
    # whatever gain brought the mixture to peak 0.9.
    sdr = module.pair_sdr(_GivesTheScaledMixture(0.5), vocals, silence, 40.0)
    assert sdr == pytest.approx(20 * np.log10(2), abs=0.05)


def _track(folder: Path, seconds: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    f0 = 220 * (1 + 0.02 * np.sin(2 * np.pi * 5 * t)) * (1 + seed)
    vocals = sum(np.sin(2 * np.pi * k * np.cumsum(f0) / RATE) / k for k in range(1, 6))
    accompaniment = 0.2 * rng.standard_normal(t.size)
    folder.mkdir(parents=True)
    sf.write(folder / "vocals.wav", 0.2 * vocals, RATE)
    sf.write(folder / "accompaniment.flac", np.stack([accompaniment] * 2, 1), RATE)


def test_script_prints_one_row_per_vocal_track_and_a_mean_over_extra_files(tmp_path):
    _track(tmp_path / "data" / "one", 2.5, 0)
    _track(tmp_path / "data" / "two", 2.0, 1)
    extra = tmp_path / "extra.wav"
    sf.write(extra, 0.1 * np.random.default_rng(5).standard_normal((3 * RATE, 2)), RATE)
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--root", str(tmp_path / "data")]
        + ["--seconds", "1.5", "--accompaniment", str(extra)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines() if line.startswith(("one", "two"))]
    assert [row[0] for row in rows] == ["one", "two"]
    for row in rows:
        values = [float(value) for value in row[1:]]
        assert len(values) == 4  # two tracks, one extra file, the extra mean
        assert all(np.isfinite(values))
        assert values[3] == pytest.approx(values[2], abs=0.006)  # mean over the one extra file


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--filter", "zzz"], "error: no track in {root} matches --filter 'zzz'"),
        (["--seconds", "9"], "error: --seconds 9.0 is longer than the shortest track"),
    ],
)
def test_script_bad_input_is_one_line(tmp_path, arguments, message):
    _track(tmp_path / "data" / "one", 2.0, 0)
    root = tmp_path / "data"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--root", str(root), *arguments],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [message.format(root=root)]


@pytest.mark.parametrize("silent", ["vocals", "extra"])
def test_script_refuses_a_silent_excerpt_in_one_line(tmp_path, silent):
    """A silent stem has no level to mix at (the SDR would be -inf or nan): refuse it."""
    _track(tmp_path / "data" / "one", 2.0, 0)
    extra = tmp_path / "extra.wav"
    sf.write(extra, 0.1 * np.random.default_rng(5).standard_normal((3 * RATE, 2)), RATE)
    if silent == "vocals":
        sf.write(tmp_path / "data" / "one" / "vocals.wav", np.zeros(2 * RATE), RATE)
    else:
        sf.write(extra, np.zeros((3 * RATE, 2)), RATE)
    result = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--root",
            str(tmp_path / "data"),
            "--accompaniment",
            str(extra),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    kind, name = ("vocals", "one") if silent == "vocals" else ("accompaniment", str(extra))
    assert result.stderr.strip().splitlines() == [
        f"error: the {kind} of {name} are silent in the 2.0 s excerpt "
        "(choose other tracks or --seconds)"
    ]
