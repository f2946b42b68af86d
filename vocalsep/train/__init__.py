"""The modality-free training loop (see `trainer.py`); tasks live with their modality."""

from .config import OptimizerConfig, RunConfig, TrainerConfig, apply_overrides, load_run_config
from .task import Task
from .trainer import Trainer, TrainingError, TrainingInterrupted, TrainResult

__all__ = [
    "OptimizerConfig",
    "RunConfig",
    "Task",
    "TrainResult",
    "Trainer",
    "TrainerConfig",
    "TrainingError",
    "TrainingInterrupted",
    "apply_overrides",
    "load_run_config",
]
