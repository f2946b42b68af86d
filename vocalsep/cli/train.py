"""`vocalsep train`."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from .common import print_error


def add_parser(commands) -> None:
    train = commands.add_parser(
        "train",
        help="train a model from a TOML run config",
        description="Train a model from a TOML run config (see recipes/). Checkpoints "
        "(last.ckpt, best.ckpt) and log.jsonl go to --out.",
    )
    train.add_argument(
        "config",
        metavar="CONFIG.toml",
        help="run config, or a recipe folder (its config.toml, or its only .toml file)",
    )
    train.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set trainer.steps=500 (repeatable)",
    )
    train.add_argument(
        "--out", default=None, metavar="DIR", help="run folder (default: runs/<config name>)"
    )
    train.add_argument("--resume", action="store_true", help="continue the run in --out")
    train.add_argument(
        "--dump-examples",
        default=None,
        metavar="DIR",
        help="write example mixtures to DIR (to listen to) instead of training",
    )
    train.add_argument(
        "--dump-count", type=int, default=8, metavar="N", help="examples to dump (default: 8)"
    )
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    train.set_defaults(func=_train)


def _raise_keyboard_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _train(args: argparse.Namespace) -> int:
    from .. import api
    from ..core.errors import VocalsepError
    from ..train import TrainingInterrupted
    from ..train.config import config_file

    try:
        config = config_file(args.config)
        if args.dump_examples:
            written = api.dump_examples(
                config, args.dump_examples, count=args.dump_count, overrides=args.overrides
            )
            for path in written:
                print(path)
            return 0
        name = Path(args.config).name if Path(args.config).is_dir() else config.stem
        out = Path(args.out) if args.out else Path("runs") / name
        # `kill PID` (SIGTERM) stops a run like Ctrl-C: last.ckpt is saved for --resume.
        signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        result = api.train(
            config,
            out,
            overrides=args.overrides,
            resume=args.resume,
            progress=not args.no_progress,
            metadata={"command": " ".join(["vocalsep", *sys.argv[1:]])},
        )
    except TrainingInterrupted as error:
        print_error(error)
        return 130
    except VocalsepError as error:
        print_error(f"{error}{_data_hint(error, Path(args.config))}")
        return 1
    if not result.main_process:
        return 0
    print(f"trained {result.step} steps in {result.seconds:.0f} s: {result.last}")
    if result.best is not None and result.best_score is not None:
        print(f"best ({result.best_score:.4g}): {result.best}")
    return 0


def _data_hint(error: Exception, config: Path) -> str:
    """Where a recipe says how to get its data, for an error about missing training data."""
    from ..audio.pools import DatasetError as AudioDatasetError
    from ..audio.tracks import TrackError
    from ..image.errors import DatasetError as ImageDatasetError

    if not isinstance(error, (AudioDatasetError, TrackError, ImageDatasetError)):
        return ""
    recipe = config if config.is_dir() else config.parent
    makers = sorted(recipe.glob("make_*.py"))
    missing = getattr(error, "path", None)
    if makers and missing is not None:
        return f" (make it with: python {makers[0]} {Path(missing).parent}; see {recipe}/README.md)"
    if (recipe / "README.md").is_file():
        return f" (see {recipe}/README.md for how to get this data)"
    return ""
