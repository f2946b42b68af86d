"""How a waveform model separates a chunk of a song: the `WaveformEstimator`, which the
`Separator` uses through the estimator protocol (see `separator.Estimator`).

The model sees the mixture resampled to its rate, tiled over samples with its receptive field
as context (steps and context on the network's shift grid, so tiles join exactly and every
chunk samples the song's grid alike), and its estimates are resampled back. It cannot hear
above its Nyquist frequency: there its estimated stems are silent and the residual stem keeps
all of the mixture, so the output is full-band and the stems still sum to the input.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..core.errors import ConfigError
from ..core.tiling import TilePlan, overlap_add
from .io import resample
from .models import WaveformModel, fold_channels


def _align(samples: int, unit: int) -> int:
    return math.ceil(samples / unit) * unit


class WaveformEstimator:
    """Separates chunks with a `WaveformModel`."""

    resampler_passes = 2  # resampled to the model's rate and back

    def __init__(
        self,
        model: WaveformModel,
        device: torch.device,
        tile_batch: int = 8,
        wiener_iterations: int = 0,
    ) -> None:
        if wiener_iterations:
            raise ConfigError(
                "the Wiener post-filter refines spectrogram masks and this is a waveform model; "
                "separate without --wiener"
            )
        self.model = model
        self.device = device
        self.tile_batch = tile_batch
        self.config = model.config
        self.difference = model.config.output == "difference"
        self.unit = getattr(model.network_config, "shift_multiple", 1)
        overlap = self.config.tile_overlap
        step = _align(self.config.tile_samples - overlap, self.unit)
        self.plan = TilePlan(step + overlap, overlap, _align(model.context, self.unit))

    def min_samples(self, sample_rate: int) -> int:
        return 1

    def context(self) -> int:
        """Model samples a chunk must see on both sides: the network's receptive field."""
        return self.plan.context

    @torch.inference_mode()
    def estimate(self, chunk: torch.Tensor, sample_rate: int, start: int = 0) -> torch.Tensor:
        """One chunk `(channels, samples)` at `sample_rate` -> target estimates `(targets,
        channels, samples)`: at the model's rate, tiled over samples (`start` is not needed:
        chunks start on the network's shift grid)."""
        length, rate = chunk.shape[-1], self.config.sample_rate
        mixture = chunk
        if sample_rate != rate:
            mixture = torch.from_numpy(resample(chunk.numpy(), sample_rate, rate))
        estimates = fold_channels(
            lambda tile: overlap_add(self.model, tile, [self.plan], batch=self.tile_batch),
            mixture[None].to(self.device, torch.float32),
            self.config.audio_channels,
        )[0].cpu()  # (targets, channels, model samples)
        if sample_rate != rate:
            flat = estimates.reshape(-1, estimates.shape[-1]).numpy()
            flat = resample(flat, rate, sample_rate)[:, :length]
            flat = np.pad(flat, [(0, 0), (0, length - flat.shape[-1])])  # rounding: +-1 sample
            estimates = torch.from_numpy(flat).reshape(*estimates.shape[:2], length)
        return estimates
