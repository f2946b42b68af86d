"""Run an exported separation network in onnxruntime, without torch.

A file written by `onnx_export.export_onnx` holds the network graph and, under the metadata key
"vocalsep", a JSON object with what the `Separator` needs besides the network:

    format        FORMAT_VERSION
    vocalsep_version  version that exported it
    task          "audio-separation"
    architecture  network name ("ensemble" for an ensemble)
    model_config  the network config (an ensemble: each member's architecture and network)
    task_config   the model config with its "model_type" (an ensemble: members and weights)
    metadata      the checkpoint's free-form metadata (licence, training, metrics...)
    context, unit a waveform model only: samples seen on each side of a tile, and its shift

as in a checkpoint (`Checkpoint`) without the weights. The graph's inputs and outputs are
"magnitude" -> "mask" (a spectrogram masking model), "magnitude_i" -> "mask_i" for member i of
an ensemble, or "mixture" -> "stems" (a waveform model).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from ..core.cpu import cores
from ..core.errors import CheckpointError, ConfigError, VocalsepError
from .backends import ONNX_MISSING, SPECTROGRAM, WAVEFORM, NetworkMember, SeparationNetwork
from .modelconfig import TASK, SpectrogramModelConfig, WaveformModelConfig

METADATA_KEY = "vocalsep"
FORMAT_VERSION = 1
# model_type (as the torch models name themselves in checkpoints) -> kind, config class
MODEL_TYPES: dict[str, tuple[str, type]] = {
    "spectrogram-mask": (SPECTROGRAM, SpectrogramModelConfig),
    "waveform": (WAVEFORM, WaveformModelConfig),
}
ENSEMBLE = "spectrogram-ensemble"


def graph_names(model_type: str, members: int = 1) -> list[tuple[str, str]]:
    """The graph's `(input, output)` names, one pair per network."""
    if model_type == ENSEMBLE:
        return [(f"magnitude_{i}", f"mask_{i}") for i in range(members)]
    return [("mixture", "stems")] if model_type == "waveform" else [("magnitude", "mask")]


def _session(path: Path, threads: int | None) -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError(ONNX_MISSING) from None
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads or cores()
    options.inter_op_num_threads = 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    # The arena keeps the largest buffers of every shape seen for reuse; the last tile batch
    # of each chunk has another shape, so here it only adds peak memory (416 -> 391 MB for a
    # 3-minute song, no slower).
    options.enable_cpu_mem_arena = False
    # Idle pool threads spin-wait for the next run by default, and so take the cores from the
    # numpy STFT threads that run between network calls: without spinning a 3-minute song
    # separates about 5% faster on 2 cores.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # a foreign file can fail the parser in many ways
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"cannot read {path}: not an ONNX model ({reason})") from None


def _description(path: Path, session: Any) -> dict[str, Any]:
    """The vocalsep metadata of the file, checked for its format and task."""
    text = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
    if text is None:
        raise CheckpointError(f"{path} is an ONNX model but not a vocalsep export (no metadata)")
    try:
        description = json.loads(text)
    except ValueError:
        description = None
    if not isinstance(description, dict):
        raise CheckpointError(f"{path}: the vocalsep metadata is not a JSON object")
    version = description.get("format")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} uses vocalsep ONNX format {version!r}, this vocalsep {__version__} reads "
            f"format {FORMAT_VERSION}; export it again or upgrade vocalsep"
        )
    missing = [k for k in ("task", "task_config", "metadata") if k not in description]
    if missing:
        raise CheckpointError(f"{path} is incomplete: missing {', '.join(missing)}")
    if not isinstance(description["task_config"], dict) or not isinstance(
        description["metadata"], dict
    ):
        raise CheckpointError(f"{path}: task_config and metadata must be JSON objects")
    if description["task"] != TASK:
        raise CheckpointError(f"{path} is a {description['task']!r} model, not a {TASK!r} model")
    return description


