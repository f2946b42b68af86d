"""`vocalsep segment`."""

from __future__ import annotations

import argparse

from .common import KEEP_HINT, add_device, add_existing, print_error, report_skipped, run_job


def add_parser(commands) -> None:
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
    add_device(segment)
    segment.add_argument(
        "--filename",
        default="{track}_{stem}.{ext}",
        metavar="TEMPLATE",
        help="output path under OUTDIR with {track} (image name), {stem} (labels or overlay), "
        "{ext} (png) and {parent}; it may not leave OUTDIR (default: {track}_{stem}.{ext})",
    )
    add_existing(segment)
    segment.add_argument(
        "--flip",
        action="store_true",
        help="also predict on the mirrored image and average (twice the time, a little more "
        "accurate)",
    )
    segment.add_argument(
        "--crf",
        action="store_true",
        help="refine the class scores with a dense CRF on the image (colour and position; "
        "about 1.6 s more per 480x360 image on 2 CPU cores)",
    )
    segment.set_defaults(func=_segment)


def _segment(args: argparse.Namespace) -> int:
    from .. import api
    from ..core.errors import VocalsepError

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
        print_error(error)
        return 1
    failed = 0
    report_skipped(jobs)
    for job in jobs:
        if job.error:
            print_error(job.error, KEEP_HINT)
            failed += 1
            continue
        if job.skipped:
            continue
        written = run_job(
            job,
            lambda job=job: api.segment_file(
                job.input,
                model=model,
                overwrite=args.overwrite,
                outputs=job.outputs,
                flip=args.flip,
                crf=args.crf,
            ),
        )
        if written is None:
            failed += 1
            continue
        for path in written.values():
            print(path)
    return 1 if failed else 0
