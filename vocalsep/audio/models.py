"""Separation models: a core encoder-decoder network seen through an STFT, or on the waveform.

A spectrogram masking model only ever sees magnitudes `(batch, channels, bins, frames)` of the
lowest `max_bin` bins and predicts one soft mask per target and channel. A waveform model
(Wave-U-Net, Stoller et al. 2018) sees the mixture `(batch, channels, samples)` at its rate and
gives the stems themselves. Everything else (STFT, resampling, tiling, channel folding,
full-band extension, iSTFT) belongs to the `Separator`. Both are saved in the one checkpoint
format under the task "audio-separation", told apart by the task config's "model_type".

A `SpectrogramEnsemble` holds several spectrogram masking models, each with its own STFT (a
1024-point and a 2048-point model see different time-frequency trade-offs): the `Separator`
maps each member's masks onto one output STFT and averages them, so the ensemble costs one
network pass per member but one STFT, iSTFT and resampling of the song.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from ..core.checkpoint import Checkpoint, CheckpointedModel, load_checkpoint, save_checkpoint
from ..core.config import Config
from ..core.errors import CheckpointError, ConfigError
from ..core.networks import build_network
from ..core.registry import Registry
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


def fold_channels(
    fn: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor, audio_channels: int
) -> torch.Tensor:
    """Run a model `fn`, `(n, audio_channels, *rest) -> (n, targets, audio_channels, *rest)`, on
    `inputs` `(batch, channels, *rest)` of any channel count: as they are when the counts agree,
    otherwise each channel on its own, copied to every network channel, outputs averaged.
    Returns `(batch, targets, channels, *rest)`."""
    batch, channels, *rest = inputs.shape
    if channels == audio_channels:
        return fn(inputs)
    single = inputs.reshape(batch * channels, 1, *rest).expand(-1, audio_channels, *rest)
    outputs = fn(single).mean(dim=2)  # (batch * channels, targets, *rest)
    return outputs.reshape(batch, channels, -1, *rest).transpose(1, 2)


def spectrogram_masks(
    fn: Callable[[torch.Tensor], torch.Tensor],
    config: SpectrogramModelConfig,
    spectrum: torch.Tensor,
) -> torch.Tensor:
    """Run a spectrogram model `fn` (the model, or tiling around it) on `spectrum` `(batch,
    channels, bins, frames)`, complex or magnitudes, of any channel count (`fold_channels`);
    returns masks `(batch, targets, channels, bins, frames)`."""
    magnitude = spectrum.abs() if spectrum.is_complex() else spectrum
    return fold_channels(fn, magnitude.float(), config.audio_channels)


class SeparationModel(CheckpointedModel):
    """What every separation model shares: its config, network and checkpoint.

    Subclasses set `model_type` (the name in checkpoints) and `config_class`, and are
    registered in `MODEL_TYPES`.
    """

    task = TASK

    def __init__(self, config: Any, architecture: str, network: Config) -> None:
        super().__init__()
        inputs, outputs = config.network_channels
        if getattr(network, "in_channels", None) != inputs:
            raise ConfigError(f"network in_channels must equal audio_channels ({inputs})")
        if getattr(network, "out_channels", None) != outputs:
            raise ConfigError(
                f"network out_channels must be {outputs} for {len(config.targets)} target(s) "
                f"x {config.audio_channels} audio channel(s) of a {self.model_type} model"
            )
        self.config = config
        self.architecture = architecture
        self.network_config = network

    @classmethod
    def _model_class(cls, model_type: Any) -> type[SeparationModel] | None:
        """Called on a subclass, only that kind is accepted."""
        if model_type not in MODEL_TYPES or not issubclass(MODEL_TYPES.get(model_type), cls):
            return None
        return MODEL_TYPES.get(model_type)


class SpectrogramMaskModel(SeparationModel):
    """Magnitude `(batch, audio_channels, band_bins, frames)` -> masks
    `(batch, targets, audio_channels, band_bins, frames)` in [0, 1]."""

    model_type = "spectrogram-mask"
    config_class = SpectrogramModelConfig

    def __init__(self, config: SpectrogramModelConfig, architecture: str, network: Config) -> None:
        super().__init__(config, architecture, network)
        # A network with a "mask" head emits masks; one with "logits" (or no head field) emits
        # logits, and the model turns them into masks.
        head = getattr(network, "head", "logits")
        if head not in ("mask", "logits"):
            raise ConfigError(f"a spectrogram model needs a mask or logits head, not {head}")
        self.to_mask = nn.Identity() if head == "mask" else nn.Sigmoid()
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
        mask = self.to_mask(self.network(features))  # (batch, targets * channels, bins, frames)
        return mask.reshape(batch, len(self.config.targets), channels, bins, frames)


def waveform_context(config: WaveformModelConfig, network: Config) -> int:
    """Samples a waveform model sees on both sides of what it outputs: `config.tile_context`,
    or (0) the network's receptive field."""
    if config.tile_context:
        return config.tile_context
    field = getattr(network, "receptive_field", None)
    if field is None:
        raise ConfigError(
            f"{type(network).__name__} does not report its receptive field: set tile_context"
        )
    return int(field)


