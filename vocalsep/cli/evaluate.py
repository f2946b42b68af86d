"""`vocalsep evaluate`, for separation (BSSEval v4) and for segmentation."""

from __future__ import annotations

import argparse

from .common import add_device, option_error, print_error, with_bar


def add_parser(commands) -> None:
    evaluate = commands.add_parser(
        "evaluate",
        help="score a model, a baseline or stems on disk with BSSEval v4 (museval)",
        description="Score separation with BSSEval v4 (museval): SDR, SIR, SAR and ISR on 1 s "
        "windows, median over windows then over tracks, as in SiSEC 2018. Give exactly one of "
        "--model, --baseline or --estimates. Needs the museval package "
        "(pip install 'vocalsep[train]').",
    )
    evaluate.add_argument(
        "--task",
        default="audio",
        choices=["audio", "image"],
        help="audio: separation with BSSEval v4 (default); image: segmentation of ROOT/images "
        "against ROOT/labels with --model (pixel accuracy, IoU, Dice per class and overall)",
    )
    evaluate.add_argument(
        "--dataset",
        default="folder",
        choices=["folder", "musdb18"],
        help="folder: ROOT/<track>/{mixture,vocals,accompaniment}.* (any format and rate); "
        "musdb18: MUSDB18 .stem.mp4 files or MUSDB18-HQ wav folders (default: folder)",
    )
    evaluate.add_argument("--root", required=True, metavar="PATH", help="dataset folder")
    evaluate.add_argument(
        "--subset",
        default="test",
        choices=["train", "test"],
        help="MUSDB18 subset; also names the JSON subfolder (default: test)",
    )
    evaluate.add_argument(
        "--model",
        default=None,
        metavar="NAME|PATH",
        help="model to score: shipped name, 'default' or checkpoint file (no default: give one "
        "of --model, --baseline, --estimates)",
    )
    evaluate.add_argument(
        "--flip",
        action="store_true",
        help="--task image: average the logits of each image and its mirror (as segment --flip)",
    )
    evaluate.add_argument(
        "--crf",
        action="store_true",
        help="--task image: refine the class scores with a dense CRF (as segment --crf)",
    )
    evaluate.add_argument(
        "--baseline",
        default=None,
        choices=["irm", "mixture"],
        help="irm: oracle ideal ratio mask (ceiling); mixture: the mixture as every estimate "
        "(floor)",
    )
    evaluate.add_argument(
        "--estimates",
        default=None,
        metavar="DIR",
        help="score stems already on disk: DIR/<track>/{vocals,accompaniment}.*",
    )
    evaluate.add_argument(
        "--targets",
        default="vocals,accompaniment",
        metavar="LIST",
        help="comma-separated targets to report (default: vocals,accompaniment)",
    )
    evaluate.add_argument(
        "--output", default=None, metavar="DIR", help="write museval JSON to DIR/<subset>/"
    )
    evaluate.add_argument(
        "--csv", default=None, metavar="FILE", help="also write the table as CSV to FILE"
    )
    evaluate.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    evaluate.add_argument(
        "--compare",
        default=None,
        choices=["published"],
        help="print published MUSDB18 results next to this one, grouped by metric (cSDR as "
        "here; uSDR and others apart, never mixed), with year, training data and source",
    )
    evaluate.add_argument(
        "--tracks", type=int, default=None, metavar="N", help="score only the first N tracks"
    )
    evaluate.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="TEXT",
        help="score only tracks whose name contains TEXT (repeatable)",
    )
    add_device(evaluate)
    evaluate.add_argument(
        "--wiener",
        type=int,
        default=0,
        metavar="N",
        help="multichannel Wiener post-filter iterations for --model (default: 0, off)",
    )
    evaluate.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    evaluate.set_defaults(func=_evaluate)


def _evaluate(args: argparse.Namespace) -> int:
    from .. import api

    if args.task == "image":
        return _evaluate_images(args)
    if args.flip or args.crf:
        flag = "--flip" if args.flip else "--crf"
        print_error(f"{flag}: only for --task image (segmentation logits)")
        return 2
    from ..core.errors import OptionError

    try:
        result = with_bar(
            "track",
            args.no_progress,
            lambda progress: api.evaluate(
                args.root,
                dataset=args.dataset,
                subset=args.subset,
                model=args.model,
                baseline=args.baseline,
                estimates=args.estimates,
                targets=[target for target in args.targets.split(",") if target],
                names=args.filter,
                max_tracks=args.tracks,
                output_dir=args.output,
                csv=args.csv,
                overwrite=args.overwrite,
                device=args.device,
                wiener=args.wiener,
                progress=progress,
            ),
        )
    except OptionError as error:  # options that do not fit together: a usage error
        print_error(option_error(error))
        return 2
    if result is None:
        return 1
    print(result.describe())
    print(result.table())
    if args.compare == "published":
        print()
        print(result.comparison())
    return 0


# Options of `evaluate` that only audio separation has, with their defaults.
_AUDIO_ONLY = {
    "baseline": None,
    "estimates": None,
    "dataset": "folder",
    "subset": "test",
    "targets": "vocals,accompaniment",
    "output": None,
    "csv": None,
    "compare": None,
    "wiener": 0,
}


def _evaluate_images(args: argparse.Namespace) -> int:
    from .. import api

    given = [name for name, default in _AUDIO_ONLY.items() if getattr(args, name) != default]
    if given:
        flags = ", ".join(f"--{name}" for name in given)
        print_error(
            f"{flags}: only for --task audio; --task image takes --root, --model, --filter, "
            "--tracks, --flip, --crf"
        )
        return 2
    scores = with_bar(
        "image",
        args.no_progress,
        lambda progress: api.evaluate_segmentation(
            args.root,
            model=args.model,
            names=args.filter,
            max_images=args.tracks,
            device=args.device,
            flip=args.flip,
            crf=args.crf,
            progress=progress,
        ),
    )
    if scores is None:
        return 1
    model = args.model or "the default image model"
    print(
        f"Image segmentation: model {model} on {args.root} ({scores.images} images); "
        "pixels without a class label (void) are not counted"
    )
    print(scores.table())
    return 0
