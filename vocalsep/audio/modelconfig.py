"""What a separation model is, without its weights or any framework: the configs of the
spectrogram masking and waveform model kinds (saved in every checkpoint and ONNX file), read by
the `Separator` whichever backend runs the network. Imports no torch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..core.config import Config
from ..core.errors import ConfigError
from .stft import STFTConfig

TASK = "audio-separation"
COMPRESSIONS = ("none", "log1p", "sqrt")
MASK_EXTENSIONS = ("top", "zeros", "ones")
OUTPUTS = ("difference", "direct")


def _check_stems(config: SpectrogramModelConfig | WaveformModelConfig) -> None:
    """The checks both model configs share: rate, targets and channels."""
    if not 1000 <= config.sample_rate <= 384000:
        raise ConfigError(f"sample_rate {config.sample_rate} is out of range")
    if not config.targets or len(set(config.targets)) != len(config.targets):
        raise ConfigError(f"targets must be distinct and non-empty, got {config.targets}")
    if "mixture" in config.targets:
        raise ConfigError("'mixture' cannot be a target")
    if config.audio_channels < 1:
        raise ConfigError(f"audio_channels must be >= 1, got {config.audio_channels}")


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

    # Written by earlier versions, gone since (the stereo-cue experiment, not shipped:
    # recipes/synthetic/README.md); a checkpoint with it off loads as before.
    retired_fields: ClassVar[dict[str, Any]] = {"stereo_cue": False}

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
        _check_stems(self)
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

    @property
    def network_channels(self) -> tuple[int, int]:
        """(in, out) channels of the network: the audio channels; a mask per target and
        channel."""
        return self.audio_channels, len(self.targets) * self.audio_channels


@dataclass(frozen=True)
class WaveformModelConfig(Config):
    """What a waveform model needs besides its network.

    sample_rate:    rate the model works at (input is resampled to it, the stems back).
    targets:        the stems, e.g. ("vocals", "accompaniment").
    audio_channels: channels the network sees together (1 = each channel on its own).
    output:         "difference": the network estimates every target but the last, which is the
                    mixture minus the others, so the stems sum to the mixture (Stoller et al.'s
                    difference output); "direct": the network estimates every target.
    tile_samples, tile_overlap: how long inputs are tiled, in samples at `sample_rate` (the
                    step is rounded up to a multiple of the network's shift).
    tile_context:   samples the network sees on both sides of a tile; 0: the network's
                    receptive field, so that tiles join exactly (less trades that for speed).
    """

    sample_rate: int = 44100
    targets: tuple[str, ...] = ("vocals", "accompaniment")
    audio_channels: int = 1
    output: str = "difference"
    tile_samples: int = 65536
    tile_overlap: int = 0
    tile_context: int = 0

    def __post_init__(self) -> None:
        _check_stems(self)
        if self.output not in OUTPUTS:
            raise ConfigError(f"output must be one of {OUTPUTS}, got {self.output!r}")
        if self.output == "difference" and len(self.targets) < 2:
            raise ConfigError(
                "output 'difference' computes the last target from the others: give at least "
                f"two targets, e.g. ['vocals', 'accompaniment'] (got {list(self.targets)})"
            )
        if not 0 <= self.tile_overlap < self.tile_samples or self.tile_context < 0:
            raise ConfigError("need 0 <= tile_overlap < tile_samples and tile_context >= 0")

    @property
    def network_channels(self) -> tuple[int, int]:
        """(in, out) channels of the network: the audio channels; the channels of the targets
        it estimates."""
        estimated = len(self.targets) - (self.output == "difference")
        return self.audio_channels, estimated * self.audio_channels
