"""What a spectrogram model's loss compares: masked mixture magnitudes with the targets'
magnitudes (Jansson et al. 2017)."""

from __future__ import annotations

import pytest
import torch

from vocalsep.audio.training import SeparationTask, SeparationTaskConfig
from vocalsep.core.errors import ConfigError


class AllPass(torch.nn.Module):
    """A mask of ones: the masked mixture is the mixture's magnitude."""

    def forward(self, magnitude):
        return torch.ones(magnitude.shape[0], 1, *magnitude.shape[1:])


def task(**fields):
    config = SeparationTaskConfig.from_dict(
        {
            "model": {"sample_rate": 8000, "stft": {"n_fft": 256, "hop_length": 64}},
            "data": {"channels": 1},
            **fields,
        }
    )
    return SeparationTask(config)


def batch(vocals, accompaniment):
    return {"mixture": vocals + accompaniment, "vocals": vocals}


def test_the_target_is_the_stems_magnitude():
    torch.manual_seed(0)
    vocals = torch.randn(2, 1, 4000)
    separation = task()
    # Alone in the mixture: an all-pass mask gives exactly the target.
    estimate, target = separation._masked(AllPass(), batch(vocals, torch.zeros_like(vocals)))
    assert estimate.shape == target.shape == (2, 1, 1, 129, 4000 // 64 + 1)
    assert torch.allclose(estimate, target, atol=1e-4)
    # Partly cancelled (accompaniment = -vocals / 2): |V| is twice |X|, whatever the phase.
    estimate, target = separation._masked(AllPass(), batch(vocals, -0.5 * vocals))
    assert torch.allclose(target, 2 * estimate, atol=1e-4)


@pytest.mark.parametrize("field", ["loss_target", "cue_dropout", "teacher"])
def test_the_experiments_that_were_not_shipped_are_gone(field):
    """The phase-sensitive target, stereo-cue dropout and distillation live on only in
    recipes/synthetic/README.md (results) and git history."""
    with pytest.raises(ConfigError, match=field):
        task(**{field: "x"})
