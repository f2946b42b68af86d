"""Segmentation losses: class-weighted cross-entropy with an ignore index, soft Dice, and their
weighted sum; median-frequency class weights (Eigen & Fergus 2015, as used by SegNet).

Logits are `(batch, classes, height, width)`, labels `(batch, height, width)` class indices with
`ignore_index` on pixels that count for nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..core.config import Config
from ..core.errors import ConfigError

WEIGHTINGS = ("none", "median_frequency", "fixed")


@dataclass(frozen=True)
class LossConfig(Config):
    """loss = cross_entropy x CE + dice x (soft Dice loss).

    class_weighting: the cross-entropy class weights: "none", "median_frequency" (computed
                     from the training labels) or "fixed" (`class_weights`, one per class).
    class_weight_power: the weights are raised to this power (0.5 tempers median-frequency
                     weights: rare classes gain recall without costing as much global accuracy).
    dice_smooth:     added to the numerator and denominator of every class's Dice.
    """

    cross_entropy: float = 1.0
    dice: float = 0.0
    class_weighting: str = "none"
    class_weights: tuple[float, ...] = ()
    class_weight_power: float = 1.0
    dice_smooth: float = 1.0

    def __post_init__(self) -> None:
        if self.class_weighting not in WEIGHTINGS:
            raise ConfigError(
                f"loss.class_weighting must be one of {WEIGHTINGS}, got {self.class_weighting!r}"
            )
        if (self.class_weighting == "fixed") != bool(self.class_weights):
            raise ConfigError('loss.class_weights go with class_weighting = "fixed" (only)')
        if min(self.class_weights, default=0) < 0:
            raise ConfigError("loss.class_weights must be >= 0")
        if self.cross_entropy < 0 or self.dice < 0 or self.cross_entropy + self.dice == 0:
            raise ConfigError("loss: need cross_entropy, dice >= 0, not both 0")
        if self.dice_smooth < 0 or self.class_weight_power < 0:
            raise ConfigError("loss.dice_smooth and loss.class_weight_power must be >= 0")


def cross_entropy(
    logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    weight: torch.Tensor | None = None,
    ignore_index: int = 255,
) -> torch.Tensor:
    """Mean cross-entropy over the pixels that are not `ignore_index`, each weighted by its
    class's `weight` `(classes,)` (the mean divides by the summed weights)."""
    return F.cross_entropy(logits.float(), labels.long(), weight=weight, ignore_index=ignore_index)


def dice_loss(
    logits: torch.Tensor, labels: torch.Tensor, *, ignore_index: int = 255, smooth: float = 1.0
) -> torch.Tensor:
    """1 - the mean over classes of the soft Dice coefficient
    `(2 sum(p g) + smooth) / (sum(p) + sum(g) + smooth)`, with `p` the softmax probability and
    `g` the one-hot label, summed over the batch's non-ignored pixels. A class absent from both
    counts as a perfect 1 (with `smooth` > 0)."""
    classes = logits.shape[1]
    probabilities = logits.float().softmax(dim=1)
    valid = labels != ignore_index  # (batch, height, width)
    target = F.one_hot(labels.long().where(valid, 0), classes).permute(0, 3, 1, 2)
    mask = valid[:, None].float()
    probabilities, target = probabilities * mask, target.float() * mask
    dims = (0, 2, 3)
    overlap = (probabilities * target).sum(dims)
    total = probabilities.sum(dims) + target.sum(dims)
    return 1 - ((2 * overlap + smooth) / (total + smooth).clamp_min(1e-12)).mean()


def segmentation_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    config: LossConfig,
    *,
    weight: torch.Tensor | None = None,
    ignore_index: int = 255,
) -> torch.Tensor:
    """`config.cross_entropy` x cross-entropy + `config.dice` x Dice loss."""
    loss = logits.new_zeros((), dtype=torch.float32)
    if config.cross_entropy:
        ce = cross_entropy(logits, labels, weight=weight, ignore_index=ignore_index)
        loss = loss + config.cross_entropy * ce
    if config.dice:
        dice = dice_loss(logits, labels, ignore_index=ignore_index, smooth=config.dice_smooth)
        loss = loss + config.dice * dice
    return loss


def class_frequencies(
    labels: Iterable[np.ndarray], num_classes: int, ignore_index: int = 255
) -> tuple[np.ndarray, np.ndarray]:
    """(pixels of each class, non-ignored pixels of the images where the class occurs), summed
    over label maps of class indices."""
    pixels = np.zeros(num_classes, dtype=np.int64)
    present_in = np.zeros(num_classes, dtype=np.int64)
    for label in labels:
        values = np.asarray(label).reshape(-1)
        counts = np.bincount(values[values != ignore_index], minlength=num_classes)
        counts = counts[:num_classes]
        pixels += counts
        present_in[counts > 0] += counts.sum()
    return pixels, present_in


def median_frequency_weights(
    labels: Iterable[np.ndarray], num_classes: int, ignore_index: int = 255
) -> np.ndarray:
    """SegNet's class weights `median(freq) / freq(c)`, where `freq(c)` is the pixels of class
    c divided by the (non-ignored) pixels of the images in which c occurs. Classes that never
    occur get weight 1 (no pixel of theirs is ever weighted); returns `float32 (classes,)`."""
    pixels, present_in = class_frequencies(labels, num_classes, ignore_index)
    seen = pixels > 0
    if not seen.any():
        raise ValueError("no labelled pixel: cannot compute class frequencies")
    frequency = np.where(seen, pixels / np.maximum(present_in, 1), np.nan)
    weights = np.where(seen, np.nanmedian(frequency) / frequency, 1.0)
    return weights.astype(np.float32)
