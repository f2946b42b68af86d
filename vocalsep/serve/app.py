"""The ASGI application of `vocalsep serve`: the page (static files) and its JSON API.

    POST   /api/separations              multipart field "file" -> 202 {"id", "status", "url"}
    GET    /api/separations/{id}         status, progress 0..1, error, stem URLs when done
    GET    /api/separations/{id}/{stem}.wav | .flac | spectrogram.png
    DELETE /api/separations/{id}
    GET    /api/info                     model, stems, upload limit

Every error is JSON `{"error": sentence}` with a 4xx status (5xx only for a bug). Uploads are
streamed to the job's folder and stopped at the size limit (413); the content is checked by
decoding its first second (415 when it is not audio, 422 when it is shorter than that).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import unicodedata
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path
from typing import Any

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .._version import __version__
from ..audio.errors import InvalidAudioError
from ..core.errors import VocalsepError
from .jobs import DONE, Job, JobStore, QueueFull, convert_to_flac

log = logging.getLogger("vocalsep.serve")

FIELD = "file"
OTHER_FIELD_BYTES = 64 * 1024  # what a form's body may carry besides the file
FORMATS = {"wav": "audio/wav", "flac": "audio/flac"}
LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "::1"]
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; media-src 'self' blob:; "
        "connect-src 'self'; object-src 'none'; frame-ancestors 'none'"
    ),
}


class _SecurityHeaders:
    """ASGI middleware: `SECURITY_HEADERS` on every response, and no caching of the API."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
        if scope["path"].startswith("/api/"):
            extra.append((b"cache-control", b"no-store"))

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def request_host(headers: list[tuple[bytes, bytes]]) -> str:
    """The host a request names in its Host header, without the port ("[::1]:80" -> "::1")."""
    value = dict(headers).get(b"host", b"").decode("latin-1").strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else ""
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def is_loopback(host: str) -> bool:
    return host in LOOPBACK_HOSTS or host.startswith("127.")


class _LoopbackHostsOnly:
    """ASGI middleware for a server on a loopback address: a request whose Host header names
    another host is refused (JSON 400), so that no web page can reach the server by pointing
    a name of its own at 127.0.0.1 (DNS rebinding)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and not is_loopback(request_host(scope["headers"])):
            response = error_response(400, "this server answers only to 127.0.0.1 or localhost")
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class HTTPError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def error_response(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def display_name(raw: str | None) -> str:
    """The uploaded file's name for display: no folders, no control characters, short."""
    name = re.split(r"[\\/]", raw or "")[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()
    return name[:200] or "song"


def check_audio_start(path: Path, min_seconds: float) -> None:
    """Decode the first `min_seconds` of `path` (blocking): `AudioDecodeError` when it is not
    audio that vocalsep reads, `InvalidAudioError` when it ends sooner."""
    from ..audio.io import open_audio

    with open_audio(path) as reader:
        rate = reader.info.sample_rate
        need, got = max(1, math.ceil(min_seconds * rate)), 0
        for block in reader.blocks(min(need, rate)):
            got += block.shape[-1]
            if got >= need:
                break
    if got < need:
        raise InvalidAudioError(
            f"the song is too short ({got / rate:.2f} s; at least {min_seconds:g} s)"
        )


async def receive_upload(request: Request, job: Job, limit: int) -> None:
    """Stream the multipart field `file` of `request` into `job.input`, at most `limit` bytes
    (`HTTPError` 413 past it, 400 for a malformed form, a missing field or an empty file)."""
    kind, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise HTTPError(400, f'send the song as multipart/form-data in a field named "{FIELD}"')
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + OTHER_FIELD_BYTES:
        raise HTTPError(413, f"the file is larger than the limit of {limit // 2**20} MB")

    state: dict[str, Any] = {
        "field": None,
        "header": b"",
        "headers": {},
        "seen": False,
        "ended": False,
    }
    pending: list[bytes] = []
    sizes = {"file": 0, "body": 0}

    def on_part_begin() -> None:
        state["headers"], state["field"] = {}, None

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["header"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        name = state["header"].lower()
        state["headers"][name] = state["headers"].get(name, b"") + data[start:end]

    def on_header_end() -> None:
        state["header"] = b""

    def on_headers_finished() -> None:
        disposition, params = parse_options_header(
            state["headers"].get(b"content-disposition", b"")
        )
        name = params.get(b"name", b"").decode("utf-8", "replace")
        if disposition == b"form-data" and name == FIELD and not state["seen"]:
            state["field"], state["seen"] = FIELD, True
            job.name = display_name(params.get(b"filename", b"").decode("utf-8", "replace"))
        else:
            state["field"] = "other"

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state["field"] == FIELD:
            sizes["file"] += end - start
            if sizes["file"] > limit:
                raise HTTPError(413, f"the file is larger than the limit of {limit // 2**20} MB")
            pending.append(bytes(data[start:end]))
        # other fields are read past and dropped; the whole body is bounded below

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_end": lambda: state.update(ended=True),
        },
    )
    with open(job.input, "wb") as target:  # noqa: ASYNC230 (writes go through a thread below)
        async for chunk in request.stream():
            sizes["body"] += len(chunk)
            if sizes["body"] > limit + OTHER_FIELD_BYTES:
                raise HTTPError(413, f"the upload is larger than the limit of {limit // 2**20} MB")
            try:
                parser.write(chunk)
            except HTTPError:
                raise
            except Exception:  # python-multipart's parse errors
                raise HTTPError(400, "the upload is not a well-formed multipart form") from None
            if pending:
                data, pending[:] = b"".join(pending), []
                await asyncio.to_thread(target.write, data)
        with contextlib.suppress(Exception):
            parser.finalize()
    if not state["ended"]:
        raise HTTPError(400, "the upload ended before its form did (interrupted?)")
    if not state["seen"]:
        raise HTTPError(400, f'the form has no field named "{FIELD}" with the song')
    if sizes["file"] == 0:
        raise HTTPError(400, "the uploaded file is empty")


