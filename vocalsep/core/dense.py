"""Densely connected blocks (Huang et al. 2017, DenseNet) and the FC-DenseNet U-Net built from
them (Jegou et al. 2017, "The One Hundred Layers Tiramisu"), shared by `fcdensenet` and
`mmdensenet`.

A dense block of `layers` layers, each norm-ReLU-conv emitting `growth` channels from the
concatenation of the block's input and every earlier layer's output, returns the new features
(and its input too, with `keep_input`)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from . import blocks


class DenseBlock(nn.Module):
    def __init__(
        self, dims: int, channels: int, layers: int, growth: int, kernel: int, norm: str,
        keep_input: bool,
    ) -> None:  # fmt: skip
        super().__init__()
        self.keep_input = keep_input
        self.layers = nn.ModuleList(
            nn.Sequential(
                blocks.norm(norm, dims, channels + n * growth),
                nn.ReLU(),
                blocks.conv(dims, channels + n * growth, growth, kernel),
            )
            for n in range(layers)
        )
        self.width = (channels if keep_input else 0) + layers * growth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.layers:
            features.append(layer(torch.cat(features, dim=1)))
        return torch.cat(features if self.keep_input else features[1:], dim=1)


class DenseUNet(nn.Module):
    """FC-DenseNet: a first conv, dense blocks with transitions down (norm-ReLU-1x1 conv, 2x
    max-pooling) keeping their skips, a bottleneck dense block, and transitions up (a 3x3
    transposed conv of the new features) concatenated to the skips, each followed by a dense
    block; the last one keeps its input. Returns `(batch, self.width, *spatial)` features."""

    def __init__(
        self, dims: int, in_channels: int, first: int, layers: Sequence[int], bottleneck: int,
        growth: int, kernel: int, norm: str,
    ) -> None:  # fmt: skip
        super().__init__()
        self.first = blocks.conv(dims, in_channels, first, kernel)
        width, skips = first, []
        self.down, self.transitions = nn.ModuleList(), nn.ModuleList()
        for count in layers:
            block = DenseBlock(dims, width, count, growth, kernel, norm, keep_input=True)
            self.down.append(block)
            width = block.width
            skips.append(width)
            self.transitions.append(
                nn.Sequential(
                    blocks.norm(norm, dims, width), nn.ReLU(), blocks.conv(dims, width, width, 1)
                )
            )
        self.bottleneck = DenseBlock(dims, width, bottleneck, growth, kernel, norm, False)
        new = self.bottleneck.width
        transpose = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d}[dims]
        self.up, self.ups = nn.ModuleList(), nn.ModuleList()
        for index, count in reversed(list(enumerate(layers))):
            self.ups.append(transpose(new, new, 3, stride=2, padding=1, output_padding=1))
            block = DenseBlock(dims, new + skips[index], count, growth, kernel, norm, index == 0)
            self.up.append(block)
            new = block.width
        self.width = new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pool = F.max_pool1d if x.dim() == 3 else F.max_pool2d
        x = self.first(x)
        skips = []
        for block, transition in zip(self.down, self.transitions, strict=True):
            x = block(x)
            skips.append(x)
            x = pool(transition(x), 2)
        x = self.bottleneck(x)
        for up, block, skip in zip(self.ups, self.up, reversed(skips), strict=True):
            x = block(torch.cat([up(x), skip], dim=1))
        return x


def dense_reach(layers: Sequence[int], bottleneck: int, kernel: int) -> int:
    """An upper bound of a DenseUNet's receptive field: per level its two dense blocks' convs,
    the pooling and the transposed conv, the bottleneck at the lowest resolution, the first
    conv."""
    half = kernel // 2
    field = half
    for level, count in enumerate(layers):
        field += (2 * count * half + 3) * 2**level
    return field + bottleneck * half * 2 ** len(layers)
