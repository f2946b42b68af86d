"""`vocalsep export`: a separation model as an ONNX file for onnxruntime."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from .common import print_error


def add_parser(commands) -> None:
    export = commands.add_parser(
        "export",
        help="export a separation model to ONNX",
        description="Write a separation model (a shipped name, 'default' or a checkpoint) as an "
        "ONNX file that `vocalsep separate --model OUT.onnx` (or any onnxruntime) runs without "
        "PyTorch. The network is exported with dynamic batch and time axes and the model's "
        "configs inside; the STFT, masks and iSTFT stay outside, in numpy. Needs "
        'pip install "vocalsep[export]".',
    )
    export.add_argument("model", metavar="NAME|PATH", help="shipped model name or checkpoint")
    export.add_argument("out", metavar="OUT.onnx", help="the ONNX file to write")
    export.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    export.set_defaults(func=_export)


def _export(args: argparse.Namespace) -> int:
    from ..core.errors import VocalsepError

    out = Path(args.out)
    try:
        if out.suffix != ".onnx":
            raise VocalsepError(f"{out}: the output must be a .onnx file")
        if not args.overwrite and os.path.lexists(out):
            raise VocalsepError(f"{out} exists; pass --overwrite to replace it")
        from ..audio.models import TASK, model_from_checkpoint
        from ..audio.onnx_export import export_onnx
        from ..core.checkpoint import load_checkpoint
        from ..pretrained import resolve

        path = resolve(args.model, TASK)
        checkpoint = load_checkpoint(path, task=TASK)
        model = model_from_checkpoint(checkpoint, path)
        written = export_onnx(model, out, metadata=checkpoint.metadata)
    except (VocalsepError, ValueError) as error:
        print_error(error)
        return 1
    print(f"{written} ({written.stat().st_size / 1e6:.1f} MB)")
    return 0
