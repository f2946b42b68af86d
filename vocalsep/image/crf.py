"""A conditional random field that refines segmentation logits with the image (DeepLab's
post-processing step; mean-field inference as in CRF-as-RNN, Zheng et al. 2015).

The fully connected CRF of Krähenbühl and Koltun (2011) joins every pair of pixels by an
appearance kernel `w_a exp(-|p_i - p_j|^2 / 2 theta_a^2 - |I_i - I_j|^2 / 2 theta_b^2)` (nearby
pixels of similar colour tend to share a class) and a smoothness kernel `w_s exp(-|p_i -
p_j|^2 / 2 theta_s^2)`, with Potts compatibility. Exact all-pairs filtering costs N^2 per step;
like ConvCRF (Teichmann and Cipolla 2018) this one truncates both kernels to a
`window` x `window` neighbourhood, which is what a CPU affords (the Gaussians are small beyond
it at these widths). Each mean-field step: `Q = softmax(logits)`, then `logits_new = unary +
sum_j k(i, j) Q_j` (the Potts term, up to a constant), `steps` times.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..core.config import Config
from ..core.errors import ConfigError


@dataclass(frozen=True)
class CRFConfig(Config):
    """Kernel widths in pixels (theta_a, theta_s) and colour units of [0, 255] (theta_b),
    weights, the window (odd) and the mean-field steps."""

    window: int = 7
    appearance_weight: float = 4.0
    appearance_xy: float = 5.0
    appearance_rgb: float = 13.0
    smoothness_weight: float = 3.0
    smoothness_xy: float = 1.0
    steps: int = 5

    def __post_init__(self) -> None:
        if self.window < 3 or self.window % 2 == 0 or self.steps < 1:
            raise ConfigError("the CRF needs an odd window >= 3 and steps >= 1")


def _neighbours(x: torch.Tensor, window: int) -> torch.Tensor:
    """`(batch, channels, h, w)` -> `(batch, channels, window^2, h, w)`: each pixel's window
    (zeros beyond the image)."""
    batch, channels, height, width = x.shape
    patches = F.unfold(x, window, padding=window // 2)  # (batch, channels * window^2, h * w)
    return patches.view(batch, channels, window * window, height, width)


def kernel(image: torch.Tensor, config: CRFConfig) -> torch.Tensor:
    """The pairwise weights `(batch, window^2, h, w)` of an image `(batch, channels, h, w)`
    in [0, 1] (0 for a pixel with itself and beyond the image)."""
    window, half = config.window, config.window // 2
    offsets = torch.arange(-half, half + 1, dtype=torch.float32, device=image.device)
    distance = (offsets[:, None] ** 2 + offsets[None, :] ** 2).reshape(-1, 1, 1)
    colour = _neighbours(image * 255.0, window) - (image * 255.0)[:, :, None]
    appearance = config.appearance_weight * torch.exp(
        -distance / (2 * config.appearance_xy**2)
        - colour.square().sum(dim=1) / (2 * config.appearance_rgb**2)
    )
    smoothness = config.smoothness_weight * torch.exp(-distance / (2 * config.smoothness_xy**2))
    inside = _neighbours(torch.ones_like(image[:, :1]), window)[:, 0]  # 0 beyond the image
    weights = (appearance + smoothness) * inside
    weights[:, (window * window) // 2] = 0  # no message from a pixel to itself
    return weights


def refine(logits: torch.Tensor, image: torch.Tensor, config: CRFConfig) -> torch.Tensor:
    """Logits `(batch, classes, h, w)` refined with the image `(batch, channels, h, w)` in
    [0, 1], by `config.steps` mean-field steps; the same shape."""
    weights = kernel(image, config)  # (batch, window^2, h, w)
    refined = logits
    for _ in range(config.steps):
        probabilities = refined.softmax(dim=1)
        message = torch.stack(
            [
                (_neighbours(probabilities[:, c : c + 1], config.window)[:, 0] * weights).sum(1)
                for c in range(logits.shape[1])
            ],
            dim=1,
        )
        refined = logits + message
    return refined
