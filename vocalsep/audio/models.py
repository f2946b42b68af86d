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
from typing import Any

import torch
from torch import nn

from ..core.checkpoint import Checkpoint, CheckpointedModel, load_checkpoint, save_checkpoint
from ..core.config import Config
from ..core.errors import CheckpointError, ConfigError
from ..core.networks import build_network
from ..core.registry import Registry
from .modelconfig import (  # noqa: F401 (re-exported: the configs' historical home)
    COMPRESSIONS,
    MASK_EXTENSIONS,
    OUTPUTS,
    TASK,
    SpectrogramModelConfig,
    WaveformModelConfig,
)


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
