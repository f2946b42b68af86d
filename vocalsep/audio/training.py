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
from ..core.unet import PRESETS, preset
from .datasets import (
    STEMS,
    DataConfig,
    DatasetError,
    ExcerptSpec,
    MusdbMixtures,
    SynthesizedMixtures,
)
from .metrics import signal_to_distortion_ratio
from .models import (
    MODEL_TYPES,
    SeparationModel,
    SpectrogramModelConfig,
    WaveformModelConfig,
    fold_channels,
    spectrogram_masks,
    waveform_context,
)
from .stft import STFT

LOSS_TARGETS = ("magnitude", "phase_sensitive")
VALIDATION_SEED = 20170101  # fixed: the validation set never depends on the training seed


@dataclass(frozen=True)
class SeparationTaskConfig(Config):
    """model_type: "spectrogram-mask" (the default) or "waveform": the kind of `model`.
    model:        a `SpectrogramModelConfig` (rate, STFT, band, targets, channels, compression)
                  or a `WaveformModelConfig` (rate, targets, channels, output, tiling).
    preset:       a network preset of `vocalsep.core.unet.PRESETS` (e.g. "jansson2017",
                  "waveunet") ...
    network:      ... with these fields replaced (e.g. {channels = [8, 16, 32]}).
    architecture: the registered architecture the preset builds ("unet").
    data:         where examples come from (see `DataConfig`).
    loss:         a name in `vocalsep.core.losses.LOSSES` ("l1", "mse", "smooth_l1"), on masked
                  magnitudes (spectrogram models) or stem waveforms (waveform models).
    loss_target:  what a spectrogram model's masked magnitudes are compared with: "magnitude"
                  (`|S|`, Jansson et al.) or "phase_sensitive" (`|S| cos(angle(S) - angle(X))`,
                  truncated to `[0, |X|]`; Erdogan et al. 2015): the part of the target that is
                  in phase with the mixture, which is all a mask on the mixture's phase can
                  recover. It asks for less where the other stems cancel the target, which is
                  what the waveform SDR rewards.
    cue_dropout:  (models with `stereo_cue`) share of the training items whose stereo cue is
                  replaced by "no stereo information", as for a mono song, so that the
                  network keeps separating well without the cue (modality dropout).
    teacher:      (spectrogram models) a separation checkpoint (one model or an ensemble, at
                  the same sample rate, with the same targets) whose estimates the student
                  also learns from (knowledge distillation): in training, the target of every
                  bin is `(1 - teacher_weight) x` the true one `+ teacher_weight x` the
                  teacher's masked mixture, both on the student's STFT. Validation still
                  compares with the truth. Empty (the default): no teacher.
    teacher_weight: the teacher's share of the training target, in [0, 1].
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
    loss_target: str = "magnitude"
    cue_dropout: float = 0.0
    teacher: str = ""
    teacher_weight: float = 0.5

    def __post_init__(self) -> None:
        if self.model_type not in MODEL_TYPES:
            raise ConfigError(
                f"unknown model_type {self.model_type!r} (known: {MODEL_TYPES.names()})"
            )
        expected = MODEL_TYPES.get(self.model_type).config_class
        if not isinstance(self.model, expected):
            raise ConfigError(f"model_type {self.model_type!r} needs a {expected.__name__}")
        if self.preset not in PRESETS:
            raise ConfigError(f"unknown preset {self.preset!r} (known: {PRESETS.names()})")
        if self.loss not in LOSSES:
            raise ConfigError(f"unknown loss {self.loss!r} (known: {LOSSES.names()})")
        if self.loss_target not in LOSS_TARGETS:
            raise ConfigError(
                f"unknown loss_target {self.loss_target!r} (known: {', '.join(LOSS_TARGETS)})"
            )
        if self.loss_target != "magnitude" and self.model_type != "spectrogram-mask":
            raise ConfigError("loss_target applies to spectrogram models only")
        if not 0 <= self.cue_dropout <= 1:
            raise ConfigError(f"cue_dropout must be in [0, 1], got {self.cue_dropout}")
        if self.cue_dropout and not getattr(self.model, "stereo_cue", False):
            raise ConfigError("cue_dropout needs a model with stereo_cue = true")
        if not 0 <= self.teacher_weight <= 1:
            raise ConfigError(f"teacher_weight must be in [0, 1], got {self.teacher_weight}")
        if self.teacher and self.model_type != "spectrogram-mask":
            raise ConfigError("teacher applies to spectrogram models only")
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
        # A wrong teacher fails here, before any data work; its Separator is built on first use.
        self._teacher_model = self._load_teacher() if config.teacher else None
        self._teacher = None  # the teacher's Separator on the device of the last batch

    def _load_teacher(self):
        """`config.teacher`, loaded and checked against the student's rate and targets."""
        from .models import SpectrogramEnsemble, SpectrogramMaskModel, load_model

        model = load_model(self.config.teacher)
        if not isinstance(model, SpectrogramMaskModel | SpectrogramEnsemble):
            raise ConfigError(f"teacher {self.config.teacher}: not a spectrogram model")
        student = self.config.model
        if model.config.sample_rate != student.sample_rate:
            raise ConfigError(
                f"teacher {self.config.teacher}: {model.config.sample_rate} Hz, the student "
                f"{student.sample_rate} Hz"
            )
        if list(model.config.targets) != list(student.targets):
            raise ConfigError(
                f"teacher {self.config.teacher}: targets {list(model.config.targets)}, the "
                f"student {list(student.targets)}"
            )
        return model

    def teacher(self, device: torch.device):
        """The teacher's `Separator` on `device` (None without a teacher)."""
        if self._teacher_model is None:
            return None
        if self._teacher is None or self._teacher.device.type != device.type:
            from .separator import Separator

            self._teacher = Separator(self._teacher_model, device=device)
        return self._teacher

    # -- model ---------------------------------------------------------------------------------

    def network_config(self) -> Config:
        """The network's config: the preset with `network` and the model's channels."""
        in_channels, out_channels = self.config.model.network_channels
        overrides = {"in_channels": in_channels, "out_channels": out_channels}
        try:
            return preset(self.config.preset, **{**self.config.network, **overrides})
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
        if data.kind == "synthesized":
            return SynthesizedMixtures(data.synthesized, spec)
        if data.kind == "musdb":
            return MusdbMixtures(data.musdb, spec)
        from .pairs import PairedExcerpts  # the folder layout shares code with evaluation

        return PairedExcerpts(data.folder, spec)

    def training_examples(self, seed: int):
        return self._dataset("train", seed)

    def validation_examples(self) -> list[dict[str, np.ndarray]]:
        """The fixed validation set (built once, then kept)."""
        if self._validation is None:
            data = self.config.data
            if data.validation.startswith("folder:"):
                from .pairs import full_tracks

                self._validation = full_tracks(
                    data.validation.removeprefix("folder:"),
                    sample_rate=self.config.model.sample_rate,
                    channels=data.channels,
                    max_seconds=data.validation_seconds,
                )
            elif data.validation:
                raise DatasetError(
                    f"data.validation must be empty or 'folder:PATH', got {data.validation!r}"
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
        spectrum = self.stft(batch["mixture"])[..., :band, :]  # (batch, channels, band, T)
        mixture = spectrum.abs()
        stems = torch.stack(
            [self.stft(batch[name])[..., :band, :] for name in config.targets], dim=1
        )
        if self.config.loss_target == "phase_sensitive":
            phase = spectrum / mixture.clamp_min(1e-8)  # the mixture's phase
            in_phase = (stems * phase[:, None].conj()).real
            targets = torch.minimum(in_phase.clamp_min(0), mixture[:, None])
        else:
            targets = stems.abs()
        teacher = self.teacher(spectrum.device) if model.training else None
        if teacher is not None:
            masks = teacher.batch_masks(batch["mixture"], self.stft)[..., :band, :].clone()
            weight = self.config.teacher_weight
            targets = (1 - weight) * targets + weight * masks * mixture[:, None]
        hide_cue = None
        if self.config.cue_dropout and model.training:
            hide_cue = (
                torch.rand(spectrum.shape[0], device=spectrum.device) < self.config.cue_dropout
            )
        mask = spectrogram_masks(model, config, spectrum, mixture, hide_cue)
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
        from .io import write_audio

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
