"""The Separator: reads, resamples, chunks and writes; a model kind's `Estimator` separates
each chunk (`masking.SpectrogramEstimator`: waveform -> STFT -> network masks -> masked STFT
-> iSTFT; `waveform.WaveformEstimator`: waveform -> network -> stems).

Long inputs are processed as a stream of time-domain chunks (`StreamingOverlapAdd`), so memory
does not grow with the length of the song. Inside a chunk the network runs on magnitude tiles
over frames (`overlap_add`). The frames and the tiles of every chunk lie on the song's own
grids (tiles start at multiples of the tile step of the song's frame index), and each chunk
sees a whole tile, the STFT window and the resampler's filter on both sides, so every frame of
a chunk's output comes from the same tiles as in one pass: the result does not depend on
`chunk_seconds` (exactly at the model's rate; at other rates up to the resampler's precision),
so chunks are butted, not cross-faded (a cross-fade would compute the overlap twice for
nothing). Only where the rates are too incommensurable to align chunks on whole model samples
do they overlap by 1 s and cross-fade. A waveform model is tiled over samples with its
receptive field as context and gives the same result chunked as in one pass too.

The masks are applied at the *input's* sample rate: the mixture is resampled to the model's
rate only to estimate the masks, which are then interpolated (in Hz and seconds) onto an STFT
of the original signal with the same frame duration. Above the band the network sees (its
`max_bin`, or the model's Nyquist frequency), the mask is extended, so the output is always
full-band and, when the rates agree, no interpolation happens at all.

A waveform model sees the mixture resampled to its rate, tiled over samples with its
receptive field as context (so tiles join exactly), and its estimates are resampled back. It
cannot hear above its Nyquist frequency: there its estimated stems are silent and the residual
stem (the accompaniment, `mixture - vocals` at the input's rate) keeps all of the mixture, so
the output is full-band too and the stems still sum to the input exactly.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

import numpy as np

from ..core.arrays import is_torch
from ..core.errors import ConfigError
from ..core.tiling import StreamingOverlapAdd, TilePlan
from .backends import SPECTROGRAM, WAVEFORM, SeparationNetwork, from_torch, load_network
from .errors import InvalidAudioError
from .io import check_audio, resample
from .layout import channels_first, like
from .masking import SpectrogramEstimator
from .stft import STFT
from .waveform import WaveformEstimator

ProgressFn = Callable[[int, "int | None"], None]
ACCOMPANIMENT = "accompaniment"


class Estimator(Protocol):
    """What the Separator needs of a model kind: how it separates one chunk of a song.

    `config` is the model's (its `sample_rate` and `targets`); `difference` says the last
    target is the mixture minus the others (computed here at the input's rate);
    `resampler_passes` how often the audio goes through the resampler (its filter needs
    context); `unit` the grid, in model samples, that chunks must start on; `context()` the
    model samples a chunk must see on both sides for chunks to give the one-pass output;
    `estimate(chunk, sample_rate, start, context)` the target estimates `(targets, channels,
    samples - 2 context)` of a chunk `(channels, samples)` that starts at sample `start` of the
    song, without its first and last `context` samples (seen, not estimated)."""

    config: Any
    difference: bool
    resampler_passes: int
    unit: int

    def min_samples(self, sample_rate: int) -> int: ...

    def context(self) -> int: ...

    def estimate(
        self, chunk: np.ndarray, sample_rate: int, start: int, context: int
    ) -> np.ndarray: ...


# Network kind -> how to build its estimator: a new model kind registers one here.
ESTIMATORS: dict[str, Callable[..., Estimator]] = {
    SPECTROGRAM: SpectrogramEstimator,
    WAVEFORM: WaveformEstimator,
}


def estimator(
    network: SeparationNetwork, tile_batch: int, wiener_iterations: int, threads: int | None
) -> Estimator:
    """The estimator of `network`'s kind."""
    if network.kind not in ESTIMATORS:
        raise ConfigError(f"no estimator for a {network.kind} model; register one in ESTIMATORS")
    return ESTIMATORS[network.kind](network, tile_batch, wiener_iterations, threads)


def _align(samples: int, unit: int) -> int:
    """`samples` rounded up to a multiple of `unit`."""
    return math.ceil(samples / unit) * unit


class Separator:
    """Separate songs into `stems` with a spectrogram masking model or a waveform model.

    `model` is a torch model (`SpectrogramMaskModel`, `SpectrogramEnsemble`, `WaveformModel`,
    run on `device`) or a `SeparationNetwork` (what `load_network` gives for either backend:
    `from_pretrained(..., backend="onnx")` runs the network in onnxruntime, without torch).
    Everything around the network runs in numpy, the same for every backend.

    Stems are the model's targets plus "accompaniment", which by default is
    `mixture - sum(other stems)` so that the stems sum to the input exactly. A waveform model
    with a "difference" output gives exactly its targets, the last being
    `mixture - sum(other stems)` at the input's rate. The Wiener post-filter needs spectrogram
    masks: asking for it with a waveform model is a `ConfigError`.

    A `SpectrogramEnsemble` is separated like one model: each member computes its masks from
    its own STFT of the (resampled) song, the masks are mapped onto the output STFT (the first
    member's) and averaged with the ensemble's weights, and one iSTFT gives the stems.

    The network runs on up to `tile_batch` tiles per call: the same result (to float rounding)
    as one tile at a time, in about 10% less time for a song on a 2-core CPU, for a little more
    memory.
    """

    def __init__(
        self,
        model: Any,
        *,
        device: Any = "cpu",
        chunk_seconds: float = 15.0,
        overlap_seconds: float | None = None,
        residual_accompaniment: bool = True,
        wiener_iterations: int = 0,
        tile_batch: int = 8,
        threads: int | None = None,
    ) -> None:
        if chunk_seconds <= 0 or not 0 <= (overlap_seconds or 0) < chunk_seconds:
            raise ValueError("need chunk_seconds > 0 and 0 <= overlap_seconds < chunk_seconds")
        if wiener_iterations < 0:
            raise ValueError("wiener_iterations must be >= 0")
        if tile_batch < 1:
            raise ValueError("tile_batch must be >= 1")
        self.tile_batch = int(tile_batch)
        self.wiener_iterations = int(wiener_iterations)
        self.network = model if isinstance(model, SeparationNetwork) else from_torch(model, device)
        self.config = self.network.config
        self.chunk_seconds = chunk_seconds
        self.overlap_seconds = overlap_seconds
        self.residual_accompaniment = (
            residual_accompaniment or ACCOMPANIMENT not in self.config.targets
        )
        self._estimator = estimator(self.network, self.tile_batch, wiener_iterations, threads)

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike | None = None,
        *,
        backend: str = "auto",
        device: Any = "auto",
        threads: int | None = None,
        **kwargs,
    ) -> Separator:
        """Load a shipped model by name, a checkpoint or ONNX file by path, or (None) the
        default model. `backend` "auto" runs a model that has an ONNX file in onnxruntime when
        it is installed (and `device` is the CPU), otherwise in torch; "torch" or "onnx" ask
        for one (a `ConfigError` names the extra to install when it is missing). `threads`
        bounds the network's threads (default: all cores)."""
        network = load_network(name_or_path, backend=backend, device=device, threads=threads)
        return cls(network, threads=threads, **kwargs)

    @property
    def model(self) -> Any:
        """The torch model (torch backend), or the `SeparationNetwork` (onnx backend)."""
        return self.network.module if self.network.module is not None else self.network

    @property
    def backend(self) -> str:
        return self.network.backend

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def stems(self) -> list[str]:
        extra = ACCOMPANIMENT in self.config.targets or self._estimator.difference
        return [*self.config.targets, *([] if extra else [ACCOMPANIMENT])]

    @property
    def _residual_stem(self) -> str | None:
        """The stem computed as `mixture - sum(other stems)` at the input's rate, if any."""
        if self._estimator.difference:
            return self.config.targets[-1]
        return ACCOMPANIMENT if self.residual_accompaniment else None

    def min_samples(self, sample_rate: int) -> int:
        """Shortest input (at `sample_rate`) the model can separate: one full STFT frame of a
        spectrogram model, one sample of a waveform model."""
        return self._estimator.min_samples(sample_rate)

    # -- masks ---------------------------------------------------------------------------

    def predict_mask(self, spectrogram: Any) -> Any:
        """Full-band soft masks, one per stem, for a spectrogram at the model's STFT.

        spectrogram: numpy or torch, `(channels, bins, frames)` or `(batch, channels, bins,
        frames)` with `bins == model stft n_bins`, any channel count and number of frames: the
        complex STFT that `stft(waveform, sample_rate)` gives, or its magnitude (`abs`). An
        ensemble whose members use other STFTs needs the complex spectrogram (they analyse the
        waveform it holds).
        Returns `(stems, channels, bins, frames)` (or with the batch axis first), numpy or torch
        (on the CPU) like the input, in the order of `stems`. The residual stem (the
        accompaniment) gets `1 - ` the sum of the other masks, so the masks sum to one.
        `istft(mask * spectrogram)` of each stem is what `separate` gives at the model's rate
        (without the Wiener filter), but for the song's first and last frame tile, where
        `separate`'s network also hears the silence around the song.
        """
        spectral = self._spectral("predict_mask")
        magnitude = _numpy(spectrogram)
        unbatched = magnitude.ndim == 3
        if unbatched:
            magnitude = magnitude[None]
        if magnitude.ndim != 4 or magnitude.shape[2] != self.config.stft.n_bins:
            raise ValueError(
                f"spectrogram must be (channels, {self.config.stft.n_bins}, frames) or (batch, "
                f"channels, {self.config.stft.n_bins}, frames), got {tuple(magnitude.shape)}"
            )
        frames = magnitude.shape[-1]
        waveform = None

        def analyse(member_stft: STFT) -> tuple[np.ndarray, int]:
            nonlocal waveform
            if member_stft is spectral.stft:
                return magnitude, 0
            if not np.iscomplexobj(magnitude):
                raise ValueError(
                    "this model is an ensemble of models with different STFTs: give predict_mask "
                    "the complex spectrogram (the other members analyse the waveform it holds), "
                    "not magnitudes"
                )
            if waveform is None:
                hop = self.config.stft.hop_length
                waveform = spectral.stft.inverse(magnitude, (frames - 1) * hop)
            return member_stft(waveform), 0

        mask = spectral.masks(analyse, self.sample_rate, spectral.stft, frames, 0)
        masks = dict(zip(self.config.targets, np.moveaxis(mask, 1, 0), strict=True))
        residual = self._residual_stem
        if residual is not None:
            others = [value for name, value in masks.items() if name != residual]
            masks[residual] = 1 - sum(others, np.zeros_like(mask[:, 0]))
        mask = np.stack([masks[stem] for stem in self.stems], axis=1)
        return like(mask[0] if unbatched else mask, spectrogram)

    def _chunk_plan(self, sample_rate: int) -> TilePlan:
        """Time-domain chunking at `sample_rate`, such that a chunked song gives the same
        result as one pass (exactly at the model's rate, to the resampler's precision at
        others).

        Each chunk sees the context the model kind asks for (`Estimator.context`: a spectrogram
        model's frame tile, context and STFT window, a waveform model's receptive field) plus
        the resampler's filter on both sides, and starts on its grid (`Estimator.unit`: a
        whole sample of the model's rate, times a waveform network's stride)."""
        config = self.config
        ratio = sample_rate / config.sample_rate
        # The resampler's filter, each way, for every pass through it.
        margin = sample_rate // 100 * self._estimator.resampler_passes
        # Smallest shift that is a whole number of model samples after resampling, times the
        # model's own grid (a waveform network's stride).
        unit = sample_rate // math.gcd(config.sample_rate, sample_rate) * self._estimator.unit
        chunk = max(1, round(self.chunk_seconds * sample_rate))
        model_context = self._estimator.context()
        overlap_seconds = self.overlap_seconds
        if unit > chunk // 2:  # rates too incommensurable to align: close, but not exact
            unit = 1
            if overlap_seconds is None:  # hide the seams under a cross-fade
                overlap_seconds = min(1.0, self.chunk_seconds / 4)
        context = math.ceil(model_context * ratio) + margin
        chunk = _align(chunk, unit)
        overlap = min(_align(round((overlap_seconds or 0) * sample_rate), unit), chunk - unit)
        return TilePlan(chunk, overlap, _align(context, unit))

    def separate_blocks(
        self,
        blocks: Iterable[np.ndarray],
        sample_rate: int,
        *,
        total: int | None = None,
        progress: ProgressFn | None = None,
        source: str = "input",
    ) -> Iterator[dict[str, np.ndarray]]:
        """Stream-separate consecutive blocks `(channels, n)` at `sample_rate`.

        Yields dicts stem -> `(channels, m)` float32 blocks that together are exactly as long as
        the input; memory stays bounded by about one chunk. `progress(done, total)` is called
        as samples are finished. Raises `InvalidAudioError` for NaN/Inf or empty input.
        """
        if not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
            raise InvalidAudioError(f"{source}: sample rate must be a positive integer")
        plan = self._chunk_plan(int(sample_rate))
        stream = StreamingOverlapAdd(
            lambda chunk, start: self._estimator.estimate(
                chunk, int(sample_rate), start, plan.context
            ),
            plan,
            positions=True,
            cropped=True,
        )
        pending: list[np.ndarray] = []  # mixture samples not yet matched by output
        done = 0
        for block in blocks:
            block = np.asarray(block, dtype=np.float32)
            if block.ndim != 2 or block.shape[0] < 1:
                raise InvalidAudioError(f"{source}: audio must be (channels, samples)")
            check_audio(block, source)
            if block.shape[-1] == 0:
                continue
            pending.append(block)
            estimates = stream.push(block)
            if estimates is not None and estimates.shape[-1]:
                yield self._stems(estimates, pending)
                done += estimates.shape[-1]
                if progress:
                    progress(done, total)
        if not pending:
            raise InvalidAudioError(f"{source} contains no audio samples")
        estimates = stream.finish()
        if estimates is not None and estimates.shape[-1]:
            yield self._stems(estimates, pending)
            done += estimates.shape[-1]
            if progress:
                progress(done, total)

    def _stems(self, estimates: np.ndarray, pending: list[np.ndarray]) -> dict[str, np.ndarray]:
        """Name the target estimates `(targets, channels, n)` and add the residual stem, taking
        the matching `n` mixture samples off the front of `pending`."""
        length = estimates.shape[-1]
        mixture = np.concatenate(pending, axis=-1)
        pending[:] = [mixture[:, length:]] if mixture.shape[-1] > length else []
        mixture = mixture[:, :length]
        stems = {name: estimates[i] for i, name in enumerate(self.config.targets)}
        residual = self._residual_stem
        if residual is not None:
            others = [value for name, value in stems.items() if name != residual]
            stems[residual] = mixture - np.sum(others, axis=0)
        return stems

    def separate(self, waveform: Any, sample_rate: int) -> dict[str, Any]:
        """Separate an in-memory waveform.

        waveform: numpy or torch, `(channels, samples)`, `(samples, channels)` (as
        `soundfile.read` returns it) or `(samples,)`, float or integer PCM, any length >= 1, at
        any `sample_rate`. The layout is told apart by shape: the channel axis is the shorter
        one, with at most 64 channels; a square array is `(channels, samples)`. Anything else
        is a `ValueError` (`InvalidAudioError`) raised before any work.
        Returns stem -> float32 array in the caller's layout and type (a torch tensor on the
        input's device for a torch input).
        """
        audio, layout = channels_first(waveform)
        step = max(1, round(self.chunk_seconds * sample_rate))
        blocks = (audio[:, i : i + step] for i in range(0, audio.shape[-1], step))
        parts: dict[str, list[np.ndarray]] = {stem: [] for stem in self.stems}
        for stems in self.separate_blocks(blocks, sample_rate, source="waveform"):
            for name, value in stems.items():
                parts[name].append(value)
        return {
            name: layout.restore(np.concatenate(values, axis=-1)) for name, values in parts.items()
        }

    # -- the model's own spectrogram ---------------------------------------------------------

    def _spectral(self, what: str) -> SpectrogramEstimator:
        """The estimator, for the spectrogram-level API of spectrogram models."""
        if not isinstance(self._estimator, SpectrogramEstimator):
            raise ConfigError(
                f"{what} needs a spectrogram masking model; a waveform model predicts the stems "
                "themselves (use separate)"
            )
        return self._estimator

    def stft(self, waveform: Any, sample_rate: int) -> Any:
        """The model's input for `predict_mask`: the complex STFT `(channels, bins, frames)`
        of `waveform` (any layout `separate` takes) resampled to the model's rate, at the
        model's STFT (of the first member for an ensemble), numpy or torch (on the CPU) like
        the input. `istft` goes back."""
        spectral = self._spectral("stft")
        if not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
            raise InvalidAudioError(f"sample rate must be a positive integer, got {sample_rate!r}")
        audio, _ = channels_first(waveform)
        check_audio(audio, "waveform")
        audio = resample(audio, int(sample_rate), self.sample_rate)
        return like(spectral.stft(audio), waveform)

    def istft(
        self, spectrogram: Any, length: int | None = None, sample_rate: int | None = None
    ) -> Any:
        """A complex spectrogram `(..., bins, frames)` at the model's STFT (for example
        `masks[i] * separator.stft(waveform, rate)`) -> waveform `(..., samples)`: at the
        model's rate, or resampled to `sample_rate`; `length` samples at that rate (default:
        what the frames span). numpy or torch (on the CPU) like the input."""
        stft = self._spectral("istft").stft
        given, spectrogram = spectrogram, _numpy(spectrogram)
        if not np.iscomplexobj(spectrogram) or spectrogram.shape[-2] != stft.n_bins:
            raise ValueError(
                f"spectrogram must be complex (..., {stft.n_bins}, frames), got "
                f"{spectrogram.dtype} {tuple(spectrogram.shape)}"
            )
        rate = sample_rate or self.sample_rate
        span = (spectrogram.shape[-1] - 1) * self.config.stft.hop_length
        model_length = span if length is None else math.ceil(length * self.sample_rate / rate)
        waveform = stft.inverse(spectrogram, model_length)
        if rate != self.sample_rate:
            flat = resample(waveform.reshape(-1, model_length), self.sample_rate, rate)
            waveform = flat.reshape(*waveform.shape[:-1], flat.shape[-1])
        if length is not None:
            pad = [(0, 0)] * (waveform.ndim - 1) + [(0, max(0, length - waveform.shape[-1]))]
            waveform = np.pad(waveform, pad)[..., :length]
        return like(waveform, given)


def _numpy(array: Any) -> np.ndarray:
    """A numpy view (or CPU copy) of a numpy array or torch tensor."""
    return array.detach().cpu().numpy() if is_torch(array) else np.asarray(array)
