"""Multichannel Wiener post-filter (expectation-maximisation), as Open-Unmix and Spleeter use.

Starting from mask estimates `y_j = m_j x` of every source j (the targets and the residual),
each iteration re-estimates per source a power spectral density `v_j(f, t)` (mean over
channels of |y_j|^2) and a spatial covariance `R_j(f, t)` (`y_j y_j^H / v_j` averaged over the
frames within `window` of t), then applies the multichannel Wiener gains
`G_j = v_j R_j (sum_k v_k R_k)^-1` to the mixture: `y_j = G_j x` (Duong, Vincent and Gribonval
2010; Nugraha, Liutkus and Vincent 2016). The gains of all sources sum to the identity, so the
estimates still sum to the mixture; the spatial covariances let stereo cues (a centred voice,
wide music) sharpen the masks.

The covariance is local in time (a window of frames around each frame, not the whole input),
and every constant is absolute, so a frame's output depends only on the frames within
`iterations * window` of it: a song separated in chunks that see that much of each other gives
the output of one pass.
"""

from __future__ import annotations

import torch


def wiener(
    estimates: torch.Tensor, mixture: torch.Tensor, iterations: int = 1, window: int = 86
) -> torch.Tensor:
    """Refine complex source estimates with `iterations` EM steps.

    estimates: `(sources, channels, bins, frames)` complex, the initial (masked) estimates.
    mixture:   `(channels, bins, frames)` complex.
    window:    the spatial covariance of frame t averages frames t - window .. t + window.
    Returns refined estimates of the same shape (the input when `iterations` is 0).
    """
    if iterations <= 0:
        return estimates
    channels = estimates.shape[1]
    dtype = estimates.real.dtype
    x = mixture.permute(1, 2, 0)  # (bins, frames, channels)
    y = estimates.permute(0, 2, 3, 1)  # (sources, bins, frames, channels)
    eye = torch.eye(channels, dtype=estimates.dtype, device=estimates.device)
    eps = torch.finfo(dtype).eps
    for _ in range(iterations):
        power = y.abs().square().mean(dim=-1)  # v_j: (sources, bins, frames)
        outer = y[..., :, None] * y[..., None, :].conj()  # (sources, bins, frames, c, c)
        weight = _window_sum(power, window, dim=2)  # (sources, bins, frames)
        covariance = _window_sum(outer, window, dim=2) / (weight[..., None, None] + eps)  # R_j
        model = power[..., None, None] * covariance  # v_j R_j: (sources, bins, frames, c, c)
        mixture_cov = model.sum(dim=0)
        # Regularise relative to each bin's own power, so quiet bins are not attenuated and
        # digital silence stays invertible.
        level = torch.diagonal(mixture_cov, dim1=-2, dim2=-1).real.mean(-1)
        mixture_cov = mixture_cov + (1e-5 * level + 1e-12)[..., None, None] * eye
        inverse = torch.linalg.inv(mixture_cov)
        gains = model @ inverse  # (sources, bins, frames, c, c)
        y = (gains @ x[None, ..., None])[..., 0]
    return y.permute(0, 3, 1, 2).contiguous()


def _window_sum(values: torch.Tensor, window: int, dim: int) -> torch.Tensor:
    """Sum of `values` over positions i - window .. i + window along `dim` (nothing beyond the
    ends), for every i: a difference of cumulative sums, in float64 so that a long song's
    running total keeps the precision of its frames."""
    values = values.movedim(dim, -1)
    wide = values.to(torch.complex128 if values.is_complex() else torch.float64)
    running = wide.cumsum(-1)
    length = values.shape[-1]
    padded = torch.cat(  # padded[j] = running[j - window - 1], clamped to the ends
        [
            torch.zeros_like(running[..., :1]).expand(*running.shape[:-1], window + 1),
            running,
            running[..., -1:].expand(*running.shape[:-1], window),
        ],
        dim=-1,
    )
    summed = padded[..., 2 * window + 1 : 2 * window + 1 + length] - padded[..., :length]
    return summed.to(values.dtype).movedim(-1, dim)
