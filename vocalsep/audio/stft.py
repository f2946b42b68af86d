"""The one STFT / inverse STFT of vocalsep (Hann window), for numpy arrays and torch tensors.

One definition serves both kinds of array, and each call returns the kind it was given. Torch
tensors (training: any device, differentiable) go through `torch.stft` / `torch.istft`; numpy
arrays (inference without torch) through `numpy.fft` with the same frames, window and
normalisation, equal to the torch result to float precision. Importing this module does not
import torch, and neither does the numpy path (a tensor can only come from a program that has
imported torch already).

Frames are centred (the signal is zero-padded by fft_length // 2 on both sides), so any length
from one sample up works and `inverse(forward(x), len(x))` reproduces `x` to float precision for
any hop up to n_fft / 2.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, TypeVar

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..core.arrays import is_torch
from ..core.config import Config
from ..core.cpu import cores
from ..core.errors import ConfigError

if TYPE_CHECKING:
    import torch

# A numpy array or a torch tensor: `STFT` returns the kind it is given.
Signal = TypeVar("Signal", np.ndarray, "torch.Tensor")

# Samples per block of frames in the numpy path (1 MiB of float32).
_BLOCK_SAMPLES = 2**18
# torch.istft refuses a window envelope below this; the numpy path gives zeros there instead.
_ENVELOPE_FLOOR = 1e-11


@dataclass(frozen=True)
class STFTConfig(Config):
    n_fft: int = 4096
    hop_length: int = 1024
    window: str = "hann"

    def __post_init__(self) -> None:
        if self.n_fft < 2:
            raise ConfigError(f"n_fft must be >= 2, got {self.n_fft}")
        if not 1 <= self.hop_length <= self.n_fft // 2:
            raise ConfigError(
                f"hop_length must be in [1, n_fft/2] for perfect reconstruction, "
                f"got {self.hop_length} with n_fft {self.n_fft}"
            )
        if self.window != "hann":
            raise ConfigError(f"unknown STFT window {self.window!r} (known: hann)")

    @property
    def n_bins(self) -> int:
        return self.n_fft // 2 + 1

    def num_frames(self, length: int) -> int:
        """Frames of a `length`-sample signal: `length // hop + 1` for an even n_fft (an odd
        one pads n_fft // 2 < n_fft / 2 on each side, so a frame fits one sample later)."""
        return (length - self.n_fft % 2) // self.hop_length + 1

    def scaled(self, factor: float) -> STFTConfig:
        """The same analysis in seconds at a sample rate `factor` times higher."""
        n_fft = max(2, round(self.n_fft * factor))
        hop = min(max(1, round(self.hop_length * factor)), n_fft // 2)
        return STFTConfig(n_fft=n_fft, hop_length=hop, window=self.window)


def fast_fft_length(n: int) -> int:
    """The smallest even length >= `n` whose only prime factors are 2, 3 and 5: an FFT of that
    length runs fast (a length such as 2822 = 2 * 17 * 83 takes about half as long again).
    For an even `n` (the only case `STFT` accepts for a longer FFT) it differs by an even number."""
    length = max(2, n + n % 2)
    while True:
        rest = length
        for prime in (2, 3, 5):
            while rest % prime == 0:
                rest //= prime
        if rest == 1:
            return length
        length += 2


def _overlap_add(total: np.ndarray, frames: np.ndarray, first: int, hop: int) -> None:
    """Add `frames` `(..., count, frame_length)`, frames `first`.. of a signal, into `total`
    `(..., slots, hop)` (the signal cut into hops; frame i starts at slot i): ceil(frame_length /
    hop) vectorised adds, each of one hop-wide slice of every frame (the last may be narrower)."""
    count, frame_length = frames.shape[-2:]
    for index in range(-(-frame_length // hop)):
        start = index * hop
        width = min(hop, frame_length - start)
        slots = slice(first + index, first + index + count)
        total[..., slots, :width] += frames[..., start : start + width]


@cache
def _pool(workers: int) -> ThreadPoolExecutor:
    """A thread pool for the numpy path's blocks (numpy's FFT releases the GIL)."""
    return ThreadPoolExecutor(workers, thread_name_prefix="vocalsep-stft")


def _frame_blocks(shape: tuple[int, ...], frame_length: int) -> list[slice]:
    """Blocks of the frame axis of `shape` (`(..., frames)`), each about `_BLOCK_SAMPLES`
    samples across the leading axes: the numpy path transforms one block at a time so that its
    temporaries stay in cache (faster and steadier than temporaries of the whole signal)."""
    rows = max(1, math.prod(shape[:-1]))
    step = max(1, _BLOCK_SAMPLES // (rows * frame_length))
    return [slice(first, first + step) for first in range(0, shape[-1], step)]


class STFT:
    """Complex STFT and its inverse for `STFTConfig`, on numpy arrays or torch tensors.

    `fft_length` (default `n_fft`) is the FFT size: a longer FFT zero-pads each `n_fft`-sample
    windowed frame, which gives the same analysis on a finer grid of `fft_length // 2 + 1` bins
    (the window, hop and frames are unchanged, and the inverse is still exact).

    Frame t is the `fft_length` samples from sample `t * hop - fft_length // 2` of the signal
    (taken as zero before its start and past its end), weighted by a periodic Hann window of
    `n_fft` samples centred in it; the inverse overlap-adds the windowed inverse FFTs and divides
    by the overlap-added squared window (the least-squares inverse that `torch.istft` computes)."""

    def __init__(
        self, config: STFTConfig, fft_length: int | None = None, *, threads: int | None = None
    ) -> None:
        self.config = config
        self.fft_length = fft_length or config.n_fft
        self.threads = threads  # the numpy path's threads (None: one per core)
        if self.fft_length < config.n_fft:
            raise ConfigError(f"fft_length {self.fft_length} is shorter than n_fft {config.n_fft}")
        if (self.fft_length - config.n_fft) % 2:
            # torch centres the window in the longer frame: an odd difference would move every
            # frame by half a sample
            raise ConfigError(
                f"fft_length {self.fft_length} and n_fft {config.n_fft} must differ by an even "
                "number"
            )

    @property
    def n_bins(self) -> int:
        return self.fft_length // 2 + 1

    def window(self, dtype: np.dtype | type = np.float64) -> np.ndarray:
        """`(fft_length,)`: the periodic Hann window of n_fft samples (`torch.hann_window`),
        centred in a frame of fft_length with zeros either side."""
        n_fft = self.config.n_fft
        offset = (self.fft_length - n_fft) // 2
        window = np.zeros(self.fft_length)
        window[offset : offset + n_fft] = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
        return window.astype(dtype)

    def forward(self, waveform: Signal) -> Signal:
        """`(..., samples)` real -> `(..., self.n_bins, frames)` complex, of the same kind
        (numpy or torch); float32 gives complex64, float64 complex128."""
        if is_torch(waveform):
            return self._forward_torch(waveform)
        return self._forward_numpy(np.asarray(waveform))

    __call__ = forward

    def inverse(self, spectrum: Signal, length: int, mask: Signal | None = None) -> Signal:
        """`(..., self.n_bins, frames)` complex -> `(..., length)` real, of the same kind.

        With `mask` (real, broadcastable against `spectrum`) the inverse of `mask * spectrum`:
        the numpy path multiplies frame block by frame block on its threads, which saves the
        product of the whole arrays (a pass over memory, on one core).

        A `length` past the frames' span is padded with zeros. Where the summed squared window
        is below 1e-11 (the zero or near-zero tail of the last frame's window) the numpy path
        gives zeros and torch.istft refuses the length."""
        if is_torch(spectrum):
            return self._inverse_torch(spectrum if mask is None else mask * spectrum, length)
        return self._inverse_numpy(np.asarray(spectrum), length, mask)

    def _forward_numpy(self, waveform: np.ndarray) -> np.ndarray:
        real = np.result_type(waveform.dtype, np.float32)  # float32 stays float32
        half = self.fft_length // 2
        padding = [(0, 0)] * (waveform.ndim - 1) + [(half, half)]
        padded = np.pad(waveform.astype(real, copy=False), padding)  # (..., samples + 2 half)
        frames = sliding_window_view(padded, self.fft_length, axis=-1)
        frames = frames[..., :: self.config.hop_length, :]  # (..., frames, fft_length), a view
        window = self.window(real)
        *lead, count, _ = frames.shape
        spectrum = np.empty((*lead, self.n_bins, count), np.result_type(real, np.complex64))

        def transform(block: slice) -> None:  # blocks write disjoint frames: no lock needed
            block_spectrum = np.fft.rfft(frames[..., block, :] * window, axis=-1)
            spectrum[..., block] = np.swapaxes(block_spectrum, -1, -2)

        self._map(transform, _frame_blocks(frames.shape[:-1], self.fft_length))
        return spectrum  # (..., bins, frames), contiguous

    def _map(self, fn: Callable[[slice], object], blocks: Sequence[slice]) -> list:
        """`fn` of every block, on up to `threads` threads."""
        workers = min(self.threads or cores(), len(blocks))
        if workers <= 1:
            return [fn(block) for block in blocks]
        return list(_pool(workers).map(fn, blocks))

    def _inverse_numpy(
        self, spectrum: np.ndarray, length: int, mask: np.ndarray | None = None
    ) -> np.ndarray:
        real = np.finfo(np.result_type(spectrum.dtype, np.complex64)).dtype
        hop, fft_length = self.config.hop_length, self.fft_length
        window = self.window(real)
        *lead, _, count = spectrum.shape
        if mask is not None:
            lead = list(np.broadcast_shapes(spectrum.shape, mask.shape)[:-2])
        reach = -(-fft_length // hop)  # hops that one frame spans
        slots = count - 1 + reach  # hops that the frames reach into

        def synthesise(block: slice) -> np.ndarray:  # (..., frames in block + reach - 1, hop)
            part = spectrum[..., block] if mask is None else spectrum[..., block] * mask[..., block]
            frames = np.fft.irfft(np.swapaxes(part, -1, -2), fft_length, axis=-1)
            frames = frames.astype(real, copy=False) * window
            added = np.zeros((*frames.shape[:-2], frames.shape[-2] + reach - 1, hop), real)
            _overlap_add(added, frames, 0, hop)  # on the block's own thread
            return added

        total = np.zeros((*lead, slots, hop), real)
        blocks = _frame_blocks((*lead, count), fft_length)
        for block, added in zip(blocks, self._map(synthesise, blocks), strict=True):
            # in order: neighbouring blocks overlap by reach - 1 hops
            total[..., block.start : block.start + added.shape[-2], :] += added
        envelope = np.zeros((slots, hop), real)  # the overlap-added squared window
        _overlap_add(envelope, np.broadcast_to(window**2, (count, fft_length)), 0, hop)
        start = fft_length // 2  # the centre padding of the forward transform
        stop = min(start + length, fft_length + hop * (count - 1))
        signal = total.reshape(*lead, -1)[..., start:stop]
        envelope = envelope.reshape(-1)[start:stop]
        waveform = np.zeros((*lead, length), real)
        np.divide(
            signal, envelope, out=waveform[..., : stop - start], where=envelope > _ENVELOPE_FLOOR
        )
        return waveform

    def _torch_window(self, reference: torch.Tensor) -> torch.Tensor:
        import torch

        dtype = reference.real.dtype if reference.is_complex() else reference.dtype
        return torch.hann_window(self.config.n_fft, dtype=dtype, device=reference.device)

    def _forward_torch(self, waveform: torch.Tensor) -> torch.Tensor:
        import torch

        lead = waveform.shape[:-1]
        flat = waveform.reshape(-1, waveform.shape[-1])
        spectrum = torch.stft(
            flat,
            n_fft=self.fft_length,
            hop_length=self.config.hop_length,
            win_length=self.config.n_fft,
            window=self._torch_window(flat),
            center=True,
            pad_mode="constant",
            return_complex=True,
        )
        return spectrum.reshape(*lead, *spectrum.shape[-2:])

    def _inverse_torch(self, spectrum: torch.Tensor, length: int) -> torch.Tensor:
        import torch

        lead = spectrum.shape[:-2]
        flat = spectrum.reshape(-1, *spectrum.shape[-2:])
        waveform = torch.istft(
            flat,
            n_fft=self.fft_length,
            hop_length=self.config.hop_length,
            win_length=self.config.n_fft,
            window=self._torch_window(flat),
            center=True,
            length=length,
        )
        return waveform.reshape(*lead, length)
