"""`vocalsep` command line: parse arguments, call the API, print. Nothing else lives here.

One module per subcommand (its parser and what it runs); `common` holds what they share.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence

from .._version import __version__
from . import evaluate, export, segment, separate, serve, train
from .common import PROG, one_line_warnings, print_error

# What a command needs that a plain `pip install vocalsep` does not bring, and how to get it.
MISSING_EXTRAS = {
    "torch": f'this needs PyTorch, which is not installed: pip install "{PROG}[torch]"',
    "PIL": f'this needs Pillow, which is not installed: pip install "{PROG}[torch]"',
    "onnx": f'ONNX export needs onnx: pip install "{PROG}[export]"',
    "onnxscript": f'ONNX export needs onnxscript: pip install "{PROG}[export]"',
}


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

    separate.add_parsers(commands)
    train.add_parser(commands)
    evaluate.add_parser(commands)
    segment.add_parser(commands)
    export.add_parser(commands)
    serve.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    show = warnings.showwarning
    warnings.showwarning = one_line_warnings(show)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print_error("interrupted; unfinished outputs were removed")
        return 130
    except BrokenPipeError:
        # Whoever read our output stopped early (`vocalsep models -v | head`): stop quietly,
        # as Unix tools do, and keep Python from complaining when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a tool killed by the pipe
    except Exception as error:  # a bug: still one line unless asked for the traceback
        if isinstance(error, ModuleNotFoundError) and error.name in MISSING_EXTRAS:
            print_error(MISSING_EXTRAS[error.name])  # an extra the command needs
            return 1
        if os.environ.get("VOCALSEP_DEBUG"):
            raise
        print_error(
            f"internal error ({type(error).__name__}: {error}); "
            "rerun with VOCALSEP_DEBUG=1 and report the traceback"
        )
        return 3
    finally:
        warnings.showwarning = show
