"""The network of a separation model as numpy functions, whichever framework runs it.

The `Separator` does everything around the network in numpy (reading, resampling, chunking,
STFT, masks, Wiener, iSTFT); it only needs a `SeparationNetwork`: the model's configs and, per
network, a function from a numpy batch to a numpy batch. `from_torch` wraps a torch model (any
device); `vocalsep.audio.onnx_model.load_onnx_model` reads an exported ONNX file and runs it in
onnxruntime without importing torch. `load_network` picks the backend for a model name or file.
This module imports no torch.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import ConfigError
from .modelconfig import TASK, SpectrogramModelConfig, WaveformModelConfig

BACKENDS = ("auto", "torch", "onnx")
SPECTROGRAM, WAVEFORM = "spectrogram", "waveform"
TORCH_MISSING = 'the torch backend needs PyTorch: pip install "vocalsep[torch]"'
ONNX_MISSING = 'the onnx backend needs onnxruntime: pip install "vocalsep[onnx]"'


@dataclass(frozen=True)
class NetworkMember:
    """One network: its model config, its weight in an ensemble, and `run`, numpy float32 in
    and out: a spectrogram model's magnitudes `(batch, audio_channels, band_bins, frames)` ->
    masks `(batch, targets, audio_channels, band_bins, frames)`; a waveform model's mixture
    `(batch, audio_channels, samples)` -> stems `(batch, targets, audio_channels, samples)`."""

    config: SpectrogramModelConfig | WaveformModelConfig
    weight: float
    run: Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class SeparationNetwork:
    """What the `Separator` separates with.

    kind:    "spectrogram" (masking models, one member or an ensemble) or "waveform".
    config:  the first member's config (its rate, targets, STFT: the output STFT of an
             ensemble).
    context, unit: a waveform network's receptive field (samples seen on each side) and the
             grid its input must start on (its shift); unused for spectrogram models.
    backend: "torch" or "onnx"; `module` the torch model (None for onnx).
    """

    kind: str
    members: tuple[NetworkMember, ...]
    backend: str
    context: int = 0
    unit: int = 1
    module: Any = None
    metadata: dict = field(default_factory=dict)

    @property
    def config(self) -> SpectrogramModelConfig | WaveformModelConfig:
        return self.members[0].config


def has_module(name: str) -> bool:
    """Whether `name` can be imported (without importing it)."""
    return importlib.util.find_spec(name) is not None


def from_torch(model, device: Any = "cpu") -> SeparationNetwork:
    """Wrap a torch `SpectrogramMaskModel`, `SpectrogramEnsemble` or `WaveformModel` (moved to
    `device` and put in eval mode) as numpy functions."""
    import torch

    from ..core.device import select_device
    from .models import SpectrogramEnsemble, SpectrogramMaskModel, WaveformModel

    device = select_device(device)
    model = model.to(device).eval()

    def runner(module: torch.nn.Module) -> Callable[[np.ndarray], np.ndarray]:
        @torch.inference_mode()
        def run(inputs: np.ndarray) -> np.ndarray:
            return module(torch.from_numpy(inputs).to(device)).float().cpu().numpy()

        return run

    if isinstance(model, SpectrogramEnsemble):
        members = [
            NetworkMember(member.config, weight, runner(member))
            for member, weight in zip(model.members, model.weights, strict=True)
        ]
        return SeparationNetwork(SPECTROGRAM, tuple(members), "torch", module=model)
    if isinstance(model, SpectrogramMaskModel):
        member = NetworkMember(model.config, 1.0, runner(model))
        return SeparationNetwork(SPECTROGRAM, (member,), "torch", module=model)
    if isinstance(model, WaveformModel):
        unit = int(getattr(model.network_config, "shift_multiple", 1))
        member = NetworkMember(model.config, 1.0, runner(model))
        return SeparationNetwork(
            WAVEFORM, (member,), "torch", context=model.context, unit=unit, module=model
        )
    raise ConfigError(f"cannot separate with a {type(model).__name__}")


def choose_backend(backend: str, onnx_file: Path | None, device: str = "auto") -> str:
    """ "torch" or "onnx" for a model with (or without) an ONNX file. "auto": onnx when
    onnxruntime is installed, the model has an ONNX file and no device other than the CPU was
    asked for; otherwise torch. A backend that cannot run is a `ConfigError` naming the fix."""
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    cpu = str(device) in ("auto", "cpu")
    if backend == "auto":
        if onnx_file is not None and cpu and has_module("onnxruntime"):
            backend = "onnx"
        elif has_module("torch"):
            backend = "torch"
        elif onnx_file is None:
            raise ConfigError(f"this model is a torch checkpoint; {TORCH_MISSING}")
        else:
            raise ConfigError(
                f'{ONNX_MISSING} (or the torch backend: pip install "vocalsep[torch]")'
            )
    if backend == "onnx":
        if onnx_file is None:
            raise ConfigError(
                "this model has no ONNX file; export one with `vocalsep export MODEL OUT.onnx` "
                "or use the torch backend"
            )
        if not cpu:
            raise ConfigError(f"the onnx backend runs on the CPU; use --backend torch for {device}")
        if not has_module("onnxruntime"):
            raise ConfigError(ONNX_MISSING)
    elif not has_module("torch"):
        raise ConfigError(TORCH_MISSING)
    return backend


def load_network(
    name_or_path: str | os.PathLike | None = None,
    *,
    backend: str = "auto",
    device: Any = "auto",
    threads: int | None = None,
) -> SeparationNetwork:
    """The network of a shipped model name, a checkpoint or ONNX file, or (None) the default
    model, on the backend `choose_backend` picks. `threads` (default: all cores) bounds the
    threads the network runs on."""
    from ..pretrained import resolve_files

    if threads is not None and threads < 1:
        raise ConfigError(f"threads must be >= 1, got {threads}")
    checkpoint, onnx_file = resolve_files(name_or_path, TASK)
    backend = choose_backend(backend, onnx_file, str(device))
    if backend == "onnx":
        from .onnx_model import load_onnx_model

        return load_onnx_model(onnx_file, threads=threads)
    if checkpoint is None:
        raise ConfigError(f"{onnx_file} is an ONNX file: separate it with --backend onnx")
    import torch

    from .models import load_model

    if threads:
        torch.set_num_threads(int(threads))
    return from_torch(load_model(checkpoint), device)
