"""benchmarks/oracle_band.py: the band-swapped estimates, on synthesized stems."""

import numpy as np
import pytest
from support import load_benchmark

RATE = 44100


@pytest.fixture(scope="module")
def oracle_band():
    return load_benchmark("oracle_band")


def band_energy(audio, low, high):
    power = np.abs(np.fft.rfft(audio, axis=-1)) ** 2
    freqs = np.fft.rfftfreq(audio.shape[-1], 1 / RATE)
    return float(power[:, (freqs >= low) & (freqs < high)].sum())


@pytest.fixture(scope="module")
def estimates(oracle_band):
    """A model that finds no vocals; an 'above' model that calls everything vocals."""
    t = np.arange(2 * RATE) / RATE
    rng = np.random.default_rng(0)
    vocals = np.stack(
        [0.3 * np.sin(2 * np.pi * 1000 * t) + 0.1 * np.sin(2 * np.pi * 12000 * t)] * 2
    )
    accompaniment = 0.05 * rng.standard_normal((2, t.size))
    audio = {
        "vocals": vocals.astype(np.float32),
        "accompaniment": accompaniment.astype(np.float32),
        "mixture": (vocals + accompaniment).astype(np.float32),
    }
    found = oracle_band.band_estimates(
        lambda mixture, rate: np.zeros_like(mixture), audio, RATE, 8000.0, lambda m, r: m
    )
    return audio, found


def test_each_band_comes_from_its_source(estimates):
    audio, found = estimates
    assert set(found) == {
        "model",
        "model + oracle above",
        "oracle below + model",
        "oracle",
        "model + above",
    }
    total = band_energy(audio["mixture"], 0, RATE)
    assert band_energy(found["model"]["vocals"], 0, RATE) < 1e-9 * total
    # the oracle above 8 kHz only, on a model that found nothing: the 12 kHz tone, no 1 kHz
    above = found["model + oracle above"]["vocals"]
    assert band_energy(above, 0, 7000) < 1e-6 * total
    tone = band_energy(audio["vocals"], 11000, 13000)
    assert band_energy(above, 11000, 13000) == pytest.approx(tone, rel=0.1)
    below = found["oracle below + model"]["vocals"]
    assert band_energy(below, 9000, RATE) < 1e-6 * total
    # the iSTFT is linear: the two halves of the oracle add up to the whole oracle
    np.testing.assert_allclose(above + below, found["oracle"]["vocals"], atol=1e-5)
    # the other model's band above 8 kHz: there, the whole mixture
    other = found["model + above"]["vocals"]
    assert band_energy(other, 0, 7000) < 1e-6 * total
    assert band_energy(other, 9000, RATE) == pytest.approx(
        band_energy(audio["mixture"], 9000, RATE), rel=0.05
    )


def test_the_accompaniment_is_the_mixture_minus_the_vocals(estimates):
    audio, found = estimates
    for stems in found.values():
        np.testing.assert_allclose(
            stems["vocals"] + stems["accompaniment"], audio["mixture"], rtol=0, atol=1e-6
        )
