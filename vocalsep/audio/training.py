"""The audio-separation task for the modality-free trainer.

Loss of a spectrogram model (Jansson et al. 2017): L1 (or `loss`) between
`mask x |mixture STFT|` and `|target STFT|` on the band the network sees, for every target.
Loss of a waveform model (Stoller et al. 2018): L1 or MSE between the estimated and the true
stem waveforms, every target, leaving out the network's context at both ends of the example
(where it would see zeros instead of music, which never happens when separating).
Validation reports that loss and the fast global SDR (`metrics.signal_to_distortion_ratio`,
not BSSEval v4) of waveforms separated by the real inference path (`Separator`), so a
validation number is what a user would get: `sdr_<stem>` is the median over the validation
examples (the usual monitor), `sdr_<stem>_mean` the mean. With a few hundred examples the
median can move by tenths of a dB between two models whose per-example SDRs are nearly the same
(their values crowd around it); compare the mean as well before calling a change an
improvement.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..core.checkpoint import Checkpoint
from ..core.config import Config, FieldError
from ..core.errors import ConfigError
from ..core.losses import LOSSES
from ..core.networks import architecture_names, network_config
from ..core.unet import PRESETS, preset
from .channels import fold_channels, spectrogram_masks
from .datasets import DATASETS, DataConfig, ExcerptSpec
from .metrics import signal_to_distortion_ratio
from .models import (
    MODEL_TYPES,
    SeparationModel,
    SpectrogramModelConfig,
    WaveformModelConfig,
    waveform_context,
)
from .stft import STFT
from .tracks import STEMS

VALIDATION_SEED = 20170101  # fixed: the validation set never depends on the training seed


@dataclass(frozen=True)
class SeparationTaskConfig(Config):
    """model_type: "spectrogram-mask" (the default) or "waveform": the kind of `model`.
    model:        a `SpectrogramModelConfig` (rate, STFT, band, targets, channels, compression)
                  or a `WaveformModelConfig` (rate, targets, channels, output, tiling).
    architecture: a registered architecture (`vocalsep.core.ARCHITECTURES`, e.g. "unet") ...
    preset:       ... starting from one of its presets (`vocalsep.core.unet.PRESETS`:
                  "jansson2017", "fcn", "waveunet"), or "" for the architecture's defaults ...
    network:      ... with these fields replaced (e.g. {channels = [8, 16, 32]}); the input
                  and output channels always come from `model`.
    data:         where examples come from (see `DataConfig`).
    loss:         a name in `vocalsep.core.losses.LOSSES` ("l1", "mse", "smooth_l1"), on masked
                  magnitudes against the stems' magnitudes (spectrogram models, Jansson et
                  al.) or on stem waveforms (waveform models).
    """

    model_type: str = "spectrogram-mask"
    model: SpectrogramModelConfig | WaveformModelConfig = field(
        default_factory=SpectrogramModelConfig
    )
    architecture: str = "unet"
    preset: str = "jansson2017"
    network: dict[str, Any] = field(default_factory=dict)
    data: DataConfig = field(default_factory=DataConfig)
    loss: str = "l1"

    def __post_init__(self) -> None:
        if self.model_type not in MODEL_TYPES:
            raise ConfigError(
                f"unknown model_type {self.model_type!r} (known: {MODEL_TYPES.names()})"
            )
        expected = MODEL_TYPES.get(self.model_type).config_class
        if not isinstance(self.model, expected):
            raise ConfigError(f"model_type {self.model_type!r} needs a {expected.__name__}")
        if self.architecture not in architecture_names():
            known = ", ".join(architecture_names())
            raise ConfigError(f"unknown architecture {self.architecture!r} (known: {known})")
        if self.preset and self.preset not in PRESETS:
            raise ConfigError(f"unknown preset {self.preset!r} (known: {PRESETS.names()})")
        if self.preset and self.architecture != "unet":
            raise ConfigError(
                f"preset {self.preset!r} builds a unet, not a {self.architecture}; set "
                "preset = '' and give the network's fields"
            )
        if self.loss not in LOSSES:
            raise ConfigError(f"unknown loss {self.loss!r} (known: {LOSSES.names()})")
        if self.model.audio_channels not in (1, self.data.channels):
            raise ConfigError(
                "model.audio_channels must be 1 (channels separately) or data.channels"
            )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SeparationTaskConfig:
        """As `Config.from_dict`, reading `model` with the config class of `model_type`."""
        if isinstance(data, dict):
            model_type = data.get("model_type", cls.model_type)
            model = data.get("model", {})
            if model_type in MODEL_TYPES and isinstance(model, dict):
                config_class = MODEL_TYPES.get(model_type).config_class
                try:
                    data = {**data, "model": config_class.from_dict(model)}
                except FieldError as error:
                    raise error.within("model") from None
        return super().from_dict(data)


def _stack(examples: list[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
    return {key: torch.from_numpy(np.stack([e[key] for e in examples])) for key in examples[0]}


class SeparationTask:
    """Trains a separation model (spectrogram or waveform) from `SeparationTaskConfig` (see
    `vocalsep.train.Task`)."""

    def __init__(
        self, config: SeparationTaskConfig, *, progress: Callable[[str], None] | None = None
    ) -> None:
        self.config = config
        self.progress = progress
        self.waveform = config.model_type == "waveform"
        self.loss_fn = LOSSES.get(config.loss)
        self._validation: list[dict[str, np.ndarray]] | None = None
        self.margin = 0  # samples at both ends of an example that a waveform loss leaves out
        if self.waveform:
            self.margin = waveform_context(config.model, self.network_config())
            rate = config.model.sample_rate
            if round(config.data.segment_seconds * rate) <= 2 * self.margin:
                raise ConfigError(
                    f"data.segment_seconds must exceed twice the network's context "
                    f"({2 * self.margin / rate:.2f} s): the loss leaves it out at both ends; "
                    "use longer segments or a shallower network"
                )
        else:
            self.network_config()  # a mistyped `network` field fails here, before any data work
            self.stft = STFT(config.model.stft)

    # -- model ---------------------------------------------------------------------------------

    def network_config(self) -> Config:
        """The network's config: the architecture's (or its preset's) fields, with `network`
        and the model's channels."""
        in_channels, out_channels = self.config.model.network_channels
        overrides = {"in_channels": in_channels, "out_channels": out_channels}
        try:
            if self.config.preset:
                return preset(self.config.preset, **{**self.config.network, **overrides})
            return network_config(self.config.architecture, {**self.config.network, **overrides})
        except FieldError as error:
            raise error.within("network") from None

    def build_model(self) -> SeparationModel:
        model_class = MODEL_TYPES.get(self.config.model_type)
        return model_class(self.config.model, self.config.architecture, self.network_config())

    def checkpoint(self, model: nn.Module, metadata: dict[str, Any]) -> Checkpoint:
        return model.to_checkpoint({**metadata, "task_config": self.config.to_dict()})

    # -- data ----------------------------------------------------------------------------------

    def _cache_dir(self) -> Path | None:
        return Path(self.config.data.cache_dir) if self.config.data.cache_dir else None

    def _dataset(self, split: str, seed: int):
        data = self.config.data
        spec = ExcerptSpec(
            split=split,
            sample_rate=self.config.model.sample_rate,
            channels=data.channels,
            segment_seconds=data.segment_seconds,
            seed=seed,
            cache_dir=self._cache_dir(),
            progress=self.progress,
        )
        return DATASETS.get(data.kind)(data, spec)

    def training_examples(self, seed: int):
        return self._dataset("train", seed)

    def validation_examples(self) -> list[dict[str, np.ndarray]]:
        """The fixed validation set (built once, then kept)."""
        if self._validation is None:
            data = self.config.data
            if data.validation_folder:
                from .pairs import full_tracks

                self._validation = full_tracks(
                    data.validation_folder,
                    sample_rate=self.config.model.sample_rate,
                    channels=data.channels,
                    max_seconds=data.validation_seconds,
                )
            else:
                dataset = self._dataset("validation", VALIDATION_SEED)
                self._validation = [dataset[i] for i in range(data.validation_examples)]
        return self._validation

    def validation_batches(self, batch_size: int) -> Iterator[dict[str, torch.Tensor]]:
        examples = self.validation_examples()
        batch: list[dict[str, np.ndarray]] = []
        for example in examples:
            if batch and (
                len(batch) == batch_size or batch[0]["mixture"].shape != example["mixture"].shape
            ):
                yield _stack(batch)
                batch = []
            batch.append(example)
        if batch:
            yield _stack(batch)

    def collate(self, examples: list[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
        return _stack(examples)

    def to_device(
        self, batch: dict[str, torch.Tensor], device: torch.device
    ) -> dict[str, torch.Tensor]:
        return {key: value.to(device, non_blocking=True) for key, value in batch.items()}

    # -- loss and metrics ----------------------------------------------------------------------

    def _masked(self, model: nn.Module, batch: dict[str, torch.Tensor]):
        """(estimated, target) band magnitudes `(batch, targets, channels, band, frames)`."""
        config = self.config.model
        band = config.band_bins
        mixture = self.stft(batch["mixture"])[..., :band, :].abs()  # (batch, channels, band, T)
        targets = torch.stack(
            [self.stft(batch[name])[..., :band, :].abs() for name in config.targets], dim=1
        )
        mask = spectrogram_masks(model, config, mixture)
        return mask * mixture[:, None], targets

    def _stems(self, model: nn.Module, batch: dict[str, torch.Tensor]):
        """(estimated, target) waveforms `(batch, targets, channels, samples)` without the
        `margin` samples at both ends."""
        config = self.config.model
        estimates = fold_channels(model, batch["mixture"], config.audio_channels)
        targets = torch.stack([batch[name] for name in config.targets], dim=1)
        samples = targets.shape[-1]
        margin = min(self.margin, (samples - 1) // 2)  # validation tracks may be shorter
        keep = slice(margin, samples - margin)
        return estimates[..., keep], targets[..., keep]

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        estimate, target = (self._stems if self.waveform else self._masked)(model, batch)
        return self.loss_fn(estimate.float(), target.float())

    def validate(
        self, model: nn.Module, batches: Iterable[dict[str, torch.Tensor]]
    ) -> Mapping[str, float]:
        from .separator import Separator  # here: the separator is only needed for validation

        device = next(model.parameters()).device
        separator = Separator(model, device=device, chunk_seconds=60.0)
        losses, weights = [], []
        sdrs: dict[str, list[float]] = {stem: [] for stem in separator.stems}
        for batch in batches:
            losses.append(float(self.loss(model, batch)))
            weights.append(batch["mixture"].shape[0])
            mixtures = batch["mixture"].cpu().numpy()
            for i, mixture in enumerate(mixtures):
                estimates = separator.separate(mixture, self.config.model.sample_rate)
                for stem, estimate in estimates.items():
                    reference = batch[stem][i].cpu()
                    if float(reference.abs().max()) < 1e-4:
                        continue  # SDR of a silent reference is undefined
                    sdr = signal_to_distortion_ratio(torch.from_numpy(estimate), reference)
                    sdrs[stem].append(float(sdr))
        metrics = {"loss": float(np.average(losses, weights=weights))}
        for stem, values in sdrs.items():
            if values:
                metrics[f"sdr_{stem}"] = float(np.median(values))
                metrics[f"sdr_{stem}_mean"] = float(np.mean(values))
        if self.config.model.targets[0] in sdrs and sdrs[self.config.model.targets[0]]:
            metrics["sdr"] = metrics[f"sdr_{self.config.model.targets[0]}"]
        return metrics

    # -- listening -----------------------------------------------------------------------------

    def dump_examples(
        self, folder: str | Path, count: int, seed: int, split: str = "train"
    ) -> list[Path]:
        """Write `count` examples as `folder/<index>/{mixture,vocals,accompaniment}.wav`."""
        from .writer import write_audio

        dataset = self._dataset(split, seed if split == "train" else VALIDATION_SEED)
        written = []
        for index in range(count):
            example = dataset[index]
            for stem in STEMS:
                path = Path(folder) / f"{index:04d}" / f"{stem}.wav"
                written.append(
                    write_audio(
                        path, example[stem], self.config.model.sample_rate, "wav", "32f", True
                    )
                )
        return written
