"""benchmarks/probes.py: band energies and the two probes, on synthesized stems."""

import math

import numpy as np
import pytest
from support import load_benchmark

import vocalsep


@pytest.fixture(scope="module")
def probes():
    return load_benchmark("probes")


def test_spectrum_energy_splits_a_two_tone_signal_at_8_khz(probes):
    rate = 44100
    t = np.arange(rate) / rate
    low, high = np.sin(2 * np.pi * 1000 * t), 0.1 * np.sin(2 * np.pi * 12000 * t)
    audio = np.stack([low + high, low + high])
    spectrum = probes.Spectrum(audio, rate)
    below, above = spectrum.energy(0, 8000), spectrum.energy(8000)
    assert probes.db(above / below) == pytest.approx(-20.0, abs=0.01)
    assert spectrum.energy(0) == pytest.approx(below + above)
    assert probes.db(0.0) == -math.inf


def test_probe_reports_no_high_band_for_a_16_khz_recording(probes, tiny_checkpoint):
    separator = vocalsep.Separator.from_pretrained(tiny_checkpoint, device="cpu")
    rng = np.random.default_rng(0)
    vocals = 0.1 * rng.standard_normal((1, 16000)).astype(np.float32)
    accompaniment = 0.1 * rng.standard_normal((1, 16000)).astype(np.float32)
    row = probes.probe(separator, vocals, accompaniment, 16000)
    assert row["bleed_above_8k_db"] is None  # nothing above 8 kHz at a 16 kHz rate
    assert row["residue_above_8k_db"] is None
    assert np.isfinite(row["bleed_below_8k_db"]) and np.isfinite(row["karaoke_residue_db"])
    # the residual accompaniment: vocals in -> (vocals - vocals estimate) out, never louder
    # than the input plus the estimate
    assert row["karaoke_residue_db"] < 6
