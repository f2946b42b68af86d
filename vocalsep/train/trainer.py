"""The training loop: device, AMP, DDP, schedules, validation, checkpoints, exact resume, logs.

Modality-free: a `Task` supplies the model, the examples, the loss and the metrics.

Reproducibility. Example i of a run is a pure function of (seed, i) (the task guarantees it),
and step s of process r draws examples `[(s * world + r) * batch, ... + batch)`. Before each
step the torch RNG (dropout, any random op in the model) is reseeded from (seed, step, rank).
So a run's result does not depend on the number of DataLoader workers, and a run resumed from
its `last` checkpoint (weights, optimizer, schedule, step) continues exactly where it stopped.

Distributed. Under `torchrun` (WORLD_SIZE > 1) each process trains on its own slice of every
step's examples inside DistributedDataParallel (nccl on CUDA, gloo on the CPU); process 0
validates, logs and writes checkpoints.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from ..core.checkpoint import load_checkpoint, load_weights, save_checkpoint
from ..core.device import select_device
from ..core.errors import CheckpointError, ConfigError, VocalsepError
from .config import OptimizerConfig, RunConfig
from .task import ExampleSource, Task

LAST = "last.ckpt"
BEST = "best.ckpt"
LOG = "log.jsonl"
_SEED_MIX = 1_000_003  # spreads (seed, step, rank) over distinct torch seeds


class TrainingError(VocalsepError):
    """A run cannot start or continue (existing run without --resume, diverged loss, ...)."""


class TrainingInterrupted(VocalsepError):
    """Ctrl-C during training; `last` was saved at `step`."""

    def __init__(self, step: int, path: Path) -> None:
        super().__init__(f"interrupted at step {step}; saved {path} (continue with --resume)")
        self.step = step
        self.path = path


@dataclass
class TrainResult:
    step: int
    last: Path
    best: Path | None
    best_score: float | None
    validations: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    main_process: bool = True  # False in DDP processes other than 0 (they hold no scores)


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


# -- optimisation -----------------------------------------------------------------------------


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


def build_optimizer(config: OptimizerConfig, parameters) -> torch.optim.Optimizer:
    if config.name == "adam":
        return torch.optim.Adam(
            parameters, lr=config.lr, betas=config.betas, weight_decay=config.weight_decay
        )
    if config.name == "adamw":
        return torch.optim.AdamW(
            parameters, lr=config.lr, betas=config.betas, weight_decay=config.weight_decay
        )
    return torch.optim.SGD(
        parameters, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )


class LRSchedule:
    """Learning rate as a function of the step (warmup x schedule) and, for "plateau", of the
    validation history. Its whole state is in `state_dict()`, so resume is exact."""

    def __init__(self, config: OptimizerConfig, total_steps: int, mode: str) -> None:
        self.config = config
        self.total_steps = total_steps
        self.sign = 1.0 if mode == "max" else -1.0
        self.plateau_factor = 1.0
        self.plateau_best = -math.inf
        self.plateau_bad = 0

    def factor(self, step: int) -> float:
        config = self.config
        warmup = min(1.0, (step + 1) / config.warmup_steps) if config.warmup_steps else 1.0
        if config.schedule == "cosine":
            progress = min(1.0, step / max(1, self.total_steps - 1))
            shape = config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (
                1 + math.cos(math.pi * progress)
            )
        elif config.schedule == "step":
            shape = config.gamma ** (step // config.step_size)
        elif config.schedule == "plateau":
            shape = self.plateau_factor
        else:
            shape = 1.0
        return warmup * shape

    def apply(self, optimizer: torch.optim.Optimizer, step: int) -> float:
        lr = self.config.lr * self.factor(step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        return lr

    def observe(self, score: float) -> None:
        """Feed a validation score (for "plateau")."""
        value = self.sign * score
        if value > self.plateau_best:
            self.plateau_best, self.plateau_bad = value, 0
            return
        self.plateau_bad += 1
        if self.plateau_bad > self.config.patience:
            self.plateau_factor *= self.config.gamma
            self.plateau_bad = 0

    def state_dict(self) -> dict[str, float]:
        return {
            "plateau_factor": self.plateau_factor,
            "plateau_best": self.plateau_best,
            "plateau_bad": self.plateau_bad,
        }

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.plateau_factor = float(state["plateau_factor"])
        self.plateau_best = float(state["plateau_best"])
        self.plateau_bad = int(state["plateau_bad"])


# -- the trainer ------------------------------------------------------------------------------


class Trainer:
    """Train `task` as described by `config`, writing `last.ckpt`, `best.ckpt` and `log.jsonl`
    into `out_dir`.

    progress: show a tqdm bar (process 0 only). `on_log` receives every log record (dicts).
    """

    def __init__(
        self,
        task: Task,
        config: RunConfig,
        out_dir: str | os.PathLike,
        *,
        progress: bool = True,
        on_log: Callable[[dict[str, Any]], None] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.task = task
        self.config = config
        self.out_dir = Path(out_dir)
        self.progress = progress
        self.on_log = on_log
        self.metadata = dict(metadata or {})
        self.dist = Distributed.from_env()

    # The heavy lifting lives in small methods so that fit() reads as the algorithm.

    def _setup(self, resume: bool):
        trainer = self.config.trainer
        if trainer.threads:
            torch.set_num_threads(trainer.threads)
        self._owns_process_group = False
        if self.dist.world > 1 and not torch.distributed.is_initialized():
            self._owns_process_group = True
            backend = (
                "nccl"
                if trainer.device.startswith("cuda")
                or (trainer.device == "auto" and torch.cuda.is_available())
                else "gloo"
            )
            torch.distributed.init_process_group(backend)
        device = _device(trainer.device, self.dist)
        if device.type == "cuda":
            torch.cuda.set_device(device)
        last = self.out_dir / LAST
        if last.exists() and not resume:
            raise TrainingError(
                f"{self.out_dir} already holds a run ({LAST}); pass --resume to continue it "
                "or choose another --out"
            )
        if resume and not last.exists():
            raise TrainingError(f"cannot resume: {last} does not exist")
        torch.manual_seed(trainer.seed)
        model = self.task.build_model().to(device)
        optimizer = build_optimizer(self.config.optimizer, model.parameters())
        schedule = LRSchedule(self.config.optimizer, trainer.steps, trainer.monitor_mode)
        state = {"step": 0, "best": None, "validations": []}
        if resume:
            state = self._restore(last, model, optimizer, schedule)
        elif trainer.init_from:
            load_weights(model, load_checkpoint(trainer.init_from), trainer.init_from)
        return device, model, optimizer, schedule, state

    def _restore(self, path, model, optimizer, schedule) -> dict[str, Any]:
        checkpoint = load_checkpoint(path)
        training = checkpoint.training_state
        if not training:
            raise CheckpointError(f"{path} holds no training state; it cannot be resumed")
        saved = training.get("config", {})
        now = self.config.to_dict()
        for key in ("task", "task_config"):
            if saved.get(key) != now.get(key):
                raise TrainingError(
                    f"cannot resume {path}: its {key} differs from this config "
                    "(only trainer.steps and similar may change between sessions)"
                )
        load_weights(model, checkpoint, path)
        optimizer.load_state_dict(training["optimizer"])
        schedule.load_state_dict(training["schedule"])
        return {
            "step": int(training["step"]),
            "best": training.get("best"),
            "validations": list(training.get("validations", [])),
        }

    def _save(self, name: str, model: nn.Module, optimizer, schedule, state, metrics=None):
        metadata = {
            **self.metadata,
            "trained_steps": state["step"],
            "seed": self.config.trainer.seed,
            "run_config": self.config.to_dict(),
        }
        if metrics is not None:
            metadata["validation"] = dict(metrics)
        checkpoint = self.task.checkpoint(_unwrap(model), metadata)
        checkpoint.training_state = {
            "step": state["step"],
            "best": state["best"],
            "validations": state["validations"],
            "optimizer": optimizer.state_dict(),
            "schedule": schedule.state_dict(),
            "config": self.config.to_dict(),
        }
        return save_checkpoint(checkpoint, self.out_dir / name)

    def _log(self, record: dict[str, Any]) -> None:
        if not self.dist.main:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with open(self.out_dir / LOG, "a", encoding="utf-8") as file:
            file.write(json.dumps(record) + "\n")
        if self.on_log is not None:
            self.on_log(record)

    def _validate(self, model, schedule, state, bar, baseline=False) -> dict[str, float] | None:
        """Validate on process 0 and update `best` (not for the `baseline` before training);
        every process waits for it."""
        metrics = None
        if self.dist.main:
            inner = _unwrap(model)
            was_training = inner.training
            inner.eval()
            with torch.no_grad():
                batches = (
                    self.task.to_device(batch, next(inner.parameters()).device)
                    for batch in self.task.validation_batches(self.config.trainer.batch_size)
                )
                metrics = {
                    key: float(value) for key, value in self.task.validate(inner, batches).items()
                }
            inner.train(was_training)
            monitor = self.config.trainer.monitor
            if monitor not in metrics:
                raise TrainingError(
                    f"trainer.monitor {monitor!r} is not a validation metric "
                    f"(have: {', '.join(sorted(metrics))})"
                )
            score = metrics[monitor]
            if not baseline:
                schedule.observe(score)
            better = not baseline and (
                state["best"] is None
                or (
                    score > state["best"]
                    if self.config.trainer.monitor_mode == "max"
                    else score < state["best"]
                )
            )
            if better:
                state["best"] = score
            state["validations"].append({"step": state["step"], **metrics})
            self._log({"step": state["step"], "event": "validation", **metrics, "best": better})
            if bar is not None:
                bar.write(
                    f"step {state['step']}: "
                    + " ".join(f"{key} {value:.4g}" for key, value in sorted(metrics.items()))
                    + (" (best)" if better else "")
                )
            metrics["_better"] = better
        if self.dist.world > 1:
            torch.distributed.barrier()
        return metrics

    def fit(self, *, resume: bool = False, stop_at: int | None = None) -> TrainResult:
        """Train to `trainer.steps` (or stop after step `stop_at`, saving `last`, as an
        interruption would). Raises `TrainingInterrupted` on Ctrl-C after saving `last`."""
        trainer = self.config.trainer
        device, model, optimizer, schedule, state = self._setup(resume)
        if self.dist.world > 1:
            model = nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None
            )
        stop = trainer.steps if stop_at is None else min(stop_at, trainer.steps)
        use_amp = trainer.amp and device.type == "cuda"
        amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
        scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
        loader = DataLoader(
            _Examples(self.task.training_examples(trainer.seed)),
            batch_sampler=_StepSampler(state["step"], stop, trainer.batch_size, self.dist),
            collate_fn=self.task.collate,
            num_workers=trainer.num_workers,
            pin_memory=device.type == "cuda",
            persistent_workers=False,
            prefetch_factor=4 if trainer.num_workers else None,
            worker_init_fn=_loader_worker_init if trainer.num_workers else None,
        )
        bar = None
        if self.progress and self.dist.main:
            from tqdm import tqdm

            bar = tqdm(
                total=stop,
                initial=state["step"],
                unit="step",
                dynamic_ncols=True,
                disable=None,
            )
        examples_per_step = trainer.batch_size * self.dist.world
        started = time.perf_counter()
        window_loss, window_steps, window_start = 0.0, 0, time.perf_counter()
        bad_steps = 0
        last_metrics: dict[str, float] | None = None
        if trainer.validate_at_start and state["step"] == 0:
            self._validate(model, schedule, state, bar, baseline=True)
        model.train()
        try:
            for batch in _batches(loader):
                step = state["step"]
                torch.manual_seed((trainer.seed * _SEED_MIX + step) * 4099 + self.dist.rank)
                lr = schedule.apply(optimizer, step)
                batch = self.task.to_device(batch, device)
                context = (
                    torch.autocast(device_type="cuda", dtype=amp_dtype)
                    if use_amp
                    else nullcontext()
                )
                with context:
                    loss = self.task.loss(model, batch)
                if not torch.isfinite(loss):
                    bad_steps += 1
                    optimizer.zero_grad(set_to_none=True)
                    if bad_steps > 20:
                        raise TrainingError(
                            f"the loss was not finite for {bad_steps} steps in a row at step "
                            f"{step}; lower optimizer.lr"
                        )
                else:
                    bad_steps = 0
                    scaler.scale(loss).backward()
                    if self.config.optimizer.grad_clip:
                        scaler.unscale_(optimizer)
                        nn.utils.clip_grad_norm_(
                            model.parameters(), self.config.optimizer.grad_clip
                        )
                    scaler.step(optimizer)
                    scaler.update()
                    optimizer.zero_grad(set_to_none=True)
                    window_loss += float(loss.detach())
                    window_steps += 1
                state["step"] = step = step + 1
                if bar is not None:
                    bar.update(1)
                if step % trainer.log_every == 0 or step == stop:
                    elapsed = max(time.perf_counter() - window_start, 1e-9)
                    steps_done = max(window_steps, 1)
                    record = {
                        "step": step,
                        "event": "train",
                        "loss": window_loss / steps_done,
                        "lr": lr,
                        "examples_per_s": examples_per_step * window_steps / elapsed,
                        "time": time.perf_counter() - started,
                    }
                    self._log(record)
                    if bar is not None:
                        bar.set_postfix(
                            loss=f"{record['loss']:.4g}", ex_s=f"{record['examples_per_s']:.1f}"
                        )
                    window_loss, window_steps, window_start = 0.0, 0, time.perf_counter()
                validate_now = trainer.validate_every and step % trainer.validate_every == 0
                if validate_now or step == trainer.steps:
                    last_metrics = self._validate(model, schedule, state, bar)
                    if self.dist.main and last_metrics.pop("_better"):
                        self._save(BEST, model, optimizer, schedule, state, last_metrics)
                if self.dist.main and (step % trainer.checkpoint_every == 0 or step == stop):
                    self._save(LAST, model, optimizer, schedule, state, last_metrics)
        except KeyboardInterrupt:
            if bar is not None:
                bar.close()
            path = self.out_dir / LAST
            if self.dist.main:
                self._save(LAST, model, optimizer, schedule, state, last_metrics)
            raise TrainingInterrupted(state["step"], path) from None
        finally:
            if bar is not None:
                bar.close()
            if self._owns_process_group:
                torch.distributed.destroy_process_group()
        if self.dist.main and state["step"] == 0:
            self._save(LAST, model, optimizer, schedule, state, last_metrics)
        best = self.out_dir / BEST
        return TrainResult(
            step=state["step"],
            last=self.out_dir / LAST,
            best=best if best.exists() else None,
            best_score=state["best"],
            validations=state["validations"],
            seconds=time.perf_counter() - started,
            main_process=self.dist.main,
        )


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
