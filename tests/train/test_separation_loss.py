"""What a spectrogram model's loss compares: masked mixture magnitudes with the targets'
magnitudes, or with their phase-sensitive part (`loss_target="phase_sensitive"`)."""

from __future__ import annotations

import pytest
import torch

from vocalsep.audio.training import SeparationTask, SeparationTaskConfig
from vocalsep.core.errors import ConfigError


class AllPass(torch.nn.Module):
    """A mask of ones: the masked mixture is the mixture's magnitude."""

    def forward(self, magnitude):
        return torch.ones(magnitude.shape[0], 1, *magnitude.shape[1:])


def task(loss_target):
    config = SeparationTaskConfig.from_dict(
        {
            "model": {"sample_rate": 8000, "stft": {"n_fft": 256, "hop_length": 64}},
            "data": {"channels": 1},
            "loss_target": loss_target,
        }
    )
    return SeparationTask(config)


def batch(vocals, accompaniment):
    return {"mixture": vocals + accompaniment, "vocals": vocals}


def test_phase_sensitive_target_keeps_what_is_in_phase_with_the_mixture():
    torch.manual_seed(0)
    vocals = torch.randn(2, 1, 4000)
    magnitude, phase_sensitive = task("magnitude"), task("phase_sensitive")
    # Alone in the mixture, the vocals are all in phase with it: both targets are |V|.
    alone = batch(vocals, torch.zeros_like(vocals))
    estimate, target = magnitude._masked(AllPass(), alone)
    _, in_phase = phase_sensitive._masked(AllPass(), alone)
    assert torch.allclose(in_phase, target, atol=1e-4)
    assert torch.allclose(estimate, target, atol=1e-4)
    # Cancelled by the accompaniment (mixture = -vocals): |V| is still the magnitude target,
    # but none of it is in phase with the mixture, so the phase-sensitive target is 0.
    cancelled = batch(vocals, -2 * vocals)
    _, target = magnitude._masked(AllPass(), cancelled)
    _, in_phase = phase_sensitive._masked(AllPass(), cancelled)
    assert target.mean() > 0.1 and in_phase.abs().max() < 1e-6
    # Partly cancelled (accompaniment = -vocals / 2): |V| exceeds |X| = |V| / 2, and the
    # target is truncated to what a mask <= 1 can give, the mixture's magnitude.
    partly = batch(vocals, -0.5 * vocals)
    estimate, in_phase = phase_sensitive._masked(AllPass(), partly)
    assert torch.allclose(in_phase, estimate, atol=1e-4)
    _, target = magnitude._masked(AllPass(), partly)
    assert torch.allclose(target, 2 * estimate, atol=1e-4)


def test_loss_target_is_checked():
    with pytest.raises(ConfigError, match="loss_target"):
        task("phase")
    with pytest.raises(ConfigError, match="spectrogram models only"):
        SeparationTaskConfig.from_dict(
            {"model_type": "waveform", "preset": "waveunet", "loss_target": "phase_sensitive"}
        )
