"""How a spectrogram masking model (or an ensemble of them) separates a chunk of a song: the
`SpectrogramEstimator`, which the `Separator` uses through the estimator protocol (see
`separator.Estimator`).

It runs each member's network on its own analysis of the song (frame tiles on the song's frame
grid, so chunks agree with one pass), maps the band masks onto the grid of the output STFT
(interpolated in Hz and seconds when the rates or hops differ, extended above the band),
weights and sums them, can refine the masked estimates with the multichannel Wiener filter,
and inverts the STFT. The masks are applied at the *input's* sample rate: the mixture is
resampled to the model's rate only to estimate them. It also serves the spectrogram-level API
(`predict_mask`, `stft`, `istft`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from ..core.tiling import TilePlan, overlap_add
from .backends import SeparationNetwork
from .channels import spectrogram_masks
from .io import resample
from .modelconfig import SpectrogramModelConfig
from .postfilter import wiener
from .stft import STFT, fast_fft_length

# The Wiener post-filter's spatial covariances average +-2 s around each frame: local enough
# for chunks to give the one-pass output with a little more context, long enough (about 170
# frames at 44.1 kHz) to estimate a 2x2 covariance well.
WIENER_WINDOW_SECONDS = 2.0


def _interpolate(values: np.ndarray, positions: np.ndarray, axis: int) -> np.ndarray:
    """Linear interpolation of `values` along `axis` at fractional `positions` (clamped)."""
    size = values.shape[axis]
    positions = np.clip(positions, 0, size - 1)
    low = np.floor(positions).astype(np.int64)
    high = np.minimum(low + 1, size - 1)
    shape = [1] * values.ndim
    shape[axis] = -1
    weight = (positions - low).astype(values.dtype).reshape(shape)
    return np.take(values, low, axis) * (1 - weight) + np.take(values, high, axis) * weight


def _model_times(
    model: SpectrogramModelConfig,
    sample_rate: int,
    stft: STFT,
    frames: int,
    first_frame: int,
    first_model_frame: int,
) -> np.ndarray | None:
    """Where `frames` frames of `stft` at `sample_rate`, from the song's frame `first_frame`,
    sit among the model's frames from its frame `first_model_frame` (fractional indices); None
    when they are the same frames."""
    # Frame j of the target grid sits at the time of model frame j * time_ratio.
    time_ratio = (stft.config.hop_length / sample_rate) / (
        model.stft.hop_length / model.sample_rate
    )
    if sample_rate == model.sample_rate and time_ratio == 1 and first_frame == first_model_frame:
        return None
    return (np.arange(frames, dtype=np.float64) + first_frame) * time_ratio - first_model_frame


def _span(positions: np.ndarray, size: int) -> tuple[int, int]:
    """The indices `[start, stop)` of `size` values that `_interpolate` reads at `positions`."""
    positions = np.clip(positions, 0, size - 1)
    return int(np.floor(positions.min())), min(size, int(np.floor(positions.max())) + 2)


@dataclass(frozen=True)
class Member:
    """One spectrogram masking model (the only one, or one member of an ensemble)."""

    config: SpectrogramModelConfig
    run: Callable[[np.ndarray], np.ndarray]  # the network: magnitudes -> band masks
    stft: STFT  # the model's own analysis (one object per distinct STFT config)
    weight: float


class SpectrogramEstimator:
    """Separates chunks with the network of a spectrogram masking model or an ensemble (one
    STFT object per distinct STFT config of the members; the first member's is the model's
    own). Everything is numpy; `network` runs the networks on whichever backend."""

    difference = False  # the stems are masked mixtures; the residual is the accompaniment
    resampler_passes = 1  # the mixture is resampled to the model's rate, the output is not

    def __init__(
        self,
        network: SeparationNetwork,
        tile_batch: int = 8,
        wiener_iterations: int = 0,
        threads: int | None = None,
    ) -> None:
        self.tile_batch = tile_batch
        self.wiener_iterations = wiener_iterations
        self.threads = threads  # of the STFTs (None: one per core)
        self.config = network.config
        self.stft = STFT(self.config.stft, threads=threads)
        stfts = {self.config.stft: self.stft}
        self.members = [
            Member(
                member.config,
                member.run,
                stfts.setdefault(member.config.stft, STFT(member.config.stft, threads=threads)),
                member.weight,
            )
            for member in network.members
        ]

    def band_mask(
        self,
        spectrum: np.ndarray,
        first_frame: int = 0,
        member: Member | None = None,
        needed: tuple[int, int] | None = None,
    ) -> np.ndarray:
        """A spectrogram `(batch, channels, bins, frames)` at `member`'s STFT (default: the
        first member's), complex or magnitudes -> `member`'s band masks `(batch, targets,
        channels, band, frames)`.

        The frame tiles start at multiples of the tile step of the song's frame index, where
        `first_frame` is the index of the first frame given, so that every chunk of a song sees
        the same tiles. Channels are folded to what the network takes: as they are when the
        counts agree, otherwise each channel on its own, copied to every network channel, masks
        averaged (`spectrogram_masks`). With `needed` (a range of the given frames) only the
        tiles that reach into it run: the masks are the same there and zero elsewhere.
        """
        member = member or self.members[0]
        config = member.config
        band = spectrum[:, :, : config.band_bins]
        plan = TilePlan(config.tile_frames, config.tile_overlap, config.tile_context)
        return spectrogram_masks(
            lambda tile: overlap_add(
                member.run,
                tile,
                [plan],
                origins=[first_frame],
                batch=self.tile_batch,
                needed=None if needed is None else [needed],
            ),
            config,
            band,
        )

    @staticmethod
    def _extension(band_mask: np.ndarray, mode: str) -> np.ndarray:
        """Mask value above the band, per frame: `(..., band, frames)` -> `(..., 1, frames)`,
        as `mode` (a config's `mask_extension`) says."""
        shape = (*band_mask.shape[:-2], 1, band_mask.shape[-1])
        if mode in ("zeros", "ones"):
            return np.full(shape, float(mode == "ones"), band_mask.dtype)
        top = max(1, band_mask.shape[-2] // 8)
        return band_mask[..., -top:, :].mean(-2, keepdims=True)

    def full_mask(
        self,
        band_mask: np.ndarray,
        sample_rate: int,
        stft: STFT,
        frames: int,
        first_frame: int = 0,
        first_model_frame: int = 0,
        member: Member | None = None,
    ) -> np.ndarray:
        """Map `member`'s (default: the first member's) band masks `(..., band, model_frames)`
        onto the grid of `stft` at `sample_rate` with `frames` frames: `(..., stft bins,
        frames)`, extended above the band. The first frames of the two grids have the song's
        frame indices `first_frame` (of `stft`) and `first_model_frame` (of the model's STFT)."""
        model = (member or self.members[0]).config
        n_bins, band = stft.n_bins, band_mask.shape[-2]
        times = _model_times(model, sample_rate, stft, frames, first_frame, first_model_frame)
        if times is None:  # the same frames: the first `frames` of them
            band_mask = band_mask[..., :frames]
        else:
            band_mask = _interpolate(band_mask, times, axis=-1)
        bin_ratio = (sample_rate / stft.fft_length) / (model.sample_rate / model.stft.n_fft)
        positions = np.arange(n_bins, dtype=np.float64) * bin_ratio
        inside = int((positions <= band - 1 + 1e-9).sum())
        if bin_ratio == 1.0:
            inside_mask = band_mask[..., :inside, :]
        else:
            inside_mask = _interpolate(band_mask, positions[:inside], axis=-2)
        above = self._extension(band_mask, model.mask_extension)
        above = np.broadcast_to(above, (*band_mask.shape[:-2], n_bins - inside, frames))
        return np.concatenate([inside_mask, above], axis=-2)

    def masks(
        self,
        analyse: Callable[[STFT], tuple[np.ndarray, int]],
        sample_rate: int,
        stft: STFT,
        frames: int,
        first_frame: int,
    ) -> np.ndarray:
        """Full masks on the grid of `stft` (`(batch, targets, channels, bins, frames)`): the
        members' masks, mapped onto that grid, weighted and summed. `analyse(member_stft)`
        gives `(spectrum (batch, channels, bins, frames), first model frame)` at a member's
        STFT; it is called once per distinct STFT."""
        analyses: dict[STFT, tuple[np.ndarray, int]] = {}
        mask = None
        for member in self.members:
            if member.stft not in analyses:
                analyses[member.stft] = analyse(member.stft)
            analysis, first_model_frame = analyses[member.stft]
            times = _model_times(
                member.config, sample_rate, stft, frames, first_frame, first_model_frame
            )
            # the model frames that the mask of these frames is interpolated from
            needed = (0, frames) if times is None else _span(times, analysis.shape[-1])
            band_mask = self.band_mask(analysis, first_model_frame, member, needed)
            part = self.full_mask(
                band_mask, sample_rate, stft, frames, first_frame, first_model_frame, member
            )
            if member.weight != 1.0:
                part = part * member.weight
            mask = part if mask is None else mask + part
        return mask

    # -- the estimator protocol -------------------------------------------------------------

    unit = 1  # chunks may start on any sample of the model's rate

    def min_samples(self, sample_rate: int) -> int:
        """Shortest input (at `sample_rate`) that spans one full STFT frame of every member."""
        n_fft = max(member.config.stft.n_fft for member in self.members)
        return math.ceil(n_fft * sample_rate / self.config.sample_rate)

    def context(self) -> int:
        """Model samples a chunk must see on both sides: a whole frame tile with its context
        and the STFT window of every member, and the Wiener filter's reach."""
        context = max(
            (member.config.tile_frames + 2 * member.config.tile_context + 4)
            * member.config.stft.hop_length
            + member.config.stft.n_fft
            for member in self.members
        )
        if self.wiener_iterations:  # each EM step reaches one covariance window further
            stft = self.config.stft  # the Wiener filter's window, rounded to frames, + a frame
            window = math.ceil(WIENER_WINDOW_SECONDS * self.config.sample_rate) + stft.hop_length
            context += self.wiener_iterations * window + stft.n_fft
        return context

    def _input_stft(self, sample_rate: int) -> STFT:
        """The STFT of a song at another rate than the model's: the model's analysis in
        seconds (its window rounded up to an even length), the FFT zero-padded to a fast
        size. The masks are interpolated onto its bins."""
        config = self.config.stft.scaled(sample_rate / self.config.sample_rate)
        if config.n_fft % 2:
            config = replace(config, n_fft=config.n_fft + 1)
        return STFT(config, fast_fft_length(config.n_fft), threads=self.threads)

    def estimate(
        self, chunk: np.ndarray, sample_rate: int, start: int = 0, context: int = 0
    ) -> np.ndarray:
        """One chunk `(channels, samples)` at `sample_rate` that starts at sample `start` of
        the song -> target estimates `(targets, channels, samples - 2 context)` of the chunk
        without its first and last `context` samples: STFT, masks, iSTFT.

        Both STFTs (of the input, and of the mixture resampled to the model's rate) are taken
        on the song's frame grids: an excerpt is padded on the left to the frame before it, so
        frame k of any chunk is a frame of the whole song, and so are the network's tiles. The
        network sees the whole chunk but runs only the tiles that the estimated samples need;
        the input's STFT, the masks and the iSTFT cover those samples and one FFT length and a
        hop either side (every frame that reaches an estimated sample), or with the Wiener
        filter the whole chunk."""
        length = chunk.shape[-1]
        same_rate = sample_rate == self.config.sample_rate
        stft = self.stft if same_rate else self._input_stft(sample_rate)
        # The Wiener filter's covariances reach further: it keeps the whole chunk.
        reach = stft.fft_length + stft.config.hop_length
        margin = context if self.wiener_iterations else min(context, reach)
        excerpt = chunk[..., context - margin : length - context + margin]
        spectrum, first_frame, lead = _song_grid_stft(stft, excerpt, start + context - margin)
        if same_rate:
            resampled, model_start = chunk, start
        else:
            # The chunk starts on a whole model sample when `_chunk_plan` could align it.
            model_start = round(start * self.config.sample_rate / sample_rate)
            resampled = resample(chunk, sample_rate, self.config.sample_rate)

        def analyse(member_stft: STFT) -> tuple[np.ndarray, int]:
            if same_rate and member_stft is stft and margin == context:  # the whole chunk
                return spectrum[None], first_frame
            analysis, first_model_frame, _ = _song_grid_stft(member_stft, resampled, model_start)
            return analysis[None], first_model_frame

        mask = self.masks(analyse, sample_rate, stft, spectrum.shape[-1], first_frame)[0]
        keep = slice(lead + margin, lead + margin + length - 2 * context)
        if not self.wiener_iterations:  # the masked mixture, multiplied inside the inverse
            return stft.inverse(spectrum, lead + excerpt.shape[-1], mask)[..., keep]
        estimates = self.wiener(mask, spectrum, sample_rate, stft)
        return stft.inverse(estimates, lead + excerpt.shape[-1])[..., keep]

    def wiener(
        self, mask: np.ndarray, spectrum: np.ndarray, sample_rate: int, stft: STFT
    ) -> np.ndarray:
        """Masked estimates `(targets, channels, bins, frames)` of `spectrum` (on the grid of
        `stft` at `sample_rate`), refined by `wiener_iterations` Wiener EM steps. The filter
        needs every source: the residual joins as one more."""
        estimates = mask * spectrum[None]
        residual = np.maximum(1 - mask.sum(0, keepdims=True), 0) * spectrum[None]
        if "accompaniment" in self.config.targets:
            residual = residual[:0]
        sources = np.concatenate([estimates, residual])
        window = max(1, round(WIENER_WINDOW_SECONDS * sample_rate / stft.config.hop_length))
        return wiener(sources, spectrum, self.wiener_iterations, window)[: len(mask)]


def _song_grid_stft(stft: STFT, signal: np.ndarray, start: int) -> tuple[np.ndarray, int, int]:
    """The STFT of an excerpt `(..., samples)` that starts at sample `start` of a song, on the
    song's frame grid: the excerpt is padded on the left by `lead = start % hop` samples, so
    frame k is the song's frame `first_frame + k`. Returns (spectrum, first_frame, lead)."""
    hop = stft.config.hop_length
    lead = start % hop
    spectrum = stft(np.pad(signal, [(0, 0)] * (signal.ndim - 1) + [(lead, 0)]))
    return spectrum, (start - lead) // hop, lead
