"""The one checkpoint format: a weights-only torch file that carries its own configuration.

A checkpoint is a plain dict of strings, numbers, lists, dicts and tensors, so it loads with
`torch.load(..., weights_only=True)`, which never executes code from the file:

    format            "vocalsep-checkpoint"
    format_version    FORMAT_VERSION
    vocalsep_version  version that wrote it
    task              who builds the model, e.g. "audio-separation" (opaque to core)
    architecture      network name in `vocalsep.core.networks.ARCHITECTURES`
    model_config      the network config as a dict
    task_config       the task's own config as a dict (for audio: STFT, sample rate, targets...)
    state_dict        the weights
    metadata          free-form: training data, licence, metrics, command, seed...
    training_state    optional: optimizer, scheduler, RNG states, step (for exact resume)
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

from .._version import __version__
from .errors import CheckpointError, VocalsepError
from .files import atomic_file

FORMAT = "vocalsep-checkpoint"
FORMAT_VERSION = 1
_REQUIRED = ("task", "architecture", "model_config", "task_config", "state_dict")


@dataclass
class Checkpoint:
    """Everything needed to rebuild a trained model, without executing code."""

    task: str
    architecture: str
    model_config: dict[str, Any]
    task_config: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    metadata: dict[str, Any] = field(default_factory=dict)
    training_state: dict[str, Any] | None = None
    vocalsep_version: str = __version__
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        payload = {
            "format": FORMAT,
            "format_version": self.format_version,
            "vocalsep_version": self.vocalsep_version,
            "task": self.task,
            "architecture": self.architecture,
            "model_config": self.model_config,
            "task_config": self.task_config,
            "state_dict": {name: tensor.detach().cpu() for name, tensor in self.state_dict.items()},
            "metadata": self.metadata,
        }
        if self.training_state is not None:
            payload["training_state"] = self.training_state
        return payload


def save_checkpoint(checkpoint: Checkpoint, path: str | os.PathLike) -> Path:
    """Write `checkpoint` to `path` atomically (temp file in the same folder, then rename)."""
    path = Path(path)
    with atomic_file(path) as temp, open(temp, "wb") as file:
        torch.save(checkpoint.to_dict(), file)
    return path


def load_checkpoint(path: str | os.PathLike, *, task: str | None = None) -> Checkpoint:
    """Read and validate a checkpoint; raise `CheckpointError` with a one-line reason if the file
    is missing, truncated, not a vocalsep checkpoint, too new, or (with `task`) for another task."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"model file {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "global" in str(error).lower():  # a class or function, not plain data
            raise CheckpointError(
                f"{path} holds Python objects that a weights-only load refuses to run; "
                "it is not a vocalsep checkpoint"
            ) from None
        raise CheckpointError(
            f"cannot read {path}: the file is corrupt or not a checkpoint"
        ) from None
    except Exception as error:  # an untrusted file can fail the unpickler in many ways
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CheckpointError(
            f"cannot read {path}: the file is truncated or not a checkpoint ({reason})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a vocalsep checkpoint")
    version = payload.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} uses checkpoint format {version!r}, this vocalsep {__version__} reads "
            f"format <= {FORMAT_VERSION}; upgrade vocalsep"
        )
    missing = [key for key in _REQUIRED if key not in payload]
    if missing:
        raise CheckpointError(f"{path} is incomplete: missing {', '.join(missing)}")
    if task is not None and payload["task"] != task:
        raise CheckpointError(f"{path} is a {payload['task']!r} model, not a {task!r} model")
    return Checkpoint(
        task=payload["task"],
        architecture=payload["architecture"],
        model_config=payload["model_config"],
        task_config=payload["task_config"],
        state_dict=payload["state_dict"],
        metadata=payload.get("metadata", {}),
        training_state=payload.get("training_state"),
        vocalsep_version=payload.get("vocalsep_version", "unknown"),
        format_version=version,
    )


def load_weights(
    module: torch.nn.Module, checkpoint: Checkpoint, source: str | os.PathLike
) -> None:
    """Load the checkpoint's weights into `module`, turning any mismatch into `CheckpointError`."""
    try:
        module.load_state_dict(checkpoint.state_dict, strict=True)
    except (RuntimeError, TypeError, KeyError) as error:
        first = str(error).splitlines()
        reason = first[1].strip() if len(first) > 1 else (first[0] if first else "")
        raise CheckpointError(
            f"{source}: weights do not match the model described in the file ({reason})"
        ) from None


class CheckpointedModel(torch.nn.Module):
    """A model made of a task config and a registered network, saved as one checkpoint.

    Subclasses set `task` and `model_type` (both written into the checkpoint) and
    `config_class`, are built as `cls(config, architecture, network_config)` and keep those
    three as `config`, `architecture` and `network_config`. A family of model types can
    override `_model_class` to pick the subclass a checkpoint names.
    """

    task: ClassVar[str]
    model_type: ClassVar[str]
    config_class: ClassVar[type]
    config: Any
    architecture: str
    network_config: Any

    @classmethod
    def _model_class(cls, model_type: Any) -> type[CheckpointedModel] | None:
        return cls if model_type == cls.model_type else None

    def to_checkpoint(self, metadata: dict[str, Any] | None = None) -> Checkpoint:
        return Checkpoint(
            task=self.task,
            architecture=self.architecture,
            model_config=self.network_config.to_dict(),
            task_config={"model_type": self.model_type, **self.config.to_dict()},
            # channels_last weights are saved in the plain layout
            state_dict={name: value.contiguous() for name, value in self.state_dict().items()},
            metadata=dict(metadata or {}),
        )

    def save(self, path: str | os.PathLike, metadata: dict[str, Any] | None = None) -> None:
        save_checkpoint(self.to_checkpoint(metadata), path)

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint, source: str | os.PathLike = "checkpoint"):
        """The model a checkpoint describes, in eval mode (CheckpointError if it cannot be)."""
        from .networks import network_config_class

        task_config = dict(checkpoint.task_config)
        model_type = task_config.pop("model_type", None)
        model_class = cls._model_class(model_type)
        if model_class is None:
            raise CheckpointError(f"{source}: unsupported model type {model_type!r}")
        # Fields an earlier version wrote and this one dropped: gone when they hold the value
        # that meant "off", refused when the checkpoint relies on them.
        for name, off in getattr(model_class.config_class, "retired_fields", {}).items():
            if name in task_config and task_config.pop(name) != off:
                raise CheckpointError(
                    f"{source}: the model uses {name}, an experiment this vocalsep "
                    f"{__version__} no longer has; load it with the vocalsep that made it "
                    f"({checkpoint.vocalsep_version})"
                )
        try:
            config = model_class.config_class.from_dict(task_config)
            network = network_config_class(checkpoint.architecture).from_dict(
                checkpoint.model_config
            )
            model = model_class(config, checkpoint.architecture, network)
        except (VocalsepError, TypeError, ValueError) as error:
            raise CheckpointError(f"{source}: invalid model configuration ({error})") from None
        load_weights(model, checkpoint, source)
        return model.eval()
