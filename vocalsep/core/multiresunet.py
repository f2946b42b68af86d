"""`multiresunet`: Ibtehaz and Rahman 2020, "MultiResUNet": a U-Net whose blocks are MultiRes
blocks (three successive convs whose outputs, a sixth, a third and a half of the width, are
concatenated: the receptive fields of one, two and three convs at once, plus a 1x1 shortcut),
and whose skips pass through residual paths (a chain of conv + 1x1 shortcut units, longer for
the shallower levels, to close the semantic gap to the decoder)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from . import blocks
from .levels import Levels, LevelsConfig, levels_receptive_field
from .networks import register_architecture


@dataclass(frozen=True)
class MultiResUNetConfig(LevelsConfig):
    """`LevelsConfig`'s fields (`kernel_size` is each of the three convs' size)."""

    @property
    def block_reach(self) -> int:
        return 3 * (self.kernel_size // 2)

    @property
    def receptive_field(self) -> int:
        # The residual path of level l has levels - 1 - l convs at that level's resolution.
        depth, reach = len(self.channels), self.kernel_size // 2
        paths = sum((depth - 1 - level) * reach * self.stride**level for level in range(depth))
        return levels_receptive_field(self, self.block_reach) + paths


def _split(width: int) -> tuple[int, int, int]:
    first, second = max(1, width // 6), max(1, width // 3)
    return first, second, max(1, width - first - second)


class MultiResBlock(nn.Module):
    def __init__(self, config: MultiResUNetConfig, i: int, o: int) -> None:
        super().__init__()
        c = config
        w1, w2, w3 = _split(o)
        self.convs = nn.ModuleList(
            blocks.conv_norm_relu(c.dims, a, b, c.kernel_size, c.norm)
            for a, b in ((i, w1), (w1, w2), (w2, w3))
        )
        self.shortcut = blocks.conv(c.dims, i, w1 + w2 + w3, 1)
        self.out = nn.Sequential(blocks.conv(c.dims, w1 + w2 + w3, o, 1), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs, y = [], x
        for conv in self.convs:
            y = conv(y)
            outputs.append(y)
        return self.out(torch.cat(outputs, dim=1) + self.shortcut(x))


class ResidualPath(nn.Module):
    """`length` units of (conv + 1x1 shortcut, ReLU) on a skip; gating is not used."""

    def __init__(self, config: MultiResUNetConfig, channels: int, length: int) -> None:
        super().__init__()
        c = config
        self.convs = nn.ModuleList(
            blocks.conv(c.dims, channels, channels, c.kernel_size) for _ in range(length)
        )
        self.shortcuts = nn.ModuleList(
            blocks.conv(c.dims, channels, channels, 1) for _ in range(length)
        )

    def forward(self, skip: torch.Tensor, gating: torch.Tensor) -> torch.Tensor:
        for conv, shortcut in zip(self.convs, self.shortcuts, strict=True):
            skip = torch.relu(conv(skip) + shortcut(skip))
        return skip


def build(config: MultiResUNetConfig) -> Levels:
    depth = len(config.channels)
    return Levels(
        config,
        lambda i, o: MultiResBlock(config, i, o),
        lambda level, skip, gating: ResidualPath(config, skip, depth - 1 - level),
    )


register_architecture("multiresunet", MultiResUNetConfig, build)