class WaveformModel(SeparationModel):
    """Mixture `(batch, audio_channels, samples)` -> stems `(batch, targets, audio_channels,
    samples)` at `config.sample_rate`, from a 1-D network with a linear ("logits") head.

    With `output = "difference"` the network estimates all targets but the last, and the last is
    the mixture minus the others.
    """

    model_type = "waveform"
    config_class = WaveformModelConfig

    def __init__(self, config: WaveformModelConfig, architecture: str, network: Config) -> None:
        super().__init__(config, architecture, network)
        if getattr(network, "dims", 1) != 1:
            raise ConfigError("a waveform model needs a 1-D network (dims = 1), e.g. 'waveunet'")
        if getattr(network, "head", "logits") != "logits":
            raise ConfigError("a waveform model needs a network with a linear ('logits') head")
        self.context = waveform_context(config, network)  # samples seen on each side of a tile
        self.network = build_network(architecture, network)

    def forward(self, mixture: torch.Tensor) -> torch.Tensor:
        batch, channels, samples = mixture.shape
        stems = self.network(mixture).reshape(batch, -1, channels, samples)
        if self.config.output == "difference":
            stems = torch.cat([stems, (mixture - stems.sum(dim=1))[:, None]], dim=1)
        return stems


MODEL_TYPES: Registry[type[SeparationModel]] = Registry("model type")
MODEL_TYPES.register(SpectrogramMaskModel.model_type, SpectrogramMaskModel)
MODEL_TYPES.register(WaveformModel.model_type, WaveformModel)


