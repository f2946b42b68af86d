"""Multichannel Wiener post-filter (expectation-maximisation), as Open-Unmix and Spleeter use.

Starting from mask estimates `y_j = m_j x` of every source j (the targets and the residual),
each iteration re-estimates per source a power spectral density `v_j(f, t)` (mean over
channels of |y_j|^2) and a spatial covariance `R_j(f)` (time-averaged `y_j y_j^H / v_j`), then
applies the multichannel Wiener gains `G_j = v_j R_j (sum_k v_k R_k)^-1` to the mixture:
`y_j = G_j x` (Duong, Vincent and Gribonval 2010; Nugraha, Liutkus and Vincent 2016). The gains
of all sources sum to the identity, so the estimates still sum to the mixture; the spatial
covariances let stereo cues (a centred voice, wide music) sharpen the masks.
"""

from __future__ import annotations

import torch


def wiener(estimates: torch.Tensor, mixture: torch.Tensor, iterations: int = 1) -> torch.Tensor:
    """Refine complex source estimates with `iterations` EM steps.

    estimates: `(sources, channels, bins, frames)` complex, the initial (masked) estimates.
    mixture:   `(channels, bins, frames)` complex.
    Returns refined estimates of the same shape (the input when `iterations` is 0).
    """
    if iterations <= 0:
        return estimates
    sources, channels = estimates.shape[:2]
    dtype = estimates.real.dtype
    # Scale to unit peak so the regularisation below means the same for any level.
    scale = mixture.abs().amax().clamp_min(1e-8)
    x = (mixture / scale).permute(1, 2, 0)  # (bins, frames, channels)
    y = (estimates / scale).permute(0, 2, 3, 1)  # (sources, bins, frames, channels)
    eye = torch.eye(channels, dtype=estimates.dtype, device=estimates.device)
    eps = torch.finfo(dtype).eps
    for _ in range(iterations):
        power = y.abs().square().mean(dim=-1)  # v_j: (sources, bins, frames)
        outer = y[..., :, None] * y[..., None, :].conj()  # (sources, bins, frames, c, c)
        covariance = outer.sum(dim=2) / (power.sum(dim=2)[..., None, None] + eps)  # R_j(f)
        model = power[..., None, None] * covariance[:, :, None]  # v_j R_j: (s, bins, frames, c, c)
        mixture_cov = model.sum(dim=0)
        # Regularise relative to each bin's own power, so quiet bins are not attenuated and
        # digital silence stays invertible.
        level = torch.diagonal(mixture_cov, dim1=-2, dim2=-1).real.mean(-1)
        mixture_cov = mixture_cov + (1e-5 * level + 1e-12)[..., None, None] * eye
        inverse = torch.linalg.inv(mixture_cov)
        gains = model @ inverse  # (sources, bins, frames, c, c)
        y = (gains @ x[None, ..., None])[..., 0]
    return (y * scale).permute(0, 3, 1, 2).contiguous()
