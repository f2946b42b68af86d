"""Spectrogram masking models: a core encoder-decoder network seen through an STFT.

The network only ever sees magnitudes `(batch, channels, bins, frames)` of the lowest
`max_bin` bins and predicts one soft mask per target and channel. Everything else (STFT,
tiling, channel folding, full-band extension, iSTFT) belongs to the `Separator`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..core.checkpoint import Checkpoint, load_checkpoint, load_weights, save_checkpoint
from ..core.config import Config
from ..core.errors import CheckpointError, ConfigError, VocalsepError
from ..core.unet import build_network, network_config_class
from .stft import STFTConfig

TASK = "audio-separation"
COMPRESSIONS = ("none", "log1p", "sqrt")
MASK_EXTENSIONS = ("top", "zeros", "ones")


@dataclass(frozen=True)
class SpectrogramModelConfig(Config):
    """What a spectrogram masking model needs besides its network.

    sample_rate:    rate the model works at (input is resampled to it for mask estimation).
    stft:           analysis used to compute the network's magnitudes.
    targets:        one mask per target, e.g. ("vocals",).
    audio_channels: channels the network sees together (1 = each channel on its own).
    max_bin:        the network sees bins [0, max_bin); 0 means all bins.
    compression:    magnitude compression before the network: "none", "log1p" or "sqrt".
    tile_frames, tile_overlap, tile_context: how long inputs are tiled over frames.
    mask_extension: the mask above max_bin: "top" (per frame, the mean of the top eighth of the
                    band, so high-frequency content follows what is just below it), "zeros" or
                    "ones".
    """

    sample_rate: int = 44100
    stft: STFTConfig = field(default_factory=STFTConfig)
    targets: tuple[str, ...] = ("vocals",)
    audio_channels: int = 1
    max_bin: int = 0
    compression: str = "log1p"
    tile_frames: int = 128
    tile_overlap: int = 32
    tile_context: int = 0
    mask_extension: str = "top"

    def __post_init__(self) -> None:
        if not 1000 <= self.sample_rate <= 384000:
            raise ConfigError(f"sample_rate {self.sample_rate} is out of range")
        if not self.targets or len(set(self.targets)) != len(self.targets):
            raise ConfigError(f"targets must be distinct and non-empty, got {self.targets}")
        if "mixture" in self.targets:
            raise ConfigError("'mixture' cannot be a target")
        if self.audio_channels < 1:
            raise ConfigError(f"audio_channels must be >= 1, got {self.audio_channels}")
        if not 0 <= self.max_bin <= self.stft.n_bins:
            raise ConfigError(f"max_bin must be in [0, {self.stft.n_bins}], got {self.max_bin}")
        if self.compression not in COMPRESSIONS:
            raise ConfigError(
                f"compression must be one of {COMPRESSIONS}, got {self.compression!r}"
            )
        if self.mask_extension not in MASK_EXTENSIONS:
            raise ConfigError(
                f"mask_extension must be one of {MASK_EXTENSIONS}, got {self.mask_extension!r}"
            )
        if not 0 <= self.tile_overlap < self.tile_frames or self.tile_context < 0:
            raise ConfigError("need 0 <= tile_overlap < tile_frames and tile_context >= 0")

    @property
    def band_bins(self) -> int:
        """Number of bins the network sees."""
        return self.max_bin or self.stft.n_bins


class SpectrogramMaskModel(nn.Module):
    """Magnitude `(batch, audio_channels, band_bins, frames)` -> masks
    `(batch, targets, audio_channels, band_bins, frames)` in [0, 1]."""

    def __init__(self, config: SpectrogramModelConfig, architecture: str, network: Config) -> None:
        super().__init__()
        outputs = len(config.targets) * config.audio_channels
        if getattr(network, "in_channels", None) != config.audio_channels:
            raise ConfigError(
                f"network in_channels must equal audio_channels ({config.audio_channels})"
            )
        if getattr(network, "out_channels", None) != outputs:
            raise ConfigError(f"network out_channels must be targets x audio_channels ({outputs})")
        if getattr(network, "head", "mask") != "mask":
            raise ConfigError("a spectrogram masking model needs a network with a 'mask' head")
        self.config = config
        self.architecture = architecture
        self.network_config = network
        # Per-bin affine input normalisation (as in Open-Unmix): lets training equalise the
        # strongly sloped music spectrum; starts as the identity.
        self.input_offset = nn.Parameter(torch.zeros(config.band_bins, 1))
        self.input_scale = nn.Parameter(torch.ones(config.band_bins, 1))
        self.network = build_network(architecture, network)

    def compress(self, magnitude: torch.Tensor) -> torch.Tensor:
        if self.config.compression == "log1p":
            return torch.log1p(magnitude)
        if self.config.compression == "sqrt":
            return magnitude.clamp_min(0).sqrt()
        return magnitude

    def forward(self, magnitude: torch.Tensor) -> torch.Tensor:
        batch, channels, bins, frames = magnitude.shape
        features = (self.compress(magnitude) - self.input_offset) * self.input_scale
        mask = self.network(features)  # (batch, targets * channels, bins, frames)
        return mask.reshape(batch, len(self.config.targets), channels, bins, frames)

    # -- checkpoints -----------------------------------------------------------------------

    def to_checkpoint(self, metadata: dict[str, Any] | None = None) -> Checkpoint:
        return Checkpoint(
            task=TASK,
            architecture=self.architecture,
            model_config=self.network_config.to_dict(),
            task_config={"model_type": "spectrogram-mask", **self.config.to_dict()},
            state_dict=self.state_dict(),
            metadata=dict(metadata or {}),
        )

    def save(self, path: str | os.PathLike, metadata: dict[str, Any] | None = None) -> None:
        save_checkpoint(self.to_checkpoint(metadata), path)

    @classmethod
    def from_checkpoint(
        cls, checkpoint: Checkpoint, source: str | os.PathLike = "checkpoint"
    ) -> SpectrogramMaskModel:
        task_config = dict(checkpoint.task_config)
        model_type = task_config.pop("model_type", None)
        if model_type != "spectrogram-mask":
            raise CheckpointError(f"{source}: unsupported model type {model_type!r}")
        try:
            config = SpectrogramModelConfig.from_dict(task_config)
            network = network_config_class(checkpoint.architecture).from_dict(
                checkpoint.model_config
            )
            model = cls(config, checkpoint.architecture, network)
        except (VocalsepError, TypeError, ValueError) as error:
            raise CheckpointError(f"{source}: invalid model configuration ({error})") from None
        load_weights(model, checkpoint, source)
        return model.eval()


def load_model(path: str | os.PathLike) -> SpectrogramMaskModel:
    """Load a separation model from a checkpoint file (weights only, no code is executed)."""
    return SpectrogramMaskModel.from_checkpoint(load_checkpoint(path, task=TASK), path)
