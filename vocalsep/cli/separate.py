"""`vocalsep separate` and `vocalsep models`."""

from __future__ import annotations

import argparse
import sys

from .._version import __version__
from .common import (
    KEEP_HINT,
    PROG,
    add_device,
    add_existing,
    option_error,
    print_error,
    report_skipped,
    run_job,
)


def add_parsers(commands) -> None:
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
        help="shipped model name (see vocalsep models), 'default', a checkpoint file or an "
        "ONNX file (vocalsep export), spectrogram or waveform (Wave-U-Net) model "
        "(default: vocalsep-small)",
    )
    add_device(separate)
    separate.add_argument(
        "--backend",
        default="auto",
        choices=["auto", "torch", "onnx"],
        help="what runs the network: onnx (onnxruntime, CPU) or torch; auto: onnx when "
        "onnxruntime is installed and the model has an ONNX file (the shipped model does) and "
        "no GPU device was asked for, else torch (default: auto)",
    )
    separate.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help="threads the network may use (default: all cores)",
    )
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
    add_existing(separate)
    separate.add_argument(
        "--plot",
        action="store_true",
        help="also write a spectrogram PNG of the mixture and the stems per track, beside "
        'them ({stem} = spectrogram, {ext} = png); needs pip install "vocalsep[plot]"',
    )
    separate.add_argument(
        "--chunk-seconds",
        type=float,
        default=15.0,
        metavar="S",
        help="audio processed at once; bounds memory, not the result: any chunk length gives "
        "the one-pass output (default: 15)",
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

    models = commands.add_parser(
        "models",
        help="list the models shipped with vocalsep",
        description="List the models shipped inside the package (no download ever happens), "
        "the default of each command, and with --verbose their model cards (training data, "
        "licences, measured quality).",
    )
    models.add_argument("--verbose", "-v", action="store_true", help="print each model card")
    models.set_defaults(func=_models)


def _separate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .. import api
    from ..core.errors import OptionError, VocalsepError

    try:
        if args.plot:
            from ..audio.plot import check_plotting

            check_plotting()
        separator = api.load_separator(
            args.model,
            device=args.device,
            backend=args.backend,
            threads=args.threads,
            chunk_seconds=args.chunk_seconds,
            wiener_iterations=args.wiener,
        )
    except (VocalsepError, ValueError) as error:
        print_error(error)
        return 1
    stems = [stem.strip() for stem in args.stems.split(",")] if args.stems else separator.stems
    stems = [stem for stem in stems if stem]
    try:
        api.check_output_options(separator, stems, args.format, args.bit_depth)
    except OptionError as error:
        print_error(option_error(error))
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
        print_error(error)
        return 1

    failed = 0
    for job in jobs:
        if job.error:
            print_error(job.error, KEEP_HINT)
            failed += 1
    report_skipped(jobs)
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
            written = run_job(
                job,
                lambda job=job, progress=progress: api.separate_file(
                    job.input,
                    args.out,
                    separator=separator,
                    stems=stems,
                    format=args.format,
                    bit_depth=args.bit_depth,
                    overwrite=args.overwrite,
                    outputs=job.outputs,
                    progress=progress,
                ),
            )
        finally:
            bar.close()
        if written is None:
            failed += 1
            continue
        for path in written.values():
            files.write(str(path), file=sys.stdout)  # keeps the bars intact on a terminal
    files.close()
    return 1 if failed else 0


def _models(args: argparse.Namespace) -> int:
    from .. import pretrained

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
