"""Export a separation network to ONNX: one file that onnxruntime runs without torch
(`onnx_model.load_onnx_model`), its configs and metadata inside (the layout is described there).

Needs the `export` extra (onnx and onnxscript, for torch's dynamo-based exporter). Not the
TorchScript exporter (`dynamo=False`): it turns the networks' padding to a multiple of their
stride into constants, so only the traced frame count would run.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import operator
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._version import __version__
from ..core.errors import ConfigError
from ..core.files import atomic_file
from .models import SpectrogramEnsemble, SpectrogramMaskModel, WaveformModel
from .onnx_model import FORMAT_VERSION, METADATA_KEY, graph_names

INSTALL_EXPORT = 'pip install "vocalsep[export]"'
MIN_OPSET = 18  # the oldest opset torch's dynamo-based exporter writes


class _Members(nn.Module):
    """An ensemble's members side by side: magnitudes `(batch_i, audio_channels, band_bins_i,
    frames_i)`, one per member -> that member's masks."""

    def __init__(self, members: nn.ModuleList) -> None:
        super().__init__()
        self.members = members

    def forward(self, *magnitudes: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(member(m) for member, m in zip(self.members, magnitudes, strict=True))


@dataclass(frozen=True)
class _Graph:
    """What the exporter traces: `module` on `examples`, the axes named in `axes` (per input,
    axis -> name) dynamic; `outputs` gives each output's shape (names where dynamic)."""

    module: nn.Module
    names: list[tuple[str, str]]
    examples: tuple[torch.Tensor, ...]
    axes: tuple[dict[int, str], ...]
    outputs: tuple[tuple[int | str, ...], ...]


def _graph(model: nn.Module, model_type: str) -> _Graph:
    """The graph of a (CPU, eval) model, traced on inputs of the size the pipeline feeds: a
    tile with its context on both sides. Batch 2: the exporter takes a size of 1 for a
    constant."""
    names = graph_names(model_type, len(getattr(model, "members", [model])))
    if isinstance(model, WaveformModel):
        config = model.config
        samples = config.tile_samples + 2 * model.context
        stems = ("batch", len(config.targets), config.audio_channels, "samples")
        return _Graph(
            model,
            names,
            (torch.ones(2, config.audio_channels, samples),),
            ({0: "batch", 2: "samples"},),
            (stems,),
        )
    ensemble = isinstance(model, SpectrogramEnsemble)
    members = list(model.members) if ensemble else [model]
    examples, axes, outputs = [], [], []
    for i, member in enumerate(members):
        config, suffix = member.config, f"_{i}" if ensemble else ""
        frames = config.tile_frames + 2 * config.tile_context
        examples.append(torch.ones(2, config.audio_channels, config.band_bins, frames))
        axes.append({0: f"batch{suffix}", 3: f"frames{suffix}"})
        masks = (len(config.targets), config.audio_channels, config.band_bins)
        outputs.append((f"batch{suffix}", *masks, f"frames{suffix}"))
    module = _Members(model.members).eval() if ensemble else model
    return _Graph(module, names, tuple(examples), tuple(axes), tuple(outputs))


def _floordiv(dividend: Any, divisor: Any) -> Any:
    """Floor division of symbolic sizes, for any signs. The exporter's own translation of
    `operator.floordiv` (onnxscript's ONNX `Div`) truncates toward zero, so the networks'
    padding to a multiple, `-(-n // m)`, came out one multiple short. ONNX `Mod` takes the
    divisor's sign, as Python's `%` does, so the division below is exact."""
    from onnxscript import opset18 as op

    return op.Div(op.Sub(dividend, op.Mod(dividend, divisor)), divisor)


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Hide what the exporter says on every export and the user cannot act on (that
    torchvision's operators are skipped, deprecations inside torch)."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        logger.setLevel(level)


def export_onnx(
    model: SpectrogramMaskModel | SpectrogramEnsemble | WaveformModel,
    path: str | os.PathLike,
    *,
    opset: int | None = None,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write `model` (a spectrogram masking model, an ensemble of them or a waveform model) to
    `path` as one ONNX file, atomically, with its configs and `metadata` (free-form JSON data,
    e.g. the checkpoint's) inside. The graph is traced in eval mode on the CPU in float32 with
    the batch and the frames (samples) dynamic: a spectrogram model maps "magnitude" `(batch,
    audio_channels, band_bins, frames)` to "mask" `(batch, targets, audio_channels, band_bins,
    frames)`; ensemble member i "magnitude_i" to "mask_i"; a waveform model "mixture" `(batch,
    audio_channels, samples)` to "stems" `(batch, targets, audio_channels, samples)`.
    `opset`: the ONNX opset, >= 18 (default: the exporter's).

    Raises `ConfigError` for another kind of model, missing exporter packages, metadata that is
    not JSON data, or a network the exporter cannot trace.
    """
    if not isinstance(model, SpectrogramEnsemble | SpectrogramMaskModel | WaveformModel):
        raise ConfigError(f"cannot export a {type(model).__name__} to ONNX")
    if opset is not None and opset < MIN_OPSET:
        raise ConfigError(f"ONNX export writes opset {MIN_OPSET} or newer, not {opset}")
    for package in ("onnx", "onnxscript"):
        try:
            __import__(package)
        except ImportError:
            raise ConfigError(f"ONNX export needs {package}: {INSTALL_EXPORT}") from None
    checkpoint = model.to_checkpoint(metadata)
    model_type = checkpoint.task_config["model_type"]
    # a copy: the caller's model keeps its device, dtype and mode
    model = copy.deepcopy(model).to("cpu", torch.float32).eval()
    description = {
        "format": FORMAT_VERSION,
        "vocalsep_version": __version__,
        "task": checkpoint.task,
        "architecture": checkpoint.architecture,
        "model_config": checkpoint.model_config,
        "task_config": checkpoint.task_config,
        "metadata": checkpoint.metadata,
    }
    if isinstance(model, WaveformModel):
        unit = int(getattr(model.network_config, "shift_multiple", 1))
        # as the waveform estimator tiles: the receptive field on the network's shift grid
        description.update(context=math.ceil(model.context / unit) * unit, unit=unit)
    try:
        text = json.dumps(description)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"the metadata must be JSON data ({error})") from None

    graph = _graph(model, model_type)
    dynamic = tuple(
        {axis: torch.export.Dim(name) for axis, name in axes.items()} for axes in graph.axes
    )
    try:
        with _quiet_exporter():
            program = torch.onnx.export(
                graph.module,
                graph.examples,
                input_names=[name for name, _ in graph.names],
                output_names=[name for _, name in graph.names],
                # the ensemble's magnitudes are one (variadic) argument
                dynamic_shapes=(dynamic,) if isinstance(graph.module, _Members) else dynamic,
                opset_version=opset,
                dynamo=True,
                custom_translation_table={operator.floordiv: _floordiv},
                verbose=False,
            )
    except torch.onnx.OnnxExporterError as error:
        cause = str(error.__cause__ or error).strip()  # the exporter's own text is generic
        reason = cause.splitlines()[0] if cause else type(error.__cause__ or error).__name__
        raise ConfigError(
            f"cannot export this {model_type} model ({checkpoint.architecture}) to ONNX: {reason}"
        ) from None
    import onnx_ir

    for value, shape in zip(program.model.graph.outputs, graph.outputs, strict=True):
        value.shape = onnx_ir.Shape(shape)  # named axes instead of the exporter's formulas
    program.model.metadata_props[METADATA_KEY] = text
    path = Path(path)
    with atomic_file(path) as temp:
        program.save(temp, external_data=False)
    return path
