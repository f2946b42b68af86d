"""Training configuration: frozen dataclasses read from TOML, with `--set key=value` overrides.

A run config file has three parts:

    task = "separation"            # who supplies model, data, loss and metrics
    [trainer]  ...                 # TrainerConfig: steps, batch size, validation, checkpoints
    [optimizer] ...                # OptimizerConfig: algorithm, learning rate, schedule
    [task_config] ...              # opaque here: parsed by the task into its own dataclass

Overrides use dotted keys and TOML values: `--set trainer.steps=500`,
`--set task_config.data.segment_seconds=2.5`, `--set optimizer.betas=[0.9,0.99]`.
"""

from __future__ import annotations

import copy
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from ..core.config import Config
from ..core.errors import ConfigError

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "cosine", "step", "plateau")


@dataclass(frozen=True)
class OptimizerConfig(Config):
    """name: adam | adamw | sgd. schedule: constant | cosine (to `min_lr_ratio` x lr at the last
    step) | step (x `gamma` every `step_size` steps) | plateau (x `gamma` when the validation
    score has not improved for `patience` validations). `warmup_steps` ramps lr linearly from 0.
    `grad_clip` is the max global gradient norm (0 = off)."""

    name: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    momentum: float = 0.9
    grad_clip: float = 5.0
    schedule: str = "constant"
    warmup_steps: int = 0
    min_lr_ratio: float = 0.01
    step_size: int = 1000
    gamma: float = 0.5
    patience: int = 5

    def __post_init__(self) -> None:
        if self.name not in OPTIMIZERS:
            raise ConfigError(f"optimizer.name must be one of {OPTIMIZERS}, got {self.name!r}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(
                f"optimizer.schedule must be one of {SCHEDULES}, got {self.schedule!r}"
            )
        if self.lr <= 0 or self.grad_clip < 0 or self.warmup_steps < 0:
            raise ConfigError("optimizer: need lr > 0, grad_clip >= 0, warmup_steps >= 0")


@dataclass(frozen=True)
class TrainerConfig(Config):
    """steps:            optimizer steps in the whole run (resume continues up to it).
    batch_size:          examples per step *per process* (DDP multiplies it by the world size).
    num_workers:         DataLoader worker processes (0 = load in the training process).
    validate_every:      steps between validations (and `best` checkpoint updates); 0 = only at
                         the end.
    checkpoint_every:    steps between `last` checkpoints (also written on Ctrl-C and at the end).
    validate_at_start:   also validate the untrained model (a baseline for the curve).
    log_every:           steps between log lines (JSONL) and progress-bar updates.
    monitor / monitor_mode: the validation metric that picks `best` ("min" or "max").
    seed:                seeds weights, dropout and every example (example i of the run is a
                         pure function of seed and i, so resume and DDP are reproducible).
    device:              auto | cpu | cuda | cuda:N | mps (under torchrun: cuda:LOCAL_RANK).
    amp:                 mixed precision on CUDA (bfloat16 where supported, else float16).
    threads:             torch intra-op threads on the CPU (0 = torch's default).
    init_from:           start a fresh run from the weights of this checkpoint (fine-tuning;
                         the optimizer and schedule start anew). Ignored by --resume.
    """

    steps: int = 1000
    batch_size: int = 8
    num_workers: int = 0
    validate_every: int = 500
    checkpoint_every: int = 100
    validate_at_start: bool = False
    log_every: int = 10
    monitor: str = "loss"
    monitor_mode: str = "min"
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    threads: int = 0
    init_from: str = ""

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.num_workers < 0:
            raise ConfigError("trainer: need steps >= 1, batch_size >= 1, num_workers >= 0")
        if self.validate_every < 0 or self.checkpoint_every < 1 or self.log_every < 1:
            raise ConfigError(
                "trainer: need validate_every >= 0, checkpoint_every >= 1, log_every >= 1"
            )
        if self.monitor_mode not in ("min", "max"):
            raise ConfigError(f"trainer.monitor_mode must be min or max, got {self.monitor_mode}")


@dataclass(frozen=True)
class RunConfig(Config):
    """One training run: the task's name and config, the trainer and the optimizer."""

    task: str = "separation"
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    task_config: dict[str, Any] = field(default_factory=dict)


def parse_override(text: str) -> tuple[list[str], Any]:
    """`"a.b.c=VALUE"` -> (["a", "b", "c"], value); VALUE is read as TOML, else as a string."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. trainer.steps=100")
    try:
        value = tomllib.loads(f"value = {raw.strip()}")["value"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return key.split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """A copy of the nested dict `data` with each `KEY=VALUE` override set."""
    data = copy.deepcopy(data)
    for text in overrides:
        keys, value = parse_override(text)
        node = data
        for key in keys[:-1]:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {text!r}: {key!r} is a value, not a table")
            node = child
        node[keys[-1]] = value
    return data


def config_file(path: str | Path) -> Path:
    """The run config a path names: the file itself, or in a recipe folder its `config.toml`,
    else its only `.toml` file (`ConfigError` when there is none or a choice to make)."""
    path = Path(path)
    if not path.is_dir():
        return path
    if (path / "config.toml").is_file():
        return path / "config.toml"
    found = sorted(p.name for p in path.glob("*.toml") if p.is_file())
    if len(found) == 1:
        return path / found[0]
    if not found:
        raise ConfigError(f"{path} is a folder without a run config (.toml); pass a config file")
    raise ConfigError(
        f"{path} holds several run configs ({', '.join(found)}); pass one of them, "
        f"e.g. {path / found[0]}"
    )


def load_run_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """Read a TOML run config (a file, or a recipe folder: see `config_file`), apply overrides
    and validate it (errors are `ConfigError`)."""
    path = config_file(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read config file {path} ({error})") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path} is not valid TOML ({error})") from None
    data = apply_overrides(data, list(overrides or []))
    try:
        return RunConfig.from_dict(data)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None
