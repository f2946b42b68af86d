"""The separation jobs behind `vocalsep serve`: their files, a bounded queue, worker processes.

Every job is a folder `DATA_DIR/jobs/<id>/` named by a random id (`new_id`, checked by
`valid_id`), so nothing from a request ever names a path: `input` (the upload), `stems/<stem>.wav`
(and `.flac` once asked for), `spectrogram.png`, `progress` (written by the worker) and
`job.json` (what a finished job was, so a restarted server lists it again).

Separation runs in worker processes, one job at a time each ("lanes", each a one-process pool
that loads the model once): a job that crashes its process (a decoder or the runtime dying)
fails that job alone, and the lane starts a fresh process for the next one. The event loop only
awaits; file work runs in threads. Old jobs are removed by age and by the total size of the
folder (`JobStore.clean`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import multiprocessing
import re
import secrets
import shutil
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import VocalsepError
from ..core.files import atomic_file

log = logging.getLogger("vocalsep.serve")

ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{22}")  # secrets.token_urlsafe(16)
QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
FINISHED = (DONE, FAILED)
CRASHED = "the separation stopped unexpectedly (its worker process crashed); try again"


def new_id() -> str:
    return secrets.token_urlsafe(16)


def valid_id(text: str) -> bool:
    return ID_PATTERN.fullmatch(text) is not None


@dataclass
class Job:
    id: str
    folder: Path
    name: str  # the uploaded file's name, for display and download names only
    created: float = field(default_factory=time.time)
    status: str = QUEUED
    error: str | None = None
    duration: float | None = None
    stems: list[str] = field(default_factory=list)
    spectrogram: bool = False
    deleted: bool = False
    order: int = 0  # place in the queue (submission count)
    started: float | None = None
    finished: float | None = None

    @property
    def input(self) -> Path:
        return self.folder / "input"

    def stem_path(self, stem: str, format: str = "wav") -> Path:
        return self.folder / "stems" / f"{stem}.{format}"

    @property
    def picture(self) -> Path:
        return self.folder / "spectrogram.png"

    def progress(self) -> float:
        if self.status == DONE:
            return 1.0
        if self.status != RUNNING:
            return 0.0
        try:
            return min(1.0, max(0.0, float((self.folder / "progress").read_text())))
        except (OSError, ValueError):
            return 0.0

    def record(self) -> dict[str, Any]:
        keys = ("id", "name", "created", "started", "finished", "status", "error", "duration")
        keys += ("stems", "spectrogram")
        return {key: getattr(self, key) for key in keys}


# -- the worker process ----------------------------------------------------------------------

_separator: Any = None
_plot = False
_name = ""
_failure = ""


def _init_worker(model: str | None, backend: str, threads: int) -> None:
    """Load the model once per worker; a failure is kept for `_describe` to report (an
    exception here would break the pool with a traceback on the server's stderr)."""
    global _separator, _plot, _name, _failure
    from ..audio import plot
    from ..audio.modelconfig import TASK
    from ..audio.separator import Separator
    from ..pretrained import DEFAULT, DEFAULT_MODELS, MODELS

    try:
        _separator = Separator.from_pretrained(model, backend=backend, threads=threads)
    except VocalsepError as error:
        _failure = str(error)
        return
    if model is None or str(model) == DEFAULT:
        _name = DEFAULT_MODELS.get(TASK, DEFAULT)
    else:
        _name = str(model) if str(model) in MODELS else Path(model).name
    try:
        plot.check_plotting()
        _plot = True
    except VocalsepError:
        _plot = False


def _describe() -> dict[str, Any]:
    """What the loaded model gives, or why it did not load (run in a worker, also to start it)."""
    if _separator is None:
        return {"error": _failure or "the model did not load"}
    return {"name": _name, "stems": list(_separator.stems), "spectrogram": _plot}


def _separate(folder: str, name: str) -> dict[str, Any]:
    """Separate `folder/input` into `folder/stems/`; returns the duration, or the error as
    one readable sentence (exceptions stay in the worker: some do not survive pickling)."""
    import soundfile

    from ..audio.files import PLOT, separate_file

    root = Path(folder)
    progress_file = root / "progress"
    last = [0.0]

    def progress(done: float, total: float | None) -> None:
        if (root / "cancel").exists():  # deleted meanwhile: stop, nothing is kept
            raise VocalsepError("cancelled")
        now = time.monotonic()
        if total and now - last[0] > 0.2:
            last[0] = now
            with contextlib.suppress(OSError), atomic_file(progress_file) as temp:
                temp.write_text(f"{done / total:.4f}")

    try:
        outputs = {stem: root / "stems" / f"{stem}.wav" for stem in _separator.stems}
        if _plot:
            outputs[PLOT] = root / "spectrogram.png"
        separate_file(
            root / "input",
            separator=_separator,
            outputs=outputs,
            overwrite=True,
            plot=_plot,
            progress=progress,
            name=name,
        )
    except VocalsepError as error:
        return {"error": str(error).replace(str(root / "input"), "the upload")}
    except Exception as error:  # a bug: the job fails, the worker lives on
        log.exception("separation failed")
        return {"error": f"internal error ({type(error).__name__}); see the server's log"}
    # the stems have the song's rate and length, whichever decoder read it
    stem = soundfile.info(str(outputs[_separator.stems[0]]))
    return {"duration": stem.frames / stem.samplerate}


class Lane:
    """One worker process that runs one job at a time; restarted when it crashes."""

    def __init__(self, model: str | None, backend: str, threads: int) -> None:
        self._args = (model, backend, threads)
        self._pool = self._start()

    def _start(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=self._args,
        )

    def submit(self, fn: Any, *args: Any) -> Future:
        return self._pool.submit(fn, *args)

    def restart(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._start()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


# -- the store -------------------------------------------------------------------------------


class QueueFull(VocalsepError):
    pass


class JobStore:
    """The jobs of one server: created from uploads, run by `workers` lanes in arrival order,
    removed on request or by `clean`. Methods that touch files are blocking: call them from a
    thread (the app does), except `submit`, `start` and `stop`, which run on the event loop."""

    def __init__(
        self,
        data_dir: Path,
        *,
        model: str | None = None,
        backend: str = "auto",
        workers: int = 1,
        threads: int | None = None,
        max_queue: int = 32,
        keep_seconds: float = 24 * 3600,
        max_bytes: int = 2 * 1024**3,
        min_seconds: float = 1.0,
    ) -> None:
        from ..core.cpu import cores

        self.root = Path(data_dir) / "jobs"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            reason = error.strerror or type(error).__name__
            raise VocalsepError(f"cannot keep the jobs' files in {data_dir}: {reason}") from None
        self.workers = max(1, workers)
        threads = threads or max(1, cores() // self.workers)
        self._lane_args = (model, backend, threads)
        self.max_queue, self.keep_seconds, self.max_bytes = max_queue, keep_seconds, max_bytes
        self.min_seconds = min_seconds
        self.jobs: dict[str, Job] = {}
        self._submitted = 0
        self.lanes: list[Lane] = []
        self.model: dict[str, Any] = {}
        self._queue: asyncio.Queue[str] | None = None
        self._tasks: list[asyncio.Task] = []
        self._running: set[asyncio.Task] = set()
        self._load()

    # -- start and stop (the model is loaded here: a bad one fails before serving) -----------

    def open_lanes(self) -> None:
        """Start the worker processes and load the model in each; raises `VocalsepError` (one
        line) when the model cannot be loaded."""
        if self.lanes:
            return
        self.lanes = [Lane(*self._lane_args) for _ in range(self.workers)]
        try:
            described = [lane.submit(_describe).result() for lane in self.lanes]
        except BrokenProcessPool:
            described = [{"error": "the model could not be loaded in a worker process"}]
        failed = [each["error"] for each in described if "error" in each]
        if failed:
            self.close_lanes()
            raise VocalsepError(failed[0])
        self.model = described[0]

    def close_lanes(self) -> None:
        """Stop the worker processes (blocking: waits for a running separation)."""
        for lane in self.lanes:
            lane.close()
        self.lanes = []

    async def start(self) -> None:
        await asyncio.to_thread(self.open_lanes)
        self._queue = asyncio.Queue()
        free: asyncio.Queue[Lane] = asyncio.Queue()
        for lane in self.lanes:
            free.put_nowait(lane)
        for job in sorted(self.jobs.values(), key=lambda job: job.created):
            if job.status == QUEUED:
                self._queue.put_nowait(job.id)
        self._tasks = [
            asyncio.create_task(self._dispatch(free)),
            asyncio.create_task(self._clean_every(60.0)),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await asyncio.to_thread(self.close_lanes)

    # -- jobs ------------------------------------------------------------------------------

    def new_job(self, name: str) -> Job:
        """A job folder for an upload that is about to be written (not queued yet)."""
        job_id = new_id()
        folder = self.root / job_id
        folder.mkdir()
        return Job(job_id, folder, name)

    def queued(self) -> int:
        return sum(job.status == QUEUED for job in self.jobs.values())

    def check_room(self) -> None:
        """`QueueFull` when `max_queue` jobs wait."""
        if self.queued() >= self.max_queue:
            raise QueueFull(f"{self.max_queue} songs are waiting already; try again in a minute")

    def submit(self, job: Job) -> None:
        """Queue a job whose upload was checked; `QueueFull` when `max_queue` jobs wait."""
        self.check_room()
        self._submitted += 1
        job.order = self._submitted
        self.jobs[job.id] = job
        assert self._queue is not None, "start() the store first"
        self._queue.put_nowait(job.id)

    def position(self, job: Job) -> int:
        """How many queued jobs are ahead of `job`."""
        if job.status != QUEUED:
            return 0
        return sum(
            other.status == QUEUED and other.order < job.order for other in self.jobs.values()
        )

    def get(self, job_id: str) -> Job | None:
        job = self.jobs.get(job_id) if valid_id(job_id) else None
        return None if job is None or job.deleted else job

    def delete(self, job: Job) -> None:
        """Forget a job; its folder goes now, or when its running separation has stopped (at its
        next chunk)."""
        job.deleted = True
        self.jobs.pop(job.id, None)
        if job.status == RUNNING:
            with contextlib.suppress(OSError):
                (job.folder / "cancel").touch()
        else:
            self.remove_folder(job.folder)

    def remove_folder(self, folder: Path) -> None:
        if folder.parent == self.root and valid_id(folder.name):
            shutil.rmtree(folder, ignore_errors=True)

    async def _dispatch(self, free: asyncio.Queue[Lane]) -> None:
        assert self._queue is not None
        while True:
            job_id = await self._queue.get()
            job = self.jobs.get(job_id)
            if job is None or job.status != QUEUED:
                continue
            lane = await free.get()
            if job.deleted:
                free.put_nowait(lane)
                continue
            job.status, job.started = RUNNING, time.time()
            task = asyncio.create_task(self._run(job, lane, free))
            self._running.add(task)  # the loop keeps only weak references to tasks
            task.add_done_callback(self._running.discard)

    async def _run(self, job: Job, lane: Lane, free: asyncio.Queue[Lane]) -> None:
        try:
            future = lane.submit(_separate, str(job.folder), job.name)
            result = await asyncio.wrap_future(future)
        except BrokenProcessPool:
            log.error("job %s: the worker process crashed; starting a new one", job.id)
            await asyncio.to_thread(lane.restart)
            result = {"error": CRASHED}
        except Exception as error:  # not the job's fault, but it must not stop the server
            log.exception("job %s failed", job.id)
            result = {"error": f"internal error ({type(error).__name__})"}
        job.finished = time.time()
        free.put_nowait(lane)
        if "error" in result:
            job.status, job.error = FAILED, result["error"]
        else:
            job.status, job.duration = DONE, result["duration"]
            job.stems = list(self.model.get("stems", []))
            job.spectrogram = job.picture.exists()
        if job.deleted:
            await asyncio.to_thread(self.remove_folder, job.folder)
        else:
            await asyncio.to_thread(self._finish, job)

    def _finish(self, job: Job) -> None:
        with contextlib.suppress(OSError):
            job.input.unlink()  # the stems are what is kept
            (job.folder / "progress").unlink(missing_ok=True)
            with atomic_file(job.folder / "job.json") as temp:
                temp.write_text(json.dumps(job.record()))
        self.clean()

    # -- files on disk ---------------------------------------------------------------------

    def _load(self) -> None:
        """Take back the finished jobs of an earlier run; remove what never finished."""
        for folder in self.root.iterdir():
            if not (folder.is_dir() and valid_id(folder.name)):
                continue
            try:
                record = json.loads((folder / "job.json").read_text())
                job = Job(**{**record, "id": folder.name, "folder": folder})
                if job.status not in FINISHED:
                    raise ValueError(job.status)
            except (OSError, ValueError, TypeError):
                self.remove_folder(folder)
                continue
            self.jobs[job.id] = job

    async def _clean_every(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            await asyncio.to_thread(self.clean)

    def clean(self) -> list[str]:
        """Remove finished jobs older than `keep_seconds`, then the oldest finished ones while
        the jobs' files take more than `max_bytes`. Returns the ids removed."""
        removed = []
        finished = sorted(
            (job for job in list(self.jobs.values()) if job.status in FINISHED),
            key=lambda job: job.created,
        )
        now = time.time()
        for job in finished:
            if now - job.created > self.keep_seconds:
                self.delete(job)
                removed.append(job.id)
        sizes = {job.id: _size(job.folder) for job in list(self.jobs.values())}
        total = sum(sizes.values())
        for job in finished:
            if total <= self.max_bytes:
                break
            if job.id in removed:
                continue
            total -= sizes.get(job.id, 0)
            self.delete(job)
            removed.append(job.id)
        return removed


def _size(folder: Path) -> int:
    total = 0
    for path in folder.rglob("*"):
        with contextlib.suppress(OSError):
            if path.is_file():
                total += path.stat().st_size
    return total


def convert_to_flac(wav: Path, flac: Path) -> Path:
    """`wav` as 16-bit FLAC at `flac`, written atomically and block by block (blocking; the
    package's reader and writer, so a failure is a `VocalsepError`)."""
    from ..audio.io import open_audio
    from ..audio.writer import AudioWriter

    if flac.exists():
        return flac
    with open_audio(wav) as reader:
        info = reader.info
        with AudioWriter(flac, info.sample_rate, info.channels, "flac", "16", True) as writer:
            for block in reader.blocks(1 << 18):
                writer.write(block)
    return flac
