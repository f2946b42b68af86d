"""The one STFT / inverse STFT of vocalsep (torch.stft, Hann window).

Frames are centred (the signal is zero-padded by n_fft // 2 on both sides), so any length from
one sample up works and `inverse(forward(x), len(x))` reproduces `x` to float precision for any
hop up to n_fft / 2.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..core.config import Config
from ..core.errors import ConfigError


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
        return length // self.hop_length + 1

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


class STFT:
    """Complex STFT and its inverse for `STFTConfig`.

    `fft_length` (default `n_fft`) is the FFT size: a longer FFT zero-pads each `n_fft`-sample
    windowed frame, which gives the same analysis on a finer grid of `fft_length // 2 + 1` bins
    (the window, hop and frames are unchanged, and the inverse is still exact)."""

    def __init__(self, config: STFTConfig, fft_length: int | None = None) -> None:
        self.config = config
        self.fft_length = fft_length or config.n_fft
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

    def _window(self, reference: torch.Tensor) -> torch.Tensor:
        dtype = reference.real.dtype if reference.is_complex() else reference.dtype
        return torch.hann_window(self.config.n_fft, dtype=dtype, device=reference.device)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        """`(..., samples)` real -> `(..., self.n_bins, frames)` complex."""
        lead = waveform.shape[:-1]
        flat = waveform.reshape(-1, waveform.shape[-1])
        spectrum = torch.stft(
            flat,
            n_fft=self.fft_length,
            hop_length=self.config.hop_length,
            win_length=self.config.n_fft,
            window=self._window(flat),
            center=True,
            pad_mode="constant",
            return_complex=True,
        )
        return spectrum.reshape(*lead, *spectrum.shape[-2:])

    __call__ = forward

    def inverse(self, spectrum: torch.Tensor, length: int) -> torch.Tensor:
        """`(..., self.n_bins, frames)` complex -> `(..., length)` real."""
        lead = spectrum.shape[:-2]
        flat = spectrum.reshape(-1, *spectrum.shape[-2:])
        waveform = torch.istft(
            flat,
            n_fft=self.fft_length,
            hop_length=self.config.hop_length,
            win_length=self.config.n_fft,
            window=self._window(flat),
            center=True,
            length=length,
        )
        return waveform.reshape(*lead, length)
