"""The fast training-time SDR: known answers (it is not BSSEval; see test_evaluation.py)."""

import math

import pytest
import torch

from vocalsep.audio.metrics import signal_to_distortion_ratio as sdr


def tone(samples=1000, channels=1):
    t = torch.arange(samples, dtype=torch.float64) / 100
    return torch.stack([torch.sin(2 * math.pi * (c + 1) * t) for c in range(channels)])


def orthogonal_noise(reference, energy, seed=0):
    """Noise with exactly `energy` (summed over channels and samples), orthogonal to
    `reference`."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(reference.shape, generator=generator, dtype=torch.float64)
    flat, ref = noise.flatten(), reference.flatten()
    flat = flat - (flat @ ref) / (ref @ ref) * ref
    return (flat * math.sqrt(energy / (flat @ flat))).reshape(reference.shape)


def test_exact_estimate_is_bounded_by_eps():
    reference = tone()
    energy = reference.square().sum().item()
    expected = 10 * math.log10((energy + 1e-8) / 1e-8)
    assert sdr(reference, reference).item() == pytest.approx(expected, abs=1e-3)
    assert sdr(reference, reference).item() > 70


@pytest.mark.parametrize(
    "gain,expected",
    [(0.9, 20.0), (0.0, 0.0), (-1.0, -10 * math.log10(4)), (1.1, 20.0), (2.0, 0.0)],
)
def test_scaled_reference(gain, expected):
    reference = tone(channels=2)
    # error = (1 - gain) * reference, so SDR = -20 log10 |1 - gain|
    assert sdr(gain * reference, reference).item() == pytest.approx(expected, abs=1e-4)


def test_orthogonal_noise_at_known_level():
    reference = tone(channels=2)
    energy = reference.square().sum().item()
    noise = orthogonal_noise(reference, energy / 10)  # 10 dB below the reference
    estimate = reference + noise
    assert sdr(estimate, reference).item() == pytest.approx(10.0, abs=1e-4)
    assert sdr(estimate, reference, scale_invariant=True).item() == pytest.approx(10.0, abs=1e-4)


def test_scale_invariant_ignores_the_estimate_gain():
    reference = tone()
    energy = reference.square().sum().item()
    estimate = 0.5 * reference + orthogonal_noise(reference, energy / 100)
    # SI-SDR compares 0.5 * reference with the noise: 10 log10(0.25 * 100) dB
    expected = 10 * math.log10(25)
    for scale in (1.0, 3.0, 0.01):
        value = sdr(scale * estimate, reference, scale_invariant=True).item()
        assert value == pytest.approx(expected, abs=1e-3)
    assert sdr(estimate, reference).item() < expected  # plain SDR penalises the gain
    assert sdr(-reference, reference, scale_invariant=True).item() > 70  # sign is a gain too


def test_batches_and_pooled_channels():
    reference = torch.stack([tone(channels=2), 2 * tone(channels=2), tone(channels=2)])
    estimate = reference.clone()
    estimate[0] *= 0.9  # 20 dB
    estimate[1, 1] = 0  # one of two equal-energy channels lost: 10 log10(2) dB
    estimate[2] *= 0.99  # 40 dB
    values = sdr(estimate.float(), reference.float())
    assert values.shape == (3,) and values.dtype == torch.float32
    expected = torch.tensor([20.0, 10 * math.log10(2), 40.0])
    assert torch.allclose(values, expected, atol=1e-3)


def test_silence_is_finite():
    silent = torch.zeros(2, 100)
    assert sdr(silent, silent).item() == 0.0
    assert torch.isfinite(sdr(tone(100, 2).float(), silent))


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="estimate"):
        sdr(torch.zeros(2, 100), torch.zeros(1, 100))
