"""The image-segmentation task for the modality-free trainer.

Training examples are random augmented crops (`transforms.augment`) of the training images,
each image once per epoch in an order drawn from the seed. Validation predicts every
validation image whole, through the same tiled path as `vocalsep segment`, and reports the
loss and the scores of the summed confusion matrix (`metrics.SegmentationScores`: global_acc,
class_acc, miou, fwiou, dice, pixel_error, iou_<class>), so `monitor = "miou"` selects on what a
user would get.
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
from ..core.config import Config
from ..core.errors import ConfigError
from ..core.networks import architecture_names
from .datasets import DATASETS, SegmentationFolder, find_pairs, fold_names
from .errors import DatasetError
from .losses import LossConfig, median_frequency_weights, segmentation_loss
from .metrics import SegmentationScores
from .models import SegmentationModel, SegmentationModelConfig, network_config
from .predict import label_picture, overlay_picture, predict_logits
from .transforms import AugmentConfig, augment

CUSTOM = "custom"


@dataclass(frozen=True)
class SegmentationDataConfig(Config):
    """train:      a dataset folder (`images/` + `labels/`) to train on.
    validation:    a dataset folder to validate (and select the best checkpoint) on ...
    folds, fold:   ... or, with `folds` >= 2 and no `validation`, cross-validation: fold `fold`
                   (a contiguous block of the images in natural order) of `train` is held out.
    cache:         keep decoded images in memory.
    """

    train: str = ""
    validation: str = ""
    folds: int = 0
    fold: int = 0
    cache: bool = True

    def __post_init__(self) -> None:
        if self.folds and self.validation:
            raise ConfigError("give data.validation or data.folds, not both")
        if self.folds and not (self.folds >= 2 and 0 <= self.fold < self.folds):
            raise ConfigError(
                f"need folds >= 2 and 0 <= fold < folds, got {self.fold}/{self.folds}"
            )


@dataclass(frozen=True)
class SegmentationTaskConfig(Config):
    """dataset:   a class table of `vocalsep.image.datasets.DATASETS` ("camvid", "membrane"),
                  or "custom", where `model` gives the classes.
    model:        `SegmentationModelConfig` fields replacing the dataset's (tiling, or the class
                  names, values and colours of a custom dataset).
    architecture: a registered core architecture ("unet") ...
    network:      ... built from `models.DEFAULT_NETWORK` with these fields replaced.
    data, augment, loss: see their classes.
    """

    dataset: str = CUSTOM
    model: dict[str, Any] = field(default_factory=dict)
    architecture: str = "unet"
    network: dict[str, Any] = field(default_factory=dict)
    data: SegmentationDataConfig = field(default_factory=SegmentationDataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    loss: LossConfig = field(default_factory=LossConfig)

    def __post_init__(self) -> None:
        if self.dataset != CUSTOM and self.dataset not in DATASETS:
            raise ConfigError(
                f"unknown dataset {self.dataset!r} (known: {', '.join(DATASETS)}, {CUSTOM})"
            )
        if self.architecture not in architecture_names():
            known = ", ".join(architecture_names())
            raise ConfigError(f"unknown architecture {self.architecture!r} (known: {known})")
        if not self.data.train:
            raise ConfigError("data.train must name a dataset folder (with images/ and labels/)")
        if not self.data.folds and not self.data.validation:
            raise ConfigError("give data.validation (a folder) or data.folds (cross-validation)")
        model = self.model_config()
        self.network_config()
        weights = self.loss.class_weights
        if weights and len(weights) != model.num_classes:
            raise ConfigError(
                f"loss.class_weights has {len(weights)} values for {model.num_classes} classes"
            )

    def model_config(self) -> SegmentationModelConfig:
        base = (
            SegmentationModelConfig()
            if self.dataset == CUSTOM
            else DATASETS.get(self.dataset).model
        )
        return SegmentationModelConfig.from_dict({**base.to_dict(), **self.model})

    def network_config(self) -> Config:
        model = self.model_config()
        return network_config(
            model.in_channels, model.num_classes, self.architecture, **self.network
        )


class TrainingCrops:
    """Index -> an augmented `(image, label)` example; example i depends only on (seed, i).

    Example i shows image `order[i % n]` of epoch `i // n`, with `order` a permutation drawn
    from (seed, epoch): every image once per epoch."""

    def __init__(
        self, dataset: SegmentationFolder, config: AugmentConfig, seed: int, ignore_index: int
    ) -> None:
        self.dataset = dataset
        self.config = config
        self.seed = seed
        self.ignore_index = ignore_index

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        count = len(self.dataset)
        epoch, position = divmod(index, count)
        order = np.random.default_rng([self.seed, epoch]).permutation(count)
        image, label = self.dataset[int(order[position])]
        rng = np.random.default_rng([self.seed, index, 1])
        return augment(image, label, self.config, rng, self.ignore_index)


def _stack(examples: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, torch.Tensor]:
    """`image`: `uint8 (batch, channels, h, w)`, `label`: `uint8 (batch, h, w)`."""
    images = torch.from_numpy(np.stack([image for image, _ in examples])).permute(0, 3, 1, 2)
    labels = torch.from_numpy(np.stack([label for _, label in examples]))
    return {"image": images.contiguous(), "label": labels}


class SegmentationTask:
    """Trains a `SegmentationModel` from `SegmentationTaskConfig` (see `vocalsep.train.Task`)."""

    def __init__(
        self, config: SegmentationTaskConfig, *, progress: Callable[[str], None] | None = None
    ) -> None:
        self.config = config
        self.model_config = config.model_config()
        self.progress = progress
        self._datasets: dict[str, SegmentationFolder] = {}
        self._weights: np.ndarray | None = None
        self._device_weights: torch.Tensor | None = None

    # -- model ---------------------------------------------------------------------------------

    def build_model(self) -> SegmentationModel:
        return SegmentationModel(
            self.model_config, self.config.architecture, self.config.network_config()
        )

    def checkpoint(self, model: nn.Module, metadata: dict[str, Any]) -> Checkpoint:
        return model.to_checkpoint({**metadata, "task_config": self.config.to_dict()})

    # -- data ----------------------------------------------------------------------------------

    def dataset(self, split: str) -> SegmentationFolder:
        """The "train" or "validation" images (opened once, then kept)."""
        if split not in self._datasets:
            data = self.config.data
            if data.folds:
                names = [name for name, _, _ in find_pairs(data.train)]
                train, held_out = fold_names(names, data.folds, data.fold)
                folder, names = data.train, (train if split == "train" else held_out)
            else:
                folder, names = (data.train if split == "train" else data.validation), None
            self._datasets[split] = SegmentationFolder(
                folder, self.model_config, names=names, cache=data.cache
            )
        return self._datasets[split]

    def training_examples(self, seed: int) -> TrainingCrops:
        crop = self.config.augment.crop
        if not crop[0] and len({image.shape for image, _ in self._examples("train")}) > 1:
            raise DatasetError(
                f"{self.config.data.train} holds images of different sizes; set augment.crop "
                "so that training examples can be batched"
            )
        return TrainingCrops(
            self.dataset("train"), self.config.augment, seed, self.model_config.ignore_index
        )

    def _examples(self, split: str) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        dataset = self.dataset(split)
        return (dataset[index] for index in range(len(dataset)))

    def validation_batches(self, batch_size: int) -> Iterator[dict[str, torch.Tensor]]:
        batch: list[tuple[np.ndarray, np.ndarray]] = []
        for example in self._examples("validation"):
            if batch and (len(batch) == batch_size or batch[0][0].shape != example[0].shape):
                yield _stack(batch)
                batch = []
            batch.append(example)
        if batch:
            yield _stack(batch)

    def collate(self, examples: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, torch.Tensor]:
        return _stack(examples)

    def to_device(
        self, batch: dict[str, torch.Tensor], device: torch.device
    ) -> dict[str, torch.Tensor]:
        """Images become `float32` in [0, 1], labels `int64`."""
        image = batch["image"].to(device, non_blocking=True).float().div_(255)
        return {"image": image, "label": batch["label"].to(device, non_blocking=True).long()}

    # -- loss and metrics ----------------------------------------------------------------------

    def class_weights(self) -> np.ndarray | None:
        """The cross-entropy class weights (median-frequency ones computed once)."""
        loss = self.config.loss
        if loss.class_weighting == "none":
            return None
        if self._weights is None:
            if loss.class_weighting == "fixed":
                self._weights = np.array(loss.class_weights, dtype=np.float32)
            else:
                if self.progress:
                    self.progress("computing median-frequency class weights")
                self._weights = median_frequency_weights(
                    self.dataset("train").labels(),
                    self.model_config.num_classes,
                    self.model_config.ignore_index,
                )
            self._weights = (self._weights**loss.class_weight_power).astype(np.float32)
        return self._weights

    def _weight_tensor(self, device: torch.device) -> torch.Tensor | None:
        weights = self.class_weights()
        if weights is None:
            return None
        if self._device_weights is None or self._device_weights.device != device:
            self._device_weights = torch.from_numpy(weights).to(device)
        return self._device_weights

    def _loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return segmentation_loss(
            logits,
            labels,
            self.config.loss,
            weight=self._weight_tensor(logits.device),
            ignore_index=self.model_config.ignore_index,
        )

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self._loss(model(batch["image"]), batch["label"])

    def validate(
        self, model: nn.Module, batches: Iterable[dict[str, torch.Tensor]]
    ) -> Mapping[str, float]:
        scores = SegmentationScores(self.model_config.class_names, self.model_config.ignore_index)
        losses, weights = [], []
        for batch in batches:
            logits = predict_logits(model, batch["image"])
            losses.append(float(self._loss(logits, batch["label"])))
            weights.append(len(logits))
            scores.add(batch["label"], logits.argmax(dim=1))
        metrics = {"loss": float(np.average(losses, weights=weights))}
        # Per-class IoUs of classes absent from the validation set are NaN: left out.
        metrics.update((key, value) for key, value in scores.as_dict().items() if value == value)
        return metrics

    # -- looking at the data -------------------------------------------------------------------

    def dump_examples(
        self, folder: str | Path, count: int, seed: int, split: str = "train"
    ) -> list[Path]:
        """Write `count` training examples (augmented crops; `split="validation"`: validation
        images) as `folder/<index>_{image,labels,overlay}.png`."""
        from .io import write_pngs

        if split == "train":
            source = self.training_examples(seed)
        else:
            dataset = self.dataset("validation")
            source = [dataset[index] for index in range(min(count, len(dataset)))]
            count = len(source)
        written: list[Path] = []
        for index in range(count):
            image, label = source[index]
            stem = Path(folder) / f"{index:04d}"
            pictures = {
                stem.with_name(f"{stem.name}_image.png"): overlay_picture(
                    image, label, self.model_config, alpha=0.0
                ),
                stem.with_name(f"{stem.name}_labels.png"): label_picture(label, self.model_config),
                stem.with_name(f"{stem.name}_overlay.png"): overlay_picture(
                    image, label, self.model_config
                ),
            }
            written += write_pngs(pictures, overwrite=True)
        return written
