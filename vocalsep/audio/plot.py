"""A picture of a separation: the spectrograms of the mixture and of each stem, one PNG.

The spectrograms are gathered while the song streams through the separator (`Sketch`), in
bounded memory whatever the song's length: at most `MAX_COLUMNS` time columns are kept, and a
long song's frames are averaged in groups of 2, 4, 8, ... frames (power, so loudness is kept).
Drawing uses librosa's `specshow` (log frequency axis, time in seconds) on matplotlib, the
optional `plot` extra (`pip install "vocalsep[plot]"`); nothing is imported until a picture is
asked for.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..core.errors import ConfigError
from ..core.files import atomic_file
from .stft import STFT, STFTConfig

MAX_COLUMNS = 2048
RANGE_DB = 80.0
INSTALL_PLOT = 'pip install "vocalsep[plot]" (matplotlib and librosa)'


def check_plotting() -> None:
    """Raise `ConfigError` with the install line when matplotlib or librosa is missing."""
    import importlib.util

    missing = [name for name in ("matplotlib", "librosa") if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(f"drawing spectrograms needs {' and '.join(missing)}: {INSTALL_PLOT}")


class Sketch:
    """The power spectrogram of a stream of `(channels, n)` blocks, channels averaged, on the
    package's STFT (about 46 ms windows, a quarter of that as hop), kept to `max_columns`
    columns by averaging neighbouring frames in groups of `group` (a power of two)."""

    def __init__(self, sample_rate: int, max_columns: int = MAX_COLUMNS) -> None:
        n_fft = 2 ** max(8, round(math.log2(0.0464 * sample_rate)))
        self.sample_rate = sample_rate
        self.stft = STFT(STFTConfig(n_fft=n_fft, hop_length=n_fft // 4))
        self.max_columns = max_columns
        self.group = 1
        self._columns: list[np.ndarray] = []  # (bins,) averages of `group` frames each
        self._partial: list[np.ndarray] = []  # frames of the column being filled
        # Samples not yet analysed, starting at a frame's left edge; the song is padded with
        # half a window of zeros at both ends, as the centred STFT does.
        self._buffer = np.zeros(n_fft // 2, np.float32)
        self.samples = 0

    @property
    def hop_length(self) -> int:
        return self.stft.config.hop_length

    def add(self, block: np.ndarray) -> None:
        """Append `(channels, n)` samples."""
        mono = np.asarray(block, np.float32).mean(axis=0)
        self.samples += mono.shape[-1]
        self._buffer = np.concatenate([self._buffer, mono])
        self._analyse()

    def finish(self) -> np.ndarray:
        """The power spectrogram `(bins, columns)` of everything added."""
        n_fft = self.stft.config.n_fft
        self._buffer = np.concatenate([self._buffer, np.zeros(n_fft // 2, np.float32)])
        self._analyse()
        if self._partial:
            self._columns.append(np.mean(self._partial, axis=0))
            self._partial = []
        if not self._columns:
            return np.zeros((self.stft.n_bins, 0), np.float32)
        return np.stack(self._columns, axis=1)

    def _analyse(self) -> None:
        """Frames whose whole window is in the buffer; the rest stays for the next block."""
        n_fft, hop = self.stft.config.n_fft, self.hop_length
        frames = (self._buffer.shape[-1] - n_fft) // hop + 1
        if frames < 1:
            return
        used = (frames - 1) * hop + n_fft
        # The centred STFT of the buffer: frame k is centred on sample k * hop, so frames
        # lead .. lead + frames - 1 (lead = half a window in hops) lie wholly inside it.
        lead = n_fft // 2 // hop
        spectrum = self.stft(np.ascontiguousarray(self._buffer[:used]))
        power = np.square(np.abs(spectrum[:, lead : lead + frames])).T  # (frames, bins)
        self._buffer = self._buffer[frames * hop :]
        for frame in power:
            self._partial.append(frame)
            if len(self._partial) == self.group:
                self._columns.append(np.mean(self._partial, axis=0))
                self._partial = []
        if len(self._columns) > self.max_columns:  # twice as coarse in time from here on
            pairs = [
                np.mean(self._columns[i : i + 2], axis=0) for i in range(0, len(self._columns), 2)
            ]
            self._columns = pairs
            self.group *= 2


def draw(
    path: str | os.PathLike,
    sketches: Mapping[str, Sketch],
    *,
    title: str = "",
    overwrite: bool = False,
) -> Path:
    """Write one PNG with a panel per sketch (top to bottom, e.g. mixture, vocals,
    accompaniment): log frequency, dB on one colour scale for all panels (0 dB = the loudest
    column-bin of the first panel), time in seconds. Atomic: a temporary file renamed into
    place; an existing `path` is kept unless `overwrite`."""
    check_plotting()
    from librosa.display import specshow
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    powers = {name: sketch.finish() for name, sketch in sketches.items()}
    reference = max(float(next(iter(powers.values())).max(initial=0.0)), 1e-20)
    figure = Figure(figsize=(12, 2.6 * len(powers) + 0.6), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(powers), 1, sharex=True, squeeze=False)[:, 0]
    image = None
    for ax, (name, power) in zip(axes, powers.items(), strict=True):
        sketch = sketches[name]
        decibels = 10 * np.log10(np.maximum(power, reference * 1e-12) / reference)
        image = specshow(
            decibels,
            sr=sketch.sample_rate,
            hop_length=sketch.hop_length * sketch.group,
            n_fft=sketch.stft.config.n_fft,
            x_axis="time",
            y_axis="log",
            vmin=-RANGE_DB,
            vmax=0.0,
            cmap="magma",
            ax=ax,
        )
        ax.set_title(name, loc="left")
        ax.set_xlabel("time (s)")
        ax.set_ylabel("frequency (Hz)")
        ax.label_outer()
    figure.colorbar(image, ax=list(axes), format="%+.0f dB", pad=0.01)
    if title:
        figure.suptitle(title)
    with atomic_file(path, overwrite=overwrite) as temp:
        figure.savefig(temp, format="png", dpi=100)
    return path
