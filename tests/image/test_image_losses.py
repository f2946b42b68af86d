"""Losses: cross-entropy ignores void, Dice of a perfect prediction is ~0, SegNet's weights."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vocalsep.core.errors import ConfigError
from vocalsep.image.losses import (
    LossConfig,
    cross_entropy,
    dice_loss,
    median_frequency_weights,
    segmentation_loss,
)


def logits_and_labels(seed=0):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, 3, 5, 6, generator=generator)
    labels = torch.randint(0, 3, (2, 5, 6), generator=generator)
    labels[:, 0] = 255  # a void row
    return logits, labels


def test_cross_entropy_ignores_void_pixels():
    logits, labels = logits_and_labels()
    loss = cross_entropy(logits, labels, ignore_index=255)
    keep = labels != 255
    expected = F.cross_entropy(logits.permute(0, 2, 3, 1)[keep], labels[keep])
    assert loss == pytest.approx(float(expected))
    changed = logits.clone()
    changed[:, :, 0] = 100 * torch.randn_like(changed[:, :, 0])  # whatever it says on void
    assert cross_entropy(changed, labels, ignore_index=255) == pytest.approx(float(loss))


def test_class_weights_scale_each_class():
    logits, labels = logits_and_labels()
    weight = torch.tensor([1.0, 0.0, 0.0])  # only class 0 counts
    keep = labels == 0
    expected = F.cross_entropy(logits.permute(0, 2, 3, 1)[keep], labels[keep])
    assert cross_entropy(logits, labels, weight=weight) == pytest.approx(float(expected))


def test_dice_of_a_perfect_prediction_is_about_zero():
    _, labels = logits_and_labels()
    perfect = 50.0 * F.one_hot(labels.where(labels != 255, 0), 3).permute(0, 3, 1, 2).float()
    perfect[:, :, 0] = torch.tensor([50.0, -50.0, 0.0])[:, None]  # wrong on void: ignored
    assert float(dice_loss(perfect, labels)) < 1e-6
    assert float(dice_loss(-perfect, labels)) > 0.9
    logits, _ = logits_and_labels(1)
    assert 0 < float(dice_loss(logits, labels)) < 1


def test_sum_of_losses():
    logits, labels = logits_and_labels()
    config = LossConfig(cross_entropy=1.0, dice=0.5)
    expected = cross_entropy(logits, labels) + 0.5 * dice_loss(logits, labels)
    assert segmentation_loss(logits, labels, config) == pytest.approx(float(expected))


def test_median_frequency_weights_by_hand():
    labels = [
        np.array([[0, 0], [0, 1]]),
        np.array([[0, 2], [2, 2]]),
        np.array([[255, 255], [1, 1]]),  # void pixels are not counted
    ]
    # freq(c) = pixels of c / pixels of the images holding c:
    #   0: 4 / 8,  1: 3 / (4 + 2),  2: 3 / 4;  median 0.5;  class 3 never occurs (weight 1).
    weights = median_frequency_weights(labels, 4, ignore_index=255)
    assert weights == pytest.approx([1.0, 1.0, 0.5 / 0.75, 1.0])
    assert weights.dtype == np.float32
    with pytest.raises(ValueError):
        median_frequency_weights([np.full((2, 2), 255)], 3)


@pytest.mark.parametrize(
    "fields",
    [
        {"class_weighting": "inverse"},
        {"class_weighting": "fixed"},
        {"class_weights": (1.0, 2.0)},
        {"cross_entropy": 0.0, "dice": 0.0},
        {"dice": -1.0},
    ],
    ids=str,
)
def test_invalid_loss_configs(fields):
    with pytest.raises(ConfigError):
        LossConfig(**fields)
