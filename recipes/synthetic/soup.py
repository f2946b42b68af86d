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
import sys
import time
from pathlib import Path

import torch

from vocalsep.audio.models import TASK, model_from_checkpoint
from vocalsep.audio.training import SeparationTask, SeparationTaskConfig
from vocalsep.core.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from vocalsep.core.errors import VocalsepError
from vocalsep.core.soup import average_checkpoints
from vocalsep.pretrained import resolve
from vocalsep.train import load_run_config


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
            shown = ", ".join(
                f"{key} {metrics[key]:.3f}" for key in ("sdr_vocals", "sdr_vocals_mean")
            )
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
