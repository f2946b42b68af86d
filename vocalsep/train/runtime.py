"""What the training loop runs on: processes (torchrun), the device, the example stream and
its step sampler, and the signal handling that lets Ctrl-C and `kill` save a checkpoint."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ..core.device import select_device
from ..core.errors import ConfigError, VocalsepError
from .task import ExampleSource


class TrainingError(VocalsepError):
    """A run cannot start or continue (existing run without --resume, diverged loss, ...)."""


# -- distributed ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Distributed:
    rank: int = 0
    local_rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> Distributed:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        return cls(int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0")), world)


def _device(name: str, dist: Distributed) -> torch.device:
    try:
        return select_device(name, local_rank=dist.local_rank)
    except ConfigError as error:
        raise TrainingError(f"{error} (trainer.device)") from None


# -- data -----------------------------------------------------------------------------------


class _Examples(Dataset):
    def __init__(self, source: ExampleSource) -> None:
        self.source = source

    def __getitem__(self, index: int) -> Any:
        return self.source[index]

    def __len__(self) -> int:  # unbounded; DataLoader only needs it for len(loader)
        return sys.maxsize


class _StepSampler(Sampler[list[int]]):
    """Yields, for steps `start..stop-1`, this process's example indices of that step."""

    def __init__(self, start: int, stop: int, batch: int, dist: Distributed) -> None:
        self.start, self.stop, self.batch, self.dist = start, stop, batch, dist

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start, self.stop):
            first = (step * self.dist.world + self.dist.rank) * self.batch
            yield list(range(first, first + self.batch))

    def __len__(self) -> int:
        return max(0, self.stop - self.start)


# -- signals and batches ---------------------------------------------------------------------------


def _loader_worker_init(worker_id: int) -> None:
    """DataLoader workers ignore SIGTERM and SIGINT: only the trainer decides when they stop.

    `pkill -f "vocalsep train ..."` matches the workers too (they share the command line), and
    Ctrl-C in a terminal signals the whole foreground process group. A worker killed first
    would make the trainer fail with "DataLoader worker ... killed by signal" (or exit
    unexpectedly) instead of saving `last.ckpt`; ignoring the signals lets the trainer handle
    them as an interruption and shut its workers down itself (a worker also exits on its own
    once the trainer is gone)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class _DeferredInterrupts:
    """Holds SIGINT and SIGTERM while the trainer receives a batch from its loader workers.

    A worker hands each batch's tensors over as file descriptors: the trainer connects to the
    worker's `multiprocessing` resource sharer and fetches them. A KeyboardInterrupt raised in
    the middle of that handshake leaves the worker's sharer thread with a broken connection,
    and it prints a traceback on the shared stderr after the trainer's one-line "interrupted"
    message. Inside this context a signal is only recorded; on leaving, the recorded signal's
    previous handler runs (KeyboardInterrupt for both, in `vocalsep train`), after the batch is
    complete. A second signal before that runs the handler at once, so a loader that hangs
    cannot hold the run. Outside the main thread (where handlers cannot be set) it does
    nothing."""

    _SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self._previous: dict[int, Any] = {}
        self._pending: int | None = None  # the signal held, if any

    def _record(self, signum, frame) -> None:
        if self._pending is not None:  # a second signal: a loader that hangs must not hold the run
            self._pending = None
            handler = self._previous.get(signum)
            self._restore()
            _deliver(signum, handler, frame)
            return
        self._pending = signum

    def __enter__(self) -> _DeferredInterrupts:
        self._pending = None
        self._previous.clear()
        try:
            for signum in self._SIGNALS:
                self._previous[signum] = signal.signal(signum, self._record)
        except ValueError:  # not the main thread: nothing to defer
            self._restore()
        return self

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            # None: a handler set outside Python; the default is the closest we can put back.
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        self._previous.clear()

    def __exit__(self, kind, error, traceback) -> bool:
        previous = dict(self._previous)
        self._restore()
        signum, self._pending = self._pending, None
        if signum is not None:
            _deliver(signum, previous.get(signum), None)
        return False


def _deliver(signum: int, handler: Any, frame: Any) -> None:
    """Does what `handler` (a handler `signal.signal` returned) would have done for `signum`."""
    if callable(handler):
        handler(signum, frame)  # SIGINT's default handler raises KeyboardInterrupt
    elif handler != signal.SIG_IGN:
        signal.raise_signal(signum)  # the default action, once the default is back in place


def _batches(loader: DataLoader) -> Iterator[Any]:
    """The loader's batches, each received with SIGINT/SIGTERM deferred (`_DeferredInterrupts`)."""
    iterator = iter(loader)
    guard = _DeferredInterrupts()
    while True:
        with guard:
            try:
                batch = next(iterator)
            except StopIteration:
                return
        yield batch
