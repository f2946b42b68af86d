"""Average fine-tuned checkpoints into one model ("model soup", Wortsman et al. 2022).

    python recipes/synthetic/soup.py CONFIG --out soup.ckpt CKPT [CKPT ...] [--set K=V ...]
        [--greedy] [--metric sdr_vocals_mean]
    python recipes/synthetic/soup.py CONFIG --score-only CKPT [CKPT ...] [--set K=V ...]

CKPT is a checkpoint file or the name of a shipped model (`vocalsep models`), e.g.
`vocalsep-small`.

Every checkpoint and every soup is scored on the validation mixtures of the run config CONFIG
(with `--set` overrides, as `vocalsep train` takes them), through the real `Separator`. Without
`--greedy` the soup is the uniform average of all the checkpoints. With `--greedy` the
checkpoints are sorted by their own score, the soup starts as the best of them, and each next
one is kept only if adding it (uniformly) raises the soup's score (greedy soup). The soup costs
one model at inference time. Checkpoints must share the architecture, the STFT, the band and
the weights' shapes; fine-tuned descendants of one checkpoint are the ones that average well.
`--score-only` scores the checkpoints (any separation models, ensembles too) and writes
nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from vocalsep.audio.models import TASK, model_from_checkpoint
from vocalsep.audio.training import SeparationTask, SeparationTaskConfig
from vocalsep.core.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from vocalsep.core.errors import CheckpointError, VocalsepError
from vocalsep.pretrained import resolve
from vocalsep.train import load_run_config

# -- averaging ---------------------------------------------------------------------------------
# Weight averaging ("model soups", Wortsman et al. 2022): checkpoints fine-tuned from one
# starting point usually sit in one basin of the loss, and the average of their weights then
# behaves like an ensemble of them at the cost of one model.
#
# `average_checkpoints` averages every floating-point tensor of the state dicts (weights and
# BatchNorm running statistics; integer counters are taken from the first checkpoint). The
# checkpoints must share the task, the architecture, the task config and every tensor's name
# and shape; the network config may differ only in fields that hold no weights (e.g. dropout).
# The result carries the first checkpoint's configs and lists its ingredients in its metadata.


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


def score(task: SeparationTask, checkpoint: str | Checkpoint, metric: str) -> dict[str, float]:
    if not isinstance(checkpoint, Checkpoint):
        checkpoint = load_checkpoint(checkpoint)
    model = model_from_checkpoint(checkpoint, "soup").eval()
    with torch.no_grad():
        metrics = task.validate(model, task.validation_batches(16))
    if metric not in metrics:
        raise VocalsepError(f"no {metric!r} in the validation metrics ({', '.join(metrics)})")
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="run config whose validation mixtures score the soups")
    parser.add_argument("checkpoints", nargs="+")
    output = parser.add_mutually_exclusive_group(required=True)
    output.add_argument("--out", help="where to write the soup")
    output.add_argument("--score-only", action="store_true", help="score, write nothing")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--greedy", action="store_true")
    parser.add_argument("--metric", default="sdr_vocals_mean", help="validation metric (max)")
    args = parser.parse_args(argv)
    if args.out and Path(args.out).exists():
        print(f"soup: {args.out} exists; remove it first", file=sys.stderr)
        return 1
    try:
        files = {name: resolve(name, TASK) for name in args.checkpoints}
        config = load_run_config(args.config, args.overrides)
        task = SeparationTask(SeparationTaskConfig.from_dict(config.task_config))
        task.loss = lambda model, batch: torch.zeros(())  # only the SDRs are needed

        def report(name: str, metrics: dict[str, float], started: float) -> None:
            keys = ("sdr_vocals", "sdr_vocals_mean", "sdr_accompaniment", "sdr_accompaniment_mean")
            shown = ", ".join(f"{key} {metrics[key]:.3f}" for key in keys if key in metrics)
            print(f"{name}: {shown} ({time.perf_counter() - started:.0f} s)", flush=True)

        scores = {}
        for path in args.checkpoints:
            started = time.perf_counter()
            scores[path] = score(task, files[path], args.metric)
            report(path, scores[path], started)
        if args.score_only:
            return 0
        ranked = sorted(args.checkpoints, key=lambda p: scores[p][args.metric], reverse=True)
        if args.greedy:
            kept, best = [ranked[0]], scores[ranked[0]][args.metric]
            soup = average_checkpoints([files[name] for name in kept])
            for path in ranked[1:]:
                started = time.perf_counter()
                candidate = average_checkpoints([files[name] for name in (*kept, path)])
                metrics = score(task, candidate, args.metric)
                better = metrics[args.metric] > best
                verdict = "kept" if better else "left out"
                report(f"soup of {len(kept) + 1} with {path} ({verdict})", metrics, started)
                if better:
                    kept, best, soup = [*kept, path], metrics[args.metric], candidate
        else:
            kept = ranked
            started = time.perf_counter()
            soup = average_checkpoints([files[name] for name in kept])
            report(f"uniform soup of {len(kept)}", score(task, soup, args.metric), started)
        path = save_checkpoint(soup, args.out)
        print(f"wrote {path}: the average of {len(kept)}: {', '.join(kept)}")
    except VocalsepError as error:
        print(f"soup: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
