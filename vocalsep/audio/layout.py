"""Waveforms as callers hand them in: numpy or torch, `(channels, samples)`, `(samples,
channels)` (as `soundfile.read` returns them) or `(samples,)`, float or integer PCM.

`channels_first` turns any of these into the float32 `(channels, samples)` array the rest of the
package works with, and remembers how to give results back in the caller's layout and type.
The layout is told apart by shape alone, before any large allocation: the channel axis is the
shorter one and holds 1 to `MAX_CHANNELS` channels; a square array is `(channels, samples)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.arrays import is_torch
from .errors import InvalidAudioError

MAX_CHANNELS = 64  # 7.1.4 is 12, third-order ambisonics 16: 64 leaves room and stays cheap
ACCEPTED = (
    f"(channels, samples), (samples, channels) with at most {MAX_CHANNELS} channels, or (samples,)"
)


@dataclass(frozen=True)
class Layout:
    """How a caller's waveform was laid out, to hand results back the same way."""

    mono: bool  # the caller gave `(samples,)`
    channels_last: bool  # the caller gave `(samples, channels)`
    device: Any  # a torch tensor's device; None for numpy

    def restore(self, audio: np.ndarray) -> Any:
        """`(channels, samples)` float32 -> the caller's layout and array type."""
        if self.mono:
            audio = audio[0]
        elif self.channels_last:
            audio = audio.T
        audio = np.ascontiguousarray(audio)
        if self.device is None:
            return audio
        import torch  # the caller gave a torch tensor, so torch is there

        return torch.from_numpy(audio).to(self.device)


def like(array: np.ndarray, reference: Any) -> Any:
    """`array` as a torch tensor (on the CPU) when `reference` is one, else as it is."""
    if not is_torch(reference):
        return array
    import torch

    return torch.from_numpy(np.ascontiguousarray(array))


def channels_first(waveform, source: str = "waveform") -> tuple[np.ndarray, Layout]:
    """A waveform in any accepted layout -> float32 `(channels, samples)` and its `Layout`.

    Integer PCM (int16, int32, uint8 as written by `soundfile.read(..., dtype=...)` or
    `scipy.io.wavfile`) is scaled to [-1, 1). Anything else is an `InvalidAudioError` (a
    `ValueError`) that names the shape it got and the shapes it takes.
    """
    device = waveform.device if is_torch(waveform) else None
    if device is not None:
        waveform = waveform.detach().cpu().numpy()
    shape = tuple(np.shape(waveform))
    rows, columns = (shape + (0, 0))[:2]
    if len(shape) == 1:
        layout = Layout(mono=True, channels_last=False, device=device)
    elif len(shape) == 2 and 1 <= rows <= MAX_CHANNELS and (rows <= columns or columns == 0):
        layout = Layout(mono=False, channels_last=False, device=device)
    elif len(shape) == 2 and 1 <= columns <= MAX_CHANNELS and (columns < rows or rows == 0):
        layout = Layout(mono=False, channels_last=True, device=device)
    else:
        raise InvalidAudioError(f"{source} has shape {shape}; give {ACCEPTED}")
    audio = np.asarray(waveform)
    if audio.dtype.kind not in "fiu":
        raise InvalidAudioError(f"{source} holds {audio.dtype} values; give float or integer PCM")
    audio = _as_float(audio)
    if layout.mono:
        audio = audio[None]
    elif layout.channels_last:
        audio = audio.T
    return np.ascontiguousarray(audio), layout


def _as_float(audio: np.ndarray) -> np.ndarray:
    """float32 samples; integer PCM scaled by its full range (uint8 is offset binary)."""
    if audio.dtype.kind == "f":
        return audio.astype(np.float32, copy=False)
    bits = 8 * audio.dtype.itemsize
    if audio.dtype.kind == "u":
        return (audio.astype(np.float64) - 2 ** (bits - 1)).astype(np.float32) / 2 ** (bits - 1)
    return (audio.astype(np.float64) / 2 ** (bits - 1)).astype(np.float32)
