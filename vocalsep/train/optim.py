"""Optimizers and learning-rate schedules from an `OptimizerConfig`."""

from __future__ import annotations

import math

import torch

from .config import OptimizerConfig


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
