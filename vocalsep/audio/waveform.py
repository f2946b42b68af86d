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

from ..core.errors import ConfigError
from ..core.tiling import TilePlan, overlap_add
from .backends import SeparationNetwork
from .channels import fold_channels
from .io import resample


def _align(samples: int, unit: int) -> int:
    return math.ceil(samples / unit) * unit


class WaveformEstimator:
    """Separates chunks with the network of a waveform model (numpy; any backend)."""

    resampler_passes = 2  # resampled to the model's rate and back

    def __init__(
        self,
        network: SeparationNetwork,
        tile_batch: int = 8,
        wiener_iterations: int = 0,
        threads: int | None = None,  # the network's own: nothing else here is threaded
    ) -> None:
        if wiener_iterations:
            raise ConfigError(
                "the Wiener post-filter refines spectrogram masks and this is a waveform model; "
                "separate without --wiener"
            )
        self.run = network.members[0].run
        self.tile_batch = tile_batch
        self.config = network.config
        self.difference = self.config.output == "difference"
        self.unit = network.unit
        overlap = self.config.tile_overlap
        step = _align(self.config.tile_samples - overlap, self.unit)
        self.plan = TilePlan(step + overlap, overlap, _align(network.context, self.unit))

    def min_samples(self, sample_rate: int) -> int:
        return 1

    def context(self) -> int:
        """Model samples a chunk must see on both sides: the network's receptive field."""
        return self.plan.context

    def estimate(
        self, chunk: np.ndarray, sample_rate: int, start: int = 0, context: int = 0
    ) -> np.ndarray:
        """One chunk `(channels, samples)` at `sample_rate` -> target estimates `(targets,
        channels, samples - 2 context)` of the chunk without `context` samples on either side:
        at the model's rate, tiled over samples (`start` is not needed: chunks start on the
        network's shift grid)."""
        length, rate = chunk.shape[-1], self.config.sample_rate
        mixture = chunk if sample_rate == rate else resample(chunk, sample_rate, rate)
        estimates = fold_channels(
            lambda tile: overlap_add(self.run, tile, [self.plan], batch=self.tile_batch),
            mixture[None].astype(np.float32, copy=False),
            self.config.audio_channels,
        )[0]  # (targets, channels, model samples)
        if sample_rate != rate:
            flat = estimates.reshape(-1, estimates.shape[-1])
            flat = resample(flat, rate, sample_rate)[:, :length]
            flat = np.pad(flat, [(0, 0), (0, length - flat.shape[-1])])  # rounding: +-1 sample
            estimates = flat.reshape(*estimates.shape[:2], length)
        return estimates[..., context : length - context]
