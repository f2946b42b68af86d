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

import numpy as np


def wiener(
    estimates: np.ndarray, mixture: np.ndarray, iterations: int = 1, window: int = 86
) -> np.ndarray:
    """Refine complex source estimates with `iterations` EM steps.

    estimates: `(sources, channels, bins, frames)` complex, the initial (masked) estimates.
    mixture:   `(channels, bins, frames)` complex.
    window:    the spatial covariance of frame t averages frames t - window .. t + window.
    Returns refined estimates of the same shape and dtype (the input when `iterations` is 0).
    """
    if iterations <= 0:
        return estimates
    channels = estimates.shape[1]
    x = mixture.transpose(1, 2, 0)  # (bins, frames, channels)
    y = estimates.transpose(0, 2, 3, 1)  # (sources, bins, frames, channels)
    eye = np.eye(channels, dtype=estimates.dtype)
    eps = np.finfo(estimates.real.dtype).eps
    for _ in range(iterations):
        power = (y.real**2 + y.imag**2).mean(-1)  # v_j: (sources, bins, frames)
        outer = y[..., :, None] * y[..., None, :].conj()  # (sources, bins, frames, c, c)
        weight = _window_sum(power, window, axis=2)  # (sources, bins, frames)
        covariance = _window_sum(outer, window, axis=2) / (weight[..., None, None] + eps)  # R_j
        model = power[..., None, None] * covariance  # v_j R_j: (sources, bins, frames, c, c)
        mixture_cov = model.sum(0)
        # Regularise relative to each bin's own power, so quiet bins are not attenuated and
        # digital silence stays invertible.
        level = np.diagonal(mixture_cov, axis1=-2, axis2=-1).real.mean(-1)
        mixture_cov = mixture_cov + (1e-5 * level + 1e-12)[..., None, None] * eye
        gains = model @ np.linalg.inv(mixture_cov)  # (sources, bins, frames, c, c)
        y = (gains @ x[None, ..., None])[..., 0].astype(estimates.dtype, copy=False)
    return np.ascontiguousarray(y.transpose(0, 3, 1, 2))


def _window_sum(values: np.ndarray, window: int, axis: int) -> np.ndarray:
    """Sum of `values` over positions i - window .. i + window along `axis` (nothing beyond
    the ends), for every i: a difference of cumulative sums, in double precision so that a long
    song's running total keeps the precision of its frames."""
    values = np.moveaxis(values, axis, -1)
    running = values.astype(np.complex128 if np.iscomplexobj(values) else np.float64).cumsum(-1)
    lead, length = running.shape[:-1], values.shape[-1]
    padded = np.concatenate(  # padded[j] = running[j - window - 1], clamped to the ends
        [
            np.zeros((*lead, window + 1), running.dtype),
            running,
            np.broadcast_to(running[..., -1:], (*lead, window)),
        ],
        axis=-1,
    )
    summed = padded[..., 2 * window + 1 : 2 * window + 1 + length] - padded[..., :length]
    return np.moveaxis(summed.astype(values.dtype), -1, axis)
