"""Fast separation metrics for training-time validation.

These are NOT BSSEval v4 numbers and are not comparable with published museval tables (use
`vocalsep evaluate` for those). `signal_to_distortion_ratio` is the plain global SDR used by the
Music Demixing Challenge 2021 ("new SDR"): one number per signal, no allowed distortion filter,
no framing, computed in a few microseconds per second of audio.
"""

from __future__ import annotations

import torch

__all__ = ["signal_to_distortion_ratio"]


def signal_to_distortion_ratio(
    estimate: torch.Tensor,
    reference: torch.Tensor,
    *,
    scale_invariant: bool = False,
    eps: float = 1e-8,
) -> torch.Tensor:
    """SDR in dB of `estimate` vs `reference`, both `(..., channels, samples)`; returns `(...)`.

    Channels and samples are pooled: `10 log10(|s|^2 / |s - ŝ|^2)`. With `scale_invariant` the
    reference is first scaled by the least-squares gain (SI-SDR, Le Roux et al. 2019), computed
    over the flattened channels and samples. `eps` keeps silent references finite.
    """
    if estimate.shape != reference.shape:
        raise ValueError(f"estimate {tuple(estimate.shape)} != reference {tuple(reference.shape)}")
    estimate = estimate.flatten(-2).double()
    reference = reference.flatten(-2).double()
    if scale_invariant:
        gain = (estimate * reference).sum(-1, keepdim=True) / (
            reference.square().sum(-1, keepdim=True) + eps
        )
        reference = gain * reference
    signal = reference.square().sum(-1)
    error = (reference - estimate).square().sum(-1)
    return (10 * torch.log10((signal + eps) / (error + eps))).float()
