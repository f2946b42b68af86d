"""The public Python API of vocalsep (the README's "Python API" section shows it at work).

>>> import vocalsep
>>> separator = vocalsep.Separator.from_pretrained()  # the default model
>>> stems = separator.separate(waveform, 44100)  # (channels, samples), (samples, channels), ...
>>> stems["vocals"].shape == waveform.shape
True
>>> vocalsep.separate_file("song.mp3", "separated", separator=separator)
{'vocals': PosixPath('separated/song/vocals.wav'), 'accompaniment': ...}
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .audio.files import check_output_options, plan_jobs, separate_file
from .audio.separator import Separator
from .core.config import FieldError
from .core.errors import ConfigError
from .core.outputs import Job

if TYPE_CHECKING:
    from pathlib import Path

    from .train.config import RunConfig
    from .train.trainer import TrainResult

__all__ = [
    "Job",
    "Separator",
    "check_output_options",
    "load_separator",
    "plan_jobs",
    "predict_mask",
    "separate_file",
    "train",
    "dump_examples",
    "evaluate",  # noqa: F822 (loaded on first use, see __getattr__)
    "load_segmentation_model",  # noqa: F822 (loaded on first use, see __getattr__)
    "segment_image",  # noqa: F822 (loaded on first use, see __getattr__)
    "plan_segment_jobs",  # noqa: F822 (loaded on first use, see __getattr__)
    "segment_file",  # noqa: F822 (loaded on first use, see __getattr__)
    "evaluate_segmentation",  # noqa: F822 (loaded on first use, see __getattr__)
]


def load_separator(
    model: str | os.PathLike | None = None, *, device: str = "auto", **options
) -> Separator:
    """A `Separator` for a shipped model name, a checkpoint or ONNX path or (None) the default
    model; `options` as `Separator.from_pretrained` takes them (`backend`, `threads`, ...)."""
    return Separator.from_pretrained(model, device=device, **options)


def predict_mask(spectrogram: Any, model: str | os.PathLike | Separator | None = None) -> Any:
    """Soft masks `(stems, channels, bins, frames)`, one per stem of the model, for a
    spectrogram `(channels, bins, frames)` at the model's STFT: `separator.stft(waveform,
    sample_rate)` or its magnitude (see `Separator.predict_mask`); spectrogram models only (a
    waveform model raises `ConfigError`)."""
    separator = model if isinstance(model, Separator) else load_separator(model, device="cpu")
    return separator.predict_mask(spectrogram)


# Scoring and the image side load only when one of their functions is asked for: separating
# audio through this API imports neither (name -> the module that defines it).
_ON_FIRST_USE = {
    "evaluate": ".audio.scoring",
    "evaluate_segmentation": ".image.segment",
    "load_segmentation_model": ".image.segment",
    "plan_segment_jobs": ".image.segment",
    "segment_file": ".image.segment",
    "segment_image": ".image.segment",
}


def __getattr__(name: str):
    if name in _ON_FIRST_USE:
        return getattr(importlib.import_module(_ON_FIRST_USE[name], __package__), name)
    raise AttributeError(f"module 'vocalsep.api' has no attribute {name!r}")


# -- training (the trainer is imported only here: `import vocalsep.api` does not load it) --


def build_task(run: RunConfig, *, progress: Callable[[str], None] | None = None):
    """The task object a run config names: "separation" or "segmentation"."""
    if run.task == "segmentation":
        from .image.training import SegmentationTask, SegmentationTaskConfig

        return _task(SegmentationTask, SegmentationTaskConfig, run.task_config, progress)
    from .audio.training import SeparationTask, SeparationTaskConfig

    if run.task != "separation":
        raise ConfigError(f"unknown task {run.task!r}; known: separation, segmentation")
    return _task(SeparationTask, SeparationTaskConfig, run.task_config, progress)


def _task(task_class, config_class, data: dict, progress):
    """`task_class(config_class.from_dict(data))`, naming a mistyped field from `task_config`
    down (the network's fields are checked when the task builds its network config)."""
    try:
        return task_class(config_class.from_dict(data), progress=progress)
    except FieldError as error:
        raise error.within("task_config") from None


def train(
    config: str | os.PathLike | RunConfig,
    out_dir: str | os.PathLike,
    *,
    overrides: Sequence[str] = (),
    resume: bool = False,
    progress: bool = True,
    stop_at: int | None = None,
    on_log: Callable[[dict], None] | None = None,
    metadata: dict | None = None,
) -> TrainResult:
    """Train from a TOML run config (or a `RunConfig`) into `out_dir` (`last.ckpt`,
    `best.ckpt`, `log.jsonl`); `resume` continues the run saved there exactly."""
    from .train import Trainer, load_run_config
    from .train.config import RunConfig

    run = config if isinstance(config, RunConfig) else load_run_config(config, list(overrides))
    task = build_task(run)
    trainer = Trainer(task, run, out_dir, progress=progress, on_log=on_log, metadata=metadata)
    return trainer.fit(resume=resume, stop_at=stop_at)


def dump_examples(
    config: str | os.PathLike | RunConfig,
    folder: str | os.PathLike,
    *,
    count: int = 8,
    overrides: Sequence[str] = (),
    split: str = "train",
) -> list[Path]:
    """Write `count` training (or validation) examples of a run config as wav files, to listen
    to what the model learns from."""
    from .train import load_run_config
    from .train.config import RunConfig

    run = config if isinstance(config, RunConfig) else load_run_config(config, list(overrides))
    return build_task(run).dump_examples(folder, count, run.trainer.seed, split)
