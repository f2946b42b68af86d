"""Parts of the architectures that pool context from the whole input (their output at a point
depends on every input sample, so tiles of a long input cannot reproduce one pass exactly:
their configs report no `receptive_field`, and tiled prediction needs an explicit context).

- `PyramidPooling` (Zhao et al. 2017, PSPNet): the features average-pooled to 1, 2, 3 and 6
  cells per axis, each reduced by a 1x1 conv, upsampled back and concatenated to them.
- `AtrousPyramid` (Chen et al. 2017/2018, DeepLab v3's ASPP): parallel 1x1 and dilated 3x3
  convs at several rates plus an image-level (globally pooled) branch, concatenated, 1x1 conv.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from . import blocks


def resize(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """(Bi)linear resampling of `(batch, channels, *spatial)` to `size`."""
    mode = "linear" if x.dim() == 3 else "bilinear"
    return F.interpolate(x, size=tuple(size), mode=mode, align_corners=False)


def _pool(x: torch.Tensor, cells: int) -> torch.Tensor:
    return (F.adaptive_avg_pool1d if x.dim() == 3 else F.adaptive_avg_pool2d)(x, cells)


class PyramidPooling(nn.Module):
    def __init__(self, dims: int, channels: int, bins: Sequence[int], norm: str) -> None:
        super().__init__()
        self.bins = tuple(bins)
        reduced = max(1, channels // len(self.bins))
        # Norms on 1-cell maps would see one value: the branches have none.
        self.branches = nn.ModuleList(
            blocks.conv_norm_relu(dims, channels, reduced, 1, "none") for _ in self.bins
        )
        self.width = channels + reduced * len(self.bins)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[2:]
        pooled = [
            resize(branch(_pool(x, cells)), size)
            for cells, branch in zip(self.bins, self.branches, strict=True)
        ]
        return torch.cat([x, *pooled], dim=1)


class AtrousPyramid(nn.Module):
    def __init__(self, dims: int, i: int, o: int, rates: Sequence[int], norm: str) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            [blocks.conv_norm_relu(dims, i, o, 1, norm)]
            + [blocks.conv_norm_relu(dims, i, o, 3, norm, dilation=rate) for rate in rates]
        )
        self.image = blocks.conv_norm_relu(dims, i, o, 1, "none")
        self.project = blocks.conv_norm_relu(dims, o * (len(rates) + 2), o, 1, norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[2:]
        image = self.image(_pool(x, 1)).expand(-1, -1, *size)
        return self.project(torch.cat([*(branch(x) for branch in self.branches), image], dim=1))
