"""5-fold cross-validation of the membrane recipe through the public API.

    python recipes/membrane/crossval.py [--config recipes/membrane/config.toml]
        [--out runs/membrane] [--folds 5] [--set KEY=VALUE ...]

Trains fold k into OUT/fold<k> (a fold whose `last.ckpt` exists is resumed, so the command can
be run again after an interruption) and prints, per fold and as the mean over folds, the pixel
error (1 - pixel accuracy) and the IoU of the membrane (foreground) and of the cells, scored on
the held-out images at the last step by the same tiled prediction `vocalsep segment` uses.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vocalsep import api
from vocalsep.core.errors import VocalsepError
from vocalsep.train import TrainingInterrupted

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(HERE / "config.toml"))
    parser.add_argument("--out", default="runs/membrane", help="one run folder per fold in here")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="K=V")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    rows = []
    for fold in range(args.folds):
        out = Path(args.out) / f"fold{fold}"
        overrides = [
            *args.overrides,
            f"task_config.data.folds={args.folds}",
            f"task_config.data.fold={fold}",
        ]
        try:
            result = api.train(
                args.config,
                out,
                overrides=overrides,
                resume=(out / "last.ckpt").exists(),
                progress=not args.no_progress,
            )
        except (VocalsepError, TrainingInterrupted) as error:
            print(f"crossval: error: fold {fold}: {error}", file=sys.stderr)
            return 1
        final = result.validations[-1]  # the last step's scores on the held-out images
        rows.append((final["pixel_error"], final["iou_membrane"], final["iou_cell"]))
        print(
            f"fold {fold}: pixel error {100 * rows[-1][0]:.2f}%  membrane IoU "
            f"{100 * rows[-1][1]:.2f}  cell IoU {100 * rows[-1][2]:.2f}  ({out})",
            flush=True,
        )
    means = [sum(column) / len(rows) for column in zip(*rows, strict=True)]
    print(
        f"mean of {len(rows)} folds: pixel error {100 * means[0]:.2f}%  membrane (foreground) "
        f"IoU {100 * means[1]:.2f}  cell IoU {100 * means[2]:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
