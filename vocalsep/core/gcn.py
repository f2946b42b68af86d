"""`gcn`: Peng et al. 2017, "Large Kernel Matters": a ResNet-like encoder (residual blocks and
2x strided downsampling), at every resolution a global convolution module (a k x 1 then 1 x k
branch plus a 1 x k then k x 1 branch, summed: a large k x k receptive field at the cost of
2 x 2k weights) that maps the features to class scores, a boundary refinement block (a small
residual conv block on the scores), and a decoder that upsamples the coarser scores by
transposed convolution, adds them and refines again. In 1-D the two branches are one k-long
convolution each."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from . import blocks
from .errors import ConfigError
from .levels import LevelsConfig
from .networks import register_architecture
from .resunet import ResidualBlock


@dataclass(frozen=True)
class GCNConfig(LevelsConfig):
    """`LevelsConfig`'s fields, and `large_kernel`: the global convolution's k (odd)."""

    large_kernel: int = 11

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.large_kernel < 3 or self.large_kernel % 2 == 0:
            raise ConfigError(f"large_kernel must be odd and >= 3, got {self.large_kernel}")

    @property
    def receptive_field(self) -> int:
        reach = 2 * (self.kernel_size // 2)
        large = self.large_kernel // 2 + 2  # the GCN, then a 3-wide refinement, twice
        field = 0
        for level in range(len(self.channels)):
            field += (reach + large + 2 * (self.stride - 1)) * self.stride**level
        return field


def _axis_kernel(dims: int, k: int, axis: int) -> tuple[int, ...] | int:
    """A kernel `k` long along `axis`, 1 along the other (2-D), or `k` (1-D)."""
    if dims == 1:
        return k
    return (k, 1) if axis == 0 else (1, k)


class GlobalConvolution(nn.Module):
    def __init__(self, dims: int, i: int, o: int, k: int) -> None:
        super().__init__()
        conv = {1: nn.Conv1d, 2: nn.Conv2d}[dims]

        def branch(first: int) -> nn.Module:
            kernels = [_axis_kernel(dims, k, first), _axis_kernel(dims, k, 1 - first)]
            pads = [tuple(s // 2 for s in kk) if dims == 2 else kk // 2 for kk in kernels]
            return nn.Sequential(
                conv(i, o, kernels[0], padding=pads[0]), conv(o, o, kernels[1], padding=pads[1])
            )

        self.left, self.right = branch(0), branch(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.left(x) + self.right(x)


class BoundaryRefinement(nn.Module):
    def __init__(self, dims: int, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            blocks.conv(dims, channels, channels, 3),
            nn.ReLU(),
            blocks.conv(dims, channels, channels, 3),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class GCN(nn.Module):
    def __init__(self, config: GCNConfig) -> None:
        super().__init__()
        c = self.config = config
        widths = [c.in_channels, *c.channels]
        self.encoder = nn.ModuleList(
            ResidualBlock(c, i, o) for i, o in zip(widths, widths[1:], strict=False)
        )
        self.down = nn.ModuleList(
            blocks.conv(c.dims, w, w, 3, stride=c.stride) for w in c.channels[:-1]
        )
        out = c.out_channels
        self.gcn = nn.ModuleList(
            GlobalConvolution(c.dims, w, out, c.large_kernel) for w in c.channels
        )
        self.refine = nn.ModuleList(BoundaryRefinement(c.dims, out) for _ in c.channels)
        self.fuse_refine = nn.ModuleList(BoundaryRefinement(c.dims, out) for _ in c.channels[:-1])
        self.up = nn.ModuleList(
            {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d}[c.dims](out, out, c.stride, c.stride)
            for _ in c.channels[:-1]
        )
        self._head = blocks.HEADS.get(c.head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        size = x.shape[2:]
        x = blocks.pad_to_multiple(x, c.shift_multiple)
        scores = []
        for level, block in enumerate(self.encoder):
            x = block(x)
            scores.append(self.refine[level](self.gcn[level](x)))
            if level < len(self.down):
                x = self.down[level](x)
        y = scores[-1]
        for level in reversed(range(len(self.up))):
            y = self.fuse_refine[level](self.up[level](y) + scores[level])
        y = self._head(y)
        return blocks.crop(y, size)


register_architecture("gcn", GCNConfig, GCN)
