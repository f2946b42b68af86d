"""What a task supplies to the modality-free trainer.

The trainer knows nothing of STFTs or pixels: a task builds the model, turns an example index
into an example (so example i of a run is a pure function of the seed and i, whatever the
number of workers or processes), computes the loss of a batch and the validation metrics, and
packs the model into a checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import torch
from torch import nn

from ..core.checkpoint import Checkpoint

Batch = Any


class ExampleSource(Protocol):
    """Index -> example. Training sources are unbounded: any non-negative index is valid."""

    def __getitem__(self, index: int) -> Any: ...


class Task(Protocol):
    """The interface between a modality (audio separation, image segmentation) and the trainer."""

    def build_model(self) -> nn.Module:
        """A fresh, randomly initialised model (the trainer seeds torch before calling)."""
        ...

    def training_examples(self, seed: int) -> ExampleSource:
        """The training stream; example i must depend only on (seed, i)."""
        ...

    def validation_batches(self, batch_size: int) -> Iterable[Batch]:
        """The fixed validation set, identical run to run, as collated CPU batches."""
        ...

    def collate(self, examples: list[Any]) -> Batch:
        """Stack examples into a batch (runs in DataLoader workers: keep it picklable)."""
        ...

    def to_device(self, batch: Batch, device: torch.device) -> Batch: ...

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        """The scalar training loss of one batch."""
        ...

    def validate(self, model: nn.Module, batches: Iterable[Batch]) -> Mapping[str, float]:
        """Validation metrics (the model is in eval mode, gradients are off)."""
        ...

    def checkpoint(self, model: nn.Module, metadata: dict[str, Any]) -> Checkpoint:
        """The model (unwrapped from DDP) as a checkpoint in the one format."""
        ...
