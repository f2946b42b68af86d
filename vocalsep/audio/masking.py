"""Spectrogram masks of one model or an ensemble, on any frame grid, and the Wiener filter.

A `SpectrogramMasker` runs each member's network on its own analysis of the song (frame tiles
on the song's frame grid, so chunks agree with one pass), maps the band masks onto the grid
of the output STFT (interpolated in Hz and seconds when the rates or hops differ, extended
above the band), weights and sums them, and can refine the masked estimates with the
multichannel Wiener filter. The `Separator` reads, resamples, chunks and writes around it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..core.tiling import TilePlan, overlap_add
from .models import (
    SpectrogramEnsemble,
    SpectrogramMaskModel,
    SpectrogramModelConfig,
    spectrogram_masks,
)
from .postfilter import wiener
from .stft import STFT

# The Wiener post-filter's spatial covariances average +-2 s around each frame: local enough
# for chunks to give the one-pass output with a little more context, long enough (about 170
# frames at 44.1 kHz) to estimate a 2x2 covariance well.
WIENER_WINDOW_SECONDS = 2.0


def _interpolate(values: torch.Tensor, positions: torch.Tensor, dim: int) -> torch.Tensor:
    """Linear interpolation of `values` along `dim` at fractional `positions` (clamped)."""
    size = values.shape[dim]
    positions = positions.clamp(0, size - 1)
    low = positions.floor().long()
    high = (low + 1).clamp(max=size - 1)
    weight = (positions - low).to(values.dtype)
    shape = [1] * values.dim()
    shape[dim] = -1
    weight = weight.reshape(shape)
    return values.index_select(dim, low) * (1 - weight) + values.index_select(dim, high) * weight


@dataclass(frozen=True)
class Member:
    """One spectrogram masking model (the only one, or one member of an ensemble)."""

    model: SpectrogramMaskModel
    stft: STFT  # the model's own analysis (one object per distinct STFT config)
    weight: float

    @property
    def config(self) -> SpectrogramModelConfig:
        return self.model.config


class SpectrogramMasker:
    """The masks of a `SpectrogramMaskModel` or a `SpectrogramEnsemble` (one STFT object per
    distinct STFT config of the members; the first member's is the model's own)."""

    def __init__(
        self,
        model: SpectrogramMaskModel | SpectrogramEnsemble,
        device: torch.device,
        tile_batch: int = 8,
    ) -> None:
        self.device = device
        self.tile_batch = tile_batch
        self.config = model.config
        self.stft = STFT(self.config.stft)
        members = (
            list(zip(model.members, model.weights, strict=True))
            if isinstance(model, SpectrogramEnsemble)
            else [(model, 1.0)]
        )
        stfts = {self.config.stft: self.stft}
        self.members = [
            Member(member, stfts.setdefault(member.config.stft, STFT(member.config.stft)), w)
            for member, w in members
        ]

    @torch.inference_mode()
    def band_mask(
        self, spectrum: torch.Tensor, first_frame: int = 0, member: Member | None = None
    ) -> torch.Tensor:
        """A spectrogram `(batch, channels, bins, frames)` at `member`'s STFT (default: the
        first member's), complex or magnitudes -> `member`'s band masks `(batch, targets,
        channels, band, frames)`.

        The frame tiles start at multiples of the tile step of the song's frame index, where
        `first_frame` is the index of the first frame given, so that every chunk of a song sees
        the same tiles. Channels are folded to what the network takes: as they are when the
        counts agree, otherwise each channel on its own, copied to every network channel, masks
        averaged (`spectrogram_masks`).
        """
        member = member or self.members[0]
        config = member.config
        band = spectrum[:, :, : config.band_bins].to(self.device)
        if not band.is_complex():
            band = band.float()
        plan = TilePlan(config.tile_frames, config.tile_overlap, config.tile_context)
        return spectrogram_masks(
            lambda tile: overlap_add(
                member.model, tile, [plan], origins=[first_frame], batch=self.tile_batch
            ),
            config,
            band,
        )

    @staticmethod
    def _extension(band_mask: torch.Tensor, mode: str) -> torch.Tensor:
        """Mask value above the band, per frame: `(..., band, frames)` -> `(..., 1, frames)`,
        as `mode` (a config's `mask_extension`) says."""
        if mode == "zeros":
            return band_mask.new_zeros((*band_mask.shape[:-2], 1, band_mask.shape[-1]))
        if mode == "ones":
            return band_mask.new_ones((*band_mask.shape[:-2], 1, band_mask.shape[-1]))
        top = max(1, band_mask.shape[-2] // 8)
        return band_mask[..., -top:, :].mean(dim=-2, keepdim=True)

    def full_mask(
        self,
        band_mask: torch.Tensor,
        sample_rate: int,
        stft: STFT,
        frames: int,
        first_frame: int = 0,
        first_model_frame: int = 0,
        member: Member | None = None,
    ) -> torch.Tensor:
        """Map `member`'s (default: the first member's) band masks `(..., band, model_frames)`
        onto the grid of `stft` at `sample_rate` with `frames` frames: `(..., stft bins,
        frames)`, extended above the band. The first frames of the two grids have the song's
        frame indices `first_frame` (of `stft`) and `first_model_frame` (of the model's STFT)."""
        model = (member or self.members[0]).config
        n_bins, band = stft.n_bins, band_mask.shape[-2]
        # Frame j of the target grid sits at the time of model frame j * time_ratio.
        time_ratio = (stft.config.hop_length / sample_rate) / (
            model.stft.hop_length / model.sample_rate
        )
        if sample_rate != model.sample_rate or time_ratio != 1 or first_frame != first_model_frame:
            index = torch.arange(frames, device=band_mask.device, dtype=torch.float64)
            times = (index + first_frame) * time_ratio - first_model_frame
            band_mask = _interpolate(band_mask, times, dim=-1)
        bin_ratio = (sample_rate / stft.fft_length) / (model.sample_rate / model.stft.n_fft)
        positions = torch.arange(n_bins, device=band_mask.device, dtype=torch.float64) * bin_ratio
        inside = int((positions <= band - 1 + 1e-9).sum())
        if bin_ratio == 1.0:
            inside_mask = band_mask[..., :inside, :]
        else:
            inside_mask = _interpolate(band_mask, positions[:inside], dim=-2)
        above = self._extension(band_mask, model.mask_extension)
        above = above.expand(*band_mask.shape[:-2], n_bins - inside, -1)
        return torch.cat([inside_mask, above], dim=-2)

    def masks(
        self,
        analyse: Callable[[STFT], tuple[torch.Tensor, int]],
        sample_rate: int,
        stft: STFT,
        frames: int,
        first_frame: int,
    ) -> torch.Tensor:
        """Full masks on the grid of `stft` (`(batch, targets, channels, bins, frames)`): the
        members' masks, mapped onto that grid, weighted and summed. `analyse(member_stft)`
        gives `(spectrum (batch, channels, bins, frames), first model frame)` at a member's
        STFT; it is called once per distinct STFT."""
        analyses: dict[STFT, tuple[torch.Tensor, int]] = {}
        mask = None
        for member in self.members:
            if member.stft not in analyses:
                analyses[member.stft] = analyse(member.stft)
            analysis, first_model_frame = analyses[member.stft]
            band_mask = self.band_mask(analysis, first_model_frame, member)
            part = self.full_mask(
                band_mask, sample_rate, stft, frames, first_frame, first_model_frame, member
            )
            if member.weight != 1.0:
                part = part * member.weight
            mask = part if mask is None else mask + part
        return mask

    def wiener(
        self,
        mask: torch.Tensor,
        spectrum: torch.Tensor,
        iterations: int,
        sample_rate: int,
        stft: STFT,
    ) -> torch.Tensor:
        """Masked estimates `(targets, channels, bins, frames)` of `spectrum` (on the grid of
        `stft` at `sample_rate`), refined by `iterations` Wiener EM steps (none: the masked
        mixture). The filter needs every source: the residual joins as one more."""
        estimates = mask * spectrum[None]
        if not iterations:
            return estimates
        residual = (1 - mask.sum(dim=0, keepdim=True)).clamp_min(0) * spectrum[None]
        if "accompaniment" in self.config.targets:
            residual = residual[:0]
        sources = torch.cat([estimates, residual])
        window = max(1, round(WIENER_WINDOW_SECONDS * sample_rate / stft.config.hop_length))
        return wiener(sources, spectrum, iterations, window)[: len(mask)]