class SpectrogramEnsemble(nn.Module):
    """Spectrogram masking models whose masks are averaged with `weights` (normalised to sum to
    one; equal by default). The members may differ in STFT, band and network; they
    share the sample rate, the targets and the audio channels. `config` is the first member's:
    the `Separator` takes its output STFT from it.

    Saved as one checkpoint (architecture "ensemble"): the task config lists each member's
    config and the weights, the model config each member's architecture and network, and the
    state dict holds member i's weights under "members.i.".
    """

    task = TASK
    model_type = "spectrogram-ensemble"

    def __init__(
        self, members: list[SpectrogramMaskModel], weights: list[float] | None = None
    ) -> None:
        super().__init__()
        members = list(members)
        if not members:
            raise ConfigError("an ensemble needs at least one member")
        if not all(type(member) is SpectrogramMaskModel for member in members):
            raise ConfigError("an ensemble combines spectrogram masking models only")
        first = members[0].config
        for member in members[1:]:
            config = member.config
            for name in ("sample_rate", "targets", "audio_channels"):
                if getattr(config, name) != getattr(first, name):
                    raise ConfigError(
                        f"ensemble members must share {name}: {getattr(first, name)!r} and "
                        f"{getattr(config, name)!r}"
                    )
        weights = [1.0] * len(members) if weights is None else [float(w) for w in weights]
        if len(weights) != len(members) or not all(0 < w < float("inf") for w in weights):
            raise ConfigError(
                f"need one positive weight per member ({len(members)}), got {weights}"
            )
        self.members = nn.ModuleList(members)
        self.weights = tuple(w / sum(weights) for w in weights)
        self.config = first

    def to_checkpoint(self, metadata: dict[str, Any] | None = None) -> Checkpoint:
        parts = [member.to_checkpoint() for member in self.members]
        return Checkpoint(
            task=self.task,
            architecture="ensemble",
            model_config={
                "members": [
                    {"architecture": p.architecture, "network": p.model_config} for p in parts
                ]
            },
            task_config={
                "model_type": self.model_type,
                "weights": list(self.weights),
                "members": [p.task_config for p in parts],
            },
            state_dict={
                f"members.{i}.{name}": value
                for i, part in enumerate(parts)
                for name, value in part.state_dict.items()
            },
            metadata=dict(metadata or {}),
        )

    def save(self, path: str | os.PathLike, metadata: dict[str, Any] | None = None) -> None:
        save_checkpoint(self.to_checkpoint(metadata), path)

    @classmethod
    def from_checkpoint(
        cls, checkpoint: Checkpoint, source: str | os.PathLike = "checkpoint"
    ) -> SpectrogramEnsemble:
        """The ensemble a checkpoint describes, in eval mode (CheckpointError if it cannot be)."""
        configs = checkpoint.task_config.get("members")
        networks = checkpoint.model_config.get("members")
        weights = checkpoint.task_config.get("weights")
        if not (
            isinstance(configs, list)
            and isinstance(networks, list)
            and len(configs) == len(networks) > 0
            and all(
                isinstance(n, dict) and {"architecture", "network"} <= n.keys() for n in networks
            )
        ):
            raise CheckpointError(f"{source}: invalid ensemble (members missing or malformed)")
        members = []
        for i, (config, network) in enumerate(zip(configs, networks, strict=True)):
            prefix = f"members.{i}."
            part = Checkpoint(
                task=checkpoint.task,
                architecture=network["architecture"],
                model_config=network["network"],
                task_config=config,
                state_dict={
                    name[len(prefix) :]: value
                    for name, value in checkpoint.state_dict.items()
                    if name.startswith(prefix)
                },
            )
            members.append(SpectrogramMaskModel.from_checkpoint(part, f"{source} (member {i})"))
        known = {f"members.{i}." for i in range(len(members))}
        if any(".".join(name.split(".")[:2]) + "." not in known for name in checkpoint.state_dict):
            raise CheckpointError(f"{source}: weights that belong to no ensemble member")
        try:
            return cls(members, weights).eval()
        except ConfigError as error:
            raise CheckpointError(f"{source}: invalid ensemble ({error})") from None


def model_from_checkpoint(
    checkpoint: Checkpoint, source: str | os.PathLike = "checkpoint"
) -> SeparationModel | SpectrogramEnsemble:
    """The separation model (any registered kind, or an ensemble) a checkpoint describes."""
    if checkpoint.task_config.get("model_type") == SpectrogramEnsemble.model_type:
        return SpectrogramEnsemble.from_checkpoint(checkpoint, source)
    return SeparationModel.from_checkpoint(checkpoint, source)


def load_model(path: str | os.PathLike) -> SeparationModel | SpectrogramEnsemble:
    """Load a separation model (any registered kind, or an ensemble) from a checkpoint file
    (weights only, no code is executed)."""
    return model_from_checkpoint(load_checkpoint(path, task=TASK), path)