def create_app(
    store: JobStore, *, max_upload_mb: float = 200, host: str = "127.0.0.1"
) -> Starlette:
    """The app for `store`; `host` is where it is served: on a loopback address only requests
    naming a loopback host are answered (so that no web page can reach it by DNS rebinding)."""
    limit = int(max_upload_mb * 2**20)

    def job_or_404(request: Request) -> Job:
        job = store.get(request.path_params["job_id"])
        if job is None:
            raise HTTPError(404, "no such separation (it may have been deleted or expired)")
        return job

    def describe(job: Job) -> dict[str, Any]:
        base = f"/api/separations/{job.id}"
        done = job.status == DONE
        return {
            "id": job.id,
            "name": job.name,
            "status": job.status,
            "progress": round(job.progress(), 4),
            "error": job.error,
            "duration": job.duration,
            "created": job.created,
            "started": job.started,
            "finished": job.finished,
            "position": store.position(job),
            "stems": {stem: f"{base}/{stem}.wav" for stem in job.stems} if done else {},
            "spectrogram": f"{base}/spectrogram.png" if done and job.spectrogram else None,
        }

    async def info(request: Request) -> Response:
        return JSONResponse(
            {
                "version": __version__,
                "model": store.model.get("name") or "default",
                "stems": store.model.get("stems", []),
                "max_upload_mb": max_upload_mb,
                "formats": list(FORMATS),
                "spectrogram": bool(store.model.get("spectrogram")),
            }
        )

    async def create(request: Request) -> Response:
        job = await asyncio.to_thread(store.new_job, "song")
        try:
            store.check_room()  # before reading the upload; `submit` checks again
            await receive_upload(request, job, limit)
            await asyncio.to_thread(check_audio_start, job.input, store.min_seconds)
            store.submit(job)
        except BaseException as error:  # whatever stops it, the upload's folder goes
            await asyncio.to_thread(store.remove_folder, job.folder)
            if isinstance(error, ClientDisconnect):  # the browser went away: nobody to answer
                return error_response(400, "the upload was interrupted")
            if isinstance(error, QueueFull):
                raise HTTPError(503, str(error)) from None
            if isinstance(error, InvalidAudioError):
                raise HTTPError(422, str(error).replace(str(job.input), "the upload")) from None
            if isinstance(error, VocalsepError):  # the decoders' errors: not audio
                message = f"{job.name} is not an audio file that vocalsep can read"
                raise HTTPError(415, message) from None
            raise
        url = f"/api/separations/{job.id}"
        return JSONResponse({"id": job.id, "status": job.status, "url": url}, status_code=202)

    async def status(request: Request) -> Response:
        return JSONResponse(await asyncio.to_thread(describe, job_or_404(request)))

    async def delete(request: Request) -> Response:
        job = job_or_404(request)
        await asyncio.to_thread(store.delete, job)
        return JSONResponse({"id": job.id, "deleted": True})

    async def file(request: Request) -> Response:
        job = job_or_404(request)
        name = request.path_params["name"]
        if job.status != DONE:
            raise HTTPError(404, "the separation is not finished")
        if name == "spectrogram.png" and job.spectrogram:
            return FileResponse(job.picture, media_type="image/png")
        stem, _, format = name.rpartition(".")
        if stem not in job.stems or format not in FORMATS:
            raise HTTPError(404, f"no file {name!r} in this separation")
        path = job.stem_path(stem, format)
        if format == "flac":
            try:
                await asyncio.to_thread(convert_to_flac, job.stem_path(stem), path)
            except (VocalsepError, OSError) as error:  # deleted meanwhile, disk full
                raise HTTPError(404, f"the FLAC file could not be made ({error})") from None
        if not path.exists():
            raise HTTPError(404, "no such separation (it may have been deleted or expired)")
        download = f"{Path(job.name).stem} - {stem}.{format}"
        return FileResponse(
            path, media_type=FORMATS[format], filename=download, content_disposition_type="inline"
        )

    async def on_http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPError)
        return error_response(error.status, str(error))

    async def on_other_error(request: Request, error: Exception) -> Response:
        from starlette.exceptions import HTTPException

        if isinstance(error, HTTPException):  # routing: 404 and 405
            message = {404: "not found", 405: "method not allowed"}.get(error.status_code)
            return error_response(error.status_code, message or str(error.detail))
        log.exception("request %s %s failed", request.method, request.url.path)
        return error_response(500, "internal error; see the server's log")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await store.start()
        try:
            yield
        finally:
            await store.stop()

    static = resources.files("vocalsep.serve") / "static"

    async def page(request: Request) -> Response:
        return FileResponse(str(static / "index.html"), media_type="text/html")

    from starlette.exceptions import HTTPException

    middleware = [Middleware(_SecurityHeaders)]
    if is_loopback(host):
        middleware.append(Middleware(_LoopbackHostsOnly))
    return Starlette(
        routes=[
            Route("/", page),
            Route("/api/info", info),
            Route("/api/separations", create, methods=["POST"]),
            Route("/api/separations/{job_id}", status, methods=["GET"]),
            Route("/api/separations/{job_id}", delete, methods=["DELETE"]),
            Route("/api/separations/{job_id}/{name}", file, methods=["GET"]),
            Mount("/static", StaticFiles(directory=str(static)), name="static"),
        ],
        middleware=middleware,
        exception_handlers={
            HTTPError: on_http_error,
            HTTPException: on_other_error,
            Exception: on_other_error,
        },
        lifespan=lifespan,
    )
