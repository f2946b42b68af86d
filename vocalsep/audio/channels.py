"""Channel folding: run a network made for `audio_channels` channels on audio of any channel
count. One implementation for numpy arrays (inference, any backend) and torch tensors
(training); it imports no torch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..core.arrays import is_torch
from .modelconfig import SpectrogramModelConfig

Array = Any  # a numpy array or a torch tensor; functions return the kind they are given


def fold_channels(fn: Callable[[Array], Array], inputs: Array, audio_channels: int) -> Array:
    """Run a model `fn`, `(n, audio_channels, *rest) -> (n, targets, audio_channels, *rest)`, on
    `inputs` `(batch, channels, *rest)` of any channel count: as they are when the counts agree,
    otherwise each channel on its own, copied to every network channel, outputs averaged.
    Returns `(batch, targets, channels, *rest)`."""
    batch, channels, *rest = inputs.shape
    if channels == audio_channels:
        return fn(inputs)
    single = inputs.reshape(batch * channels, 1, *rest)
    shape = (batch * channels, audio_channels, *rest)
    if is_torch(inputs):
        single = single.expand(shape)
    else:  # a copy, not a read-only view: backends want contiguous input
        single = np.ascontiguousarray(np.broadcast_to(single, shape))
    outputs = fn(single).mean(2)  # (batch * channels, targets, *rest)
    return outputs.reshape(batch, channels, -1, *rest).swapaxes(1, 2)


def spectrogram_masks(
    fn: Callable[[Array], Array], config: SpectrogramModelConfig, spectrum: Array
) -> Array:
    """Run a spectrogram model `fn` (the model, or tiling around it) on `spectrum` `(batch,
    channels, bins, frames)`, complex or magnitudes, of any channel count (`fold_channels`);
    returns masks `(batch, targets, channels, bins, frames)`."""
    if is_torch(spectrum):
        magnitude = (spectrum.abs() if spectrum.is_complex() else spectrum).float()
    else:
        magnitude = np.abs(spectrum).astype(np.float32, copy=False)
    return fold_channels(fn, magnitude, config.audio_channels)
