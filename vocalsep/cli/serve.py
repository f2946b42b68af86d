"""`vocalsep serve`: the karaoke page on this computer (`vocalsep.serve`)."""

from __future__ import annotations

import argparse
import socket
import tempfile
from pathlib import Path

from .common import PROG, print_error, say

INSTALL_SERVE = f'pip install "{PROG}[serve]"'


def add_parser(commands) -> None:
    serve = commands.add_parser(
        "serve",
        help="a local web page: drop a song, play it with a voice-level slider, download stems",
        description="Serve the karaoke page and its JSON API (see README.md) on this computer. "
        "Songs are separated in worker processes, one at a time per worker; results are kept "
        f"in --data-dir until they expire. Needs {INSTALL_SERVE}.",
    )
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this computer only). Another address "
        "lets anyone who reaches it upload files and use this CPU: there is no login",
    )
    serve.add_argument("--port", type=int, default=8000, help="TCP port (default 8000; 0: any)")
    serve.add_argument(
        "--max-upload-mb", type=float, default=200, help="largest upload (default 200 MB)"
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="songs separated at once (default 1: it uses all cores already)",
    )
    serve.add_argument(
        "--data-dir",
        default=None,
        help="where uploads and stems live (default: a new temporary folder, removed at exit)",
    )
    serve.add_argument("--model", default=None, help="shipped model name or checkpoint")
    serve.add_argument(
        "--backend", choices=("auto", "torch", "onnx"), default="auto", help="as for separate"
    )
    serve.add_argument(
        "--keep-hours", type=float, default=24, help="remove results after this (default 24)"
    )
    serve.add_argument(
        "--max-storage-mb",
        type=float,
        default=2000,
        help="remove the oldest results past this total (default 2000 MB)",
    )
    serve.add_argument(
        "--max-queue", type=int, default=32, help="songs waiting at most (default 32)"
    )
    serve.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    from ..core.errors import VocalsepError

    for name, value, low in (
        ("--port", args.port, 0),
        ("--workers", args.workers, 1),
        ("--max-queue", args.max_queue, 1),
    ):
        if value < low:
            print_error(f"{name} must be at least {low}, got {value}")
            return 2
    if args.port > 65535:
        print_error(f"--port must be at most 65535, got {args.port}")
        return 2
    if args.max_upload_mb <= 0 or args.keep_hours <= 0 or args.max_storage_mb <= 0:
        print_error("--max-upload-mb, --keep-hours and --max-storage-mb must be positive")
        return 2
    try:
        import uvicorn

        from ..serve.app import create_app, is_loopback
        from ..serve.jobs import JobStore
    except ImportError as error:
        print_error(f"serve needs {error.name}, which is not installed: {INSTALL_SERVE}")
        return 1
    try:
        sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((args.host, args.port))
        sock.listen(128)  # connections wait in the backlog until the app has started
    except OSError as error:
        print_error(f"cannot listen on {args.host}:{args.port}: {error.strerror or error}")
        return 1
    temporary = None
    if args.data_dir is None:
        temporary = tempfile.TemporaryDirectory(prefix="vocalsep-serve-")
        data_dir = Path(temporary.name)
    else:
        data_dir = Path(args.data_dir)
    store = None
    try:
        store = JobStore(
            data_dir,
            model=args.model,
            backend=args.backend,
            workers=args.workers,
            max_queue=args.max_queue,
            keep_seconds=args.keep_hours * 3600,
            max_bytes=int(args.max_storage_mb * 2**20),
        )
        store.open_lanes()  # load the model now: a bad --model fails before serving
        app = create_app(store, max_upload_mb=args.max_upload_mb, host=args.host)
        host, port = sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        if not is_loopback(host):
            say("warning", f"listening on {host}: anyone who can reach it can use this page")
        print(f"{PROG} serve: open http://{shown}:{port}/ in a browser (Ctrl+C stops)", flush=True)
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
        uvicorn.Server(config).run(sockets=[sock])
    except (VocalsepError, OSError) as error:
        print_error(error)
        return 1
    finally:
        sock.close()
        if store is not None:
            store.close_lanes()
        if temporary is not None:
            temporary.cleanup()
    return 0
