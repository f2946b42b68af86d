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
import os
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from ..core.checkpoint import load_checkpoint, load_weights, save_checkpoint
from ..core.errors import CheckpointError, VocalsepError
from .config import RunConfig
from .optim import LRSchedule, build_optimizer
from .runtime import (
    Distributed,
    TrainingError,
    _batches,
    _device,
    _Examples,
    _loader_worker_init,
    _StepSampler,
)
from .task import Task

LAST = "last.ckpt"
BEST = "best.ckpt"
LOG = "log.jsonl"
_SEED_MIX = 1_000_003  # spreads (seed, step, rank) over distinct torch seeds


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