def _member_configs(description: dict[str, Any]) -> tuple[str, list[Any], list[float]]:
    """(kind, member configs, weights) of the file's task config."""
    task_config = dict(description["task_config"])
    model_type = task_config.pop("model_type", None)
    if model_type == ENSEMBLE:
        parts, weights = task_config.get("members"), task_config.get("weights")
        if not (
            isinstance(parts, list)
            and isinstance(weights, list)
            and len(parts) == len(weights) > 0
            and all(isinstance(part, dict) for part in parts)
        ):
            raise ConfigError("ensemble members or weights missing or malformed")
        if any(part.get("model_type") != "spectrogram-mask" for part in parts):
            raise ConfigError("an ensemble combines spectrogram masking models only")
        configs = [
            SpectrogramModelConfig.from_dict({k: v for k, v in part.items() if k != "model_type"})
            for part in parts
        ]
        return SPECTROGRAM, configs, [float(w) for w in weights]
    if model_type not in MODEL_TYPES:
        raise ConfigError(f"unsupported model type {model_type!r}")
    kind, config_class = MODEL_TYPES[model_type]
    return kind, [config_class.from_dict(task_config)], [1.0]


def _check_graph(
    path: Path, session: Any, expected: dict[str, tuple[int | None, ...]], outputs: list[str]
) -> None:
    """The graph's inputs must be `expected` (name -> shape, None where dynamic), and it must
    have the `outputs`."""
    missing = set(outputs) - {value.name for value in session.get_outputs()}
    if missing:
        raise CheckpointError(f"{path}: the graph has no output {sorted(missing)[0]!r}")
    found = {value.name: value.shape for value in session.get_inputs()}
    for name, shape in expected.items():
        dims = found.pop(name, None)
        if dims is None or len(dims) != len(shape):
            raise CheckpointError(f"{path}: the graph has no input {name!r} of {len(shape)} axes")
        if any(want is not None and dim != want for dim, want in zip(dims, shape, strict=True)):
            raise CheckpointError(f"{path}: input {name!r} is {dims}, the metadata says {shape}")
    if found:
        raise CheckpointError(f"{path}: unexpected graph inputs {sorted(found)}")


def load_onnx_model(path: str | os.PathLike, *, threads: int | None = None) -> SeparationNetwork:
    """The network of an ONNX file written by `export_onnx`, run by onnxruntime on the CPU with
    `threads` threads (default: every core this process may use), as numpy functions: each
    member's `run` maps float32 magnitudes `(batch, audio_channels, band_bins, frames)` to masks
    `(batch, targets, audio_channels, band_bins, frames)`, or a waveform model's mixture
    `(batch, audio_channels, samples)` to stems `(batch, targets, audio_channels, samples)`.

    Raises `ConfigError` when onnxruntime is not installed, `CheckpointError` (one line naming
    the file) when the file is missing, not ONNX, not a vocalsep export or of another format.
    """
    path = Path(path)
    if threads is not None and threads < 1:
        raise ConfigError(f"threads must be >= 1, got {threads}")
    if not path.is_file():
        raise CheckpointError(f"model file {path} does not exist")
    session = _session(path, threads)
    description = _description(path, session)
    try:
        kind, configs, weights = _member_configs(description)
    except (VocalsepError, TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: invalid model configuration ({error})") from None
    model_type = description["task_config"].get("model_type")
    names = graph_names(model_type, len(configs))
    shapes = {
        name: (None, config.audio_channels, config.band_bins, None)
        if kind == SPECTROGRAM
        else (None, config.audio_channels, None)
        for (name, _), config in zip(names, configs, strict=True)
    }
    _check_graph(path, session, shapes, [output for _, output in names])
    # onnxruntime needs every input of the graph at each call, and runs every node: the other
    # members of an ensemble get an empty batch, which costs nothing.
    empty = {name: np.zeros((0, *shape[1:-1], 1), np.float32) for name, shape in shapes.items()}
    members = tuple(
        NetworkMember(config, weight, _runner(session, name, output, empty))
        for (name, output), config, weight in zip(names, configs, weights, strict=True)
    )
    context, unit = 0, 1
    if kind == WAVEFORM:
        context, unit = description.get("context"), description.get("unit", 1)
        if not (isinstance(context, int) and isinstance(unit, int) and context >= 0 and unit >= 1):
            raise CheckpointError(f"{path}: a waveform model needs integer context and unit")
    metadata = description["metadata"]
    return SeparationNetwork(kind, members, "onnx", context, unit, metadata=metadata)


def _runner(
    session: Any, name: str, output: str, empty: dict[str, np.ndarray]
) -> Callable[[np.ndarray], np.ndarray]:
    others = {other: value for other, value in empty.items() if other != name}

    def run(inputs: np.ndarray) -> np.ndarray:
        feed = {**others, name: np.ascontiguousarray(inputs, dtype=np.float32)}
        return session.run([output], feed)[0]

    return run
