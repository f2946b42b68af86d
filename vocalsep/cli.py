"""`vocalsep` command line: parse arguments, call the API, print. Nothing else lives here."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from ._version import __version__

PROG = "vocalsep"


def _say(kind: str, message: object, file=None) -> None:
    """`vocalsep: KIND: message` on stderr (or `file`), always exactly one line."""
    text = " ".join(str(message).split())
    print(f"{PROG}: {kind}: {text}", file=sys.stderr if file is None else file)


def _error(message: object, exists_hint: str = "") -> None:
    """One error line; an existing output is named with the flag that replaces it (the API's
    own message names `overwrite=True`)."""
    from .core.errors import OutputExistsError

    if isinstance(message, OutputExistsError):
        message = f"{message.path} exists; pass --overwrite to replace it{exists_hint}"
    _say("error", message)


KEEP_HINT = " or --skip-existing to keep it"


def _one_line_warnings(show):
    """A `warnings.showwarning` that prints vocalsep's own warnings as one
    `vocalsep: warning: ...` line and hands every other warning to `show`."""
    from .core.errors import VocalsepWarning

    def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
        if issubclass(category, VocalsepWarning):
            _say("warning", message, file)
        else:
            show(message, category, filename, lineno, file, line)

    return show_warning


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Separate songs into vocals and accompaniment (karaoke), offline, with the "
        "model shipped inside the package; also train and evaluate models, and segment images "
        "with the same core.",
        epilog=f"Run '{PROG} COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    separate = commands.add_parser(
        "separate",
        help="separate audio files into stems",
        description="Separate audio files (or every audio file in folders) into stems.",
    )
    separate.add_argument(
        "inputs",
        nargs="+",
        metavar="FILE_OR_DIR",
        help="audio files (wav, flac, mp3, ogg, ...; m4a, mp4, aac and others with ffmpeg), or "
        "folders, searched recursively",
    )
    separate.add_argument(
        "-o",
        "--out",
        default="separated",
        metavar="OUTDIR",
        help="output folder (default: ./separated)",
    )
    separate.add_argument(
        "--model",
        default=None,
        metavar="NAME|PATH",
        help="shipped model name (see vocalsep models), 'default' or checkpoint file, "
        "spectrogram or waveform (Wave-U-Net) model (default: vocalsep-small)",
    )
    _add_device(separate)
    separate.add_argument(
        "--stems",
        default=None,
        metavar="LIST",
        help="comma-separated stems to write (default: all the model gives, for the default "
        "model vocals,accompaniment)",
    )
    separate.add_argument(
        "--format",
        default="wav",
        choices=["wav", "flac"],
        help="output file format (default: wav)",
    )
    separate.add_argument(
        "--bit-depth",
        default="16",
        choices=["16", "24", "32f"],
        help="16 or 24-bit integer, or 32-bit float (wav only) (default: 16)",
    )
    separate.add_argument(
        "--filename",
        default="{track}/{stem}.{ext}",
        metavar="TEMPLATE",
        help="output path under OUTDIR with {track} (input name without extension; inputs "
        "of one run that share a name get their folder names too, e.g. album1/01), {stem}, "
        "{ext} and {parent} (the input's folder name); it may not leave OUTDIR "
        "(default: {track}/{stem}.{ext})",
    )
    _add_existing(separate)
    separate.add_argument(
        "--plot",
        action="store_true",
        help="also write a spectrogram PNG of the mixture and the stems per track, beside "
        'them ({stem} = spectrogram, {ext} = png); needs pip install "vocalsep[plot]"',
    )
    separate.add_argument(
        "--chunk-seconds",
        type=float,
        default=30.0,
        metavar="S",
        help="audio processed at once; bounds memory, not the result: any chunk length gives "
        "the one-pass output (default: 30)",
    )
    separate.add_argument(
        "--wiener",
        type=int,
        default=0,
        metavar="N",
        help="multichannel Wiener post-filter iterations (default: 0, off; 1 is typical); "
        "spectrogram models only",
    )
    separate.add_argument("--no-progress", action="store_true", help="hide progress bars")
    separate.set_defaults(func=_separate)

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

    _add_evaluate_parser(commands)
    _add_segment_parser(commands)

    models = commands.add_parser(
        "models",
        help="list the models shipped with vocalsep",
        description="List the models shipped inside the package (no download ever happens), "
        "the default of each command, and with --verbose their model cards (training data, "
        "licences, measured quality).",
    )
    models.add_argument("--verbose", "-v", action="store_true", help="print each model card")
    models.set_defaults(func=_models)
    return parser


def _add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device",
        default="auto",
        choices=["auto", "cpu", "cuda", "mps"],
        help="where the network runs; auto: CUDA, then Apple MPS, then the CPU (default: auto)",
    )


def _add_existing(parser: argparse.ArgumentParser) -> None:
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    existing.add_argument(
        "--skip-existing",
        action="store_true",
        help="keep existing outputs and skip inputs whose outputs all exist (resumes an "
        "interrupted batch; missing outputs of an input are still written)",
    )


def _report_skipped(jobs) -> None:
    skipped = [job for job in jobs if job.skipped]
    if skipped:
        _say("info", f"kept the existing outputs of {len(skipped)} input(s) (--skip-existing)")


def _separate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from . import api
    from .core.errors import VocalsepError

    if args.format == "flac" and args.bit_depth == "32f":
        _error("FLAC stores 16 or 24-bit samples; use --bit-depth 16/24 or --format wav")
        return 2
    try:
        if args.plot:
            from .audio.plot import check_plotting

            check_plotting()
        separator = api.load_separator(
            args.model,
            device=args.device,
            chunk_seconds=args.chunk_seconds,
            wiener_iterations=args.wiener,
        )
    except (VocalsepError, ValueError) as error:
        _error(error)
        return 1
    stems = [stem.strip() for stem in args.stems.split(",")] if args.stems else separator.stems
    stems = [stem for stem in stems if stem]
    unknown = [stem for stem in stems if stem not in separator.stems]
    if unknown or not stems:
        _error(
            f"unknown stem(s) {', '.join(unknown) or '(none given)'}; this model gives "
            f"{', '.join(separator.stems)}"
        )
        return 2
    try:
        jobs = api.plan_jobs(
            args.inputs,
            args.out,
            stems,
            filename=args.filename,
            format=args.format,
            overwrite=args.overwrite,
            skip_existing=args.skip_existing,
            plot=args.plot,
        )
    except VocalsepError as error:
        _error(error)
        return 1

    failed = 0
    for job in jobs:
        if job.error:
            _error(job.error, KEEP_HINT)
            failed += 1
    _report_skipped(jobs)
    todo = [job for job in jobs if not job.error and not job.skipped]
    hide = True if args.no_progress else None  # None: tqdm shows bars only on a terminal
    files = tqdm(todo, desc="files", unit="file", disable=hide, position=0)
    for job in files:
        bar = tqdm(
            desc=job.input.name, unit="s", unit_scale=True, leave=False, disable=hide, position=1
        )

        def progress(done: float, total: float | None, bar=bar) -> None:
            if total and bar.total is None:
                bar.total = round(total, 1)
            bar.n = round(done, 1)
            bar.refresh()

        try:
            written = api.separate_file(
                job.input,
                args.out,
                separator=separator,
                stems=stems,
                format=args.format,
                bit_depth=args.bit_depth,
                overwrite=args.overwrite,
                outputs=job.outputs,
                progress=progress,
            )
        except VocalsepError as error:
            _error(error, KEEP_HINT)
            failed += 1
        except OSError as error:
            _error(f"{job.input}: {error.strerror or error}; check the disk and the output folder")
            failed += 1
        else:
            for path in written.values():
                files.write(str(path), file=sys.stdout)  # keeps the bars intact on a terminal
        finally:
            bar.close()
    files.close()
    return 1 if failed else 0


def _raise_keyboard_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _train(args: argparse.Namespace) -> int:
    from . import api
    from .core.errors import VocalsepError
    from .train import TrainingInterrupted
    from .train.config import config_file

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
        _error(error)
        return 130
    except VocalsepError as error:
        _error(f"{error}{_data_hint(error, Path(args.config))}")
        return 1
    if not result.main_process:
        return 0
    print(f"trained {result.step} steps in {result.seconds:.0f} s: {result.last}")
    if result.best is not None and result.best_score is not None:
        print(f"best ({result.best_score:.4g}): {result.best}")
    return 0


def _data_hint(error: Exception, config: Path) -> str:
    """Where a recipe says how to get its data, for an error about missing training data."""
    from .audio.datasets import DatasetError as AudioDatasetError
    from .audio.tracks import TrackError
    from .image.errors import DatasetError as ImageDatasetError

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


def _add_evaluate_parser(commands) -> None:
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
    _add_device(evaluate)
    evaluate.add_argument(
        "--wiener",
        type=int,
        default=0,
        metavar="N",
        help="multichannel Wiener post-filter iterations for --model (default: 0, off)",
    )
    evaluate.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    evaluate.set_defaults(func=_evaluate)


def _evaluation_bar(unit: str, no_progress: bool):
    """A progress bar (shown only on a terminal) and the `progress(done, total, current)`
    callback the evaluation functions call."""
    from tqdm import tqdm

    hide = True if no_progress else None  # None: tqdm shows the bar only on a terminal
    bar = tqdm(desc="evaluate", unit=unit, disable=hide, leave=False, delay=0.5)

    def progress(done: int, total: int, current: str | None) -> None:
        bar.total = total
        bar.n = done
        if current:
            bar.set_postfix_str(current, refresh=False)
        bar.refresh()

    return bar, progress


def _with_bar(unit: str, no_progress: bool, call):
    """`call(progress)` under an evaluation progress bar; a library error is printed as one
    line (after the bar is closed, so it does not land on the bar's line) and gives None."""
    from .core.errors import VocalsepError

    bar, progress = _evaluation_bar(unit, no_progress)
    try:
        return call(progress)
    except (VocalsepError, ValueError) as error:
        bar.close()
        _error(error)
        return None
    finally:
        bar.close()


def _evaluate(args: argparse.Namespace) -> int:
    from . import api

    if args.task == "image":
        return _evaluate_images(args)
    if args.flip:
        _error("--flip: only for --task image (mirror averaging of segmentation logits)")
        return 2
    chosen = [flag for flag in ("model", "baseline", "estimates") if getattr(args, flag)]
    if len(chosen) != 1:
        given = " and ".join(f"--{flag}" for flag in chosen) or "none"
        _error(f"give exactly one of --model, --baseline or --estimates (got {given})")
        return 2
    result = _with_bar(
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
    from . import api

    given = [name for name, default in _AUDIO_ONLY.items() if getattr(args, name) != default]
    if given:
        flags = ", ".join(f"--{name}" for name in given)
        _error(
            f"{flags}: only for --task audio; --task image takes --root, --model, --filter, --flip"
        )
        return 2
    scores = _with_bar(
        "image",
        args.no_progress,
        lambda progress: api.evaluate_segmentation(
            args.root,
            model=args.model,
            names=args.filter,
            max_images=args.tracks,
            device=args.device,
            flip=args.flip,
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


def _add_segment_parser(commands) -> None:
    segment = commands.add_parser(
        "segment",
        help="segment images into classes (label PNG and colour overlay per image)",
        description="Segment images (or the images directly inside folders). Each image gets "
        "a label PNG (pixel values = the classes' label values, shown in the class colours) "
        "and a colour overlay PNG in OUTDIR.",
    )
    segment.add_argument(
        "inputs",
        nargs="+",
        metavar="IMAGE_OR_DIR",
        help="image files (png, jpg, bmp, tif, webp, ppm), or folders (the images directly "
        "inside them)",
    )
    segment.add_argument(
        "-o",
        "--out",
        default="segmented",
        metavar="OUTDIR",
        help="output folder (default: ./segmented)",
    )
    segment.add_argument(
        "--model",
        default=None,
        metavar="NAME|PATH",
        help="shipped model name, 'default' or checkpoint file (default: camvid-unet, CamVid "
        "street scenes)",
    )
    _add_device(segment)
    segment.add_argument(
        "--filename",
        default="{track}_{stem}.{ext}",
        metavar="TEMPLATE",
        help="output path under OUTDIR with {track} (image name), {stem} (labels or overlay), "
        "{ext} (png) and {parent}; it may not leave OUTDIR (default: {track}_{stem}.{ext})",
    )
    _add_existing(segment)
    segment.add_argument(
        "--flip",
        action="store_true",
        help="also predict on the mirrored image and average (twice the time, a little more "
        "accurate)",
    )
    segment.set_defaults(func=_segment)


def _segment(args: argparse.Namespace) -> int:
    from . import api
    from .core.errors import VocalsepError

    try:
        model = api.load_segmentation_model(args.model, device=args.device)
        jobs = api.plan_segment_jobs(
            args.inputs,
            args.out,
            filename=args.filename,
            overwrite=args.overwrite,
            skip_existing=args.skip_existing,
        )
    except VocalsepError as error:
        _error(error)
        return 1
    failed = 0
    _report_skipped(jobs)
    for job in jobs:
        if job.error:
            _error(job.error, KEEP_HINT)
            failed += 1
            continue
        if job.skipped:
            continue
        try:
            written = api.segment_file(
                job.input,
                model=model,
                overwrite=args.overwrite,
                outputs=job.outputs,
                flip=args.flip,
            )
        except VocalsepError as error:
            _error(error, KEEP_HINT)
            failed += 1
        except OSError as error:
            _error(f"{job.input}: {error.strerror or error}; check the disk and the output folder")
            failed += 1
        else:
            for path in written.values():
                print(path)
    return 1 if failed else 0


def _models(args: argparse.Namespace) -> int:
    from . import pretrained

    if not pretrained.MODELS:
        print(
            f"no models are shipped with {PROG} {__version__} yet; "
            "pass a checkpoint file with --model PATH"
        )
        return 0
    defaults = {name: task for task, name in pretrained.DEFAULT_MODELS.items()}
    for name, model in pretrained.MODELS.items():
        command = pretrained.COMMANDS.get(defaults.get(name, ""))
        default = f" (default of {PROG} {command})" if command else ""
        print(f"{name}{default}  [{model.task}]  {model.summary}")
        if args.verbose:
            print(pretrained.model_card(name).rstrip() + "\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    show = warnings.showwarning
    warnings.showwarning = _one_line_warnings(show)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        _error("interrupted; unfinished outputs were removed")
        return 130
    except BrokenPipeError:
        # Whoever read our output stopped early (`vocalsep models -v | head`): stop quietly,
        # as Unix tools do, and keep Python from complaining when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a tool killed by the pipe
    except Exception as error:  # a bug: still one line unless asked for the traceback
        if os.environ.get("VOCALSEP_DEBUG"):
            raise
        _error(
            f"internal error ({type(error).__name__}: {error}); "
            "rerun with VOCALSEP_DEBUG=1 and report the traceback"
        )
        return 3
    finally:
        warnings.showwarning = show
