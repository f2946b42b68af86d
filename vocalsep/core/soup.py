"""Weight averaging ("model soups", Wortsman et al. 2022): checkpoints fine-tuned from one
starting point usually sit in one basin of the loss, and the average of their weights then
behaves like an ensemble of them at the cost of one model.

`average_checkpoints` averages every floating-point tensor of the state dicts (weights and
BatchNorm running statistics; integer counters are taken from the first checkpoint). The
checkpoints must share the task, the architecture, the task config and every tensor's name
and shape; the network config may differ only in fields that hold no weights (e.g. dropout).
The result carries the first checkpoint's configs and lists its ingredients in its metadata.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from .checkpoint import Checkpoint, load_checkpoint
from .errors import CheckpointError


def average_checkpoints(
    paths: Sequence[str | os.PathLike], weights: Sequence[float] | None = None
) -> Checkpoint:
    """The (weighted, default uniform) average of the checkpoints at `paths`."""
    if not paths:
        raise CheckpointError("nothing to average: give at least one checkpoint")
    weights = [1.0] * len(paths) if weights is None else [float(w) for w in weights]
    if len(weights) != len(paths) or min(weights) < 0 or sum(weights) <= 0:
        raise CheckpointError("need one non-negative weight per checkpoint, not all zero")
    total = sum(weights)
    first = load_checkpoint(paths[0])
    summed = {
        name: tensor.double() * (weights[0] / total) if tensor.is_floating_point() else tensor
        for name, tensor in first.state_dict.items()
    }
    for path, weight in zip(paths[1:], weights[1:], strict=True):
        other = load_checkpoint(path)
        for key in ("task", "architecture", "task_config"):
            if getattr(other, key) != getattr(first, key):
                raise CheckpointError(f"{path}: its {key} differs from {paths[0]}'s")
        if other.state_dict.keys() != first.state_dict.keys():
            raise CheckpointError(f"{path}: its weights are not named as {paths[0]}'s")
        for name, tensor in other.state_dict.items():
            if tensor.shape != summed[name].shape:
                raise CheckpointError(
                    f"{path}: {name} has shape {tuple(tensor.shape)}, "
                    f"not {tuple(summed[name].shape)}"
                )
            if tensor.is_floating_point():
                summed[name] += tensor.double() * (weight / total)
    state = {name: tensor.to(first.state_dict[name].dtype) for name, tensor in summed.items()}
    metadata = dict(first.metadata)
    metadata["soup"] = [
        {"checkpoint": os.fspath(path), "weight": weight / total}
        for path, weight in zip(paths, weights, strict=True)
    ]
    return Checkpoint(
        task=first.task,
        architecture=first.architecture,
        model_config=first.model_config,
        task_config=first.task_config,
        state_dict=state,
        metadata=metadata,
    )
