"""`segnet`: Badrinarayanan, Kendall and Cipolla 2017, "SegNet": an encoder of conv blocks and
2x max-pooling that remembers where each maximum was, and a mirrored decoder that upsamples by
max-unpooling to those positions (no learned upsampling, no skip features), then conv blocks.
Stride 2."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from . import blocks
from .errors import ConfigError
from .levels import LevelsConfig
from .networks import register_architecture


@dataclass(frozen=True)
class SegNetConfig(LevelsConfig):
    """`LevelsConfig`'s fields; each level is two convs then 2x max-pooling (mirrored by
    unpooling and two convs in the decoder)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.stride != 2:
            raise ConfigError("segnet pools by 2: stride must be 2")

    @property
    def shift_multiple(self) -> int:
        return 2 ** len(self.channels)

    @property
    def receptive_field(self) -> int:
        reach = 2 * (self.kernel_size // 2)
        return sum((2 * reach + 2) * 2**level for level in range(len(self.channels) + 1))


class SegNet(nn.Module):
    def __init__(self, config: SegNetConfig) -> None:
        super().__init__()
        c = self.config = config

        def double(i: int, o: int) -> nn.Module:
            return blocks.double_conv(c.dims, i, o, c.kernel_size, c.norm)

        widths = [c.in_channels, *c.channels]
        self.encoder = nn.ModuleList(double(i, o) for i, o in zip(widths, widths[1:], strict=False))
        # Decoder level l turns width channels[l] back into channels[l - 1] (channels[0] last).
        outputs = [c.channels[0], *c.channels[:-1]]
        self.decoder = nn.ModuleList(double(i, o) for i, o in zip(c.channels, outputs, strict=True))
        self.head = blocks.conv(c.dims, c.channels[0], c.out_channels, 1)
        self._head = blocks.HEADS.get(c.head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        size = x.shape[2:]
        x = blocks.pad_to_multiple(x, c.shift_multiple)
        pool = F.max_pool1d if c.dims == 1 else F.max_pool2d
        unpool = F.max_unpool1d if c.dims == 1 else F.max_unpool2d
        where = []
        for block in self.encoder:
            x = block(x)
            shape = x.shape[2:]
            x, indices = pool(x, 2, return_indices=True)
            where.append((indices, shape))
        for level in reversed(range(len(self.decoder))):
            indices, shape = where[level]
            x = self.decoder[level](unpool(x, indices, 2, output_size=shape))
        x = self._head(self.head(x))
        return blocks.crop(x, size)


register_architecture("segnet", SegNetConfig, SegNet)
