"""`pspnet`: Zhao et al. 2017, "Pyramid Scene Parsing Network": a residual encoder that lowers
the resolution by `stride ** (levels - 1)`, a pyramid pooling module over its deepest features
(global context at 1, 2, 3 and 6 cells per axis), a 3x3 conv to class scores and (bi)linear
upsampling to the input's size. The pooling sees the whole input: no finite receptive field."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from . import blocks
from .context import PyramidPooling, resize
from .levels import LevelsConfig
from .networks import register_architecture
from .resunet import ResidualBlock


@dataclass(frozen=True)
class PSPNetConfig(LevelsConfig):
    """`LevelsConfig`'s fields, and `bins`: the pyramid's cells per axis."""

    bins: tuple[int, ...] = (1, 2, 3, 6)

    @property
    def receptive_field(self) -> None:
        return None  # global pooling: every output depends on the whole input


class Encoder(nn.Module):
    """Residual blocks with a strided 3x3 conv between levels; returns every level's output."""

    def __init__(self, config: LevelsConfig) -> None:
        super().__init__()
        c = config
        widths = [c.in_channels, *c.channels]
        self.blocks = nn.ModuleList(
            ResidualBlock(c, i, o) for i, o in zip(widths, widths[1:], strict=False)
        )
        self.down = nn.ModuleList(
            blocks.conv(c.dims, w, w, 3, stride=c.stride) for w in c.channels[:-1]
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for level, block in enumerate(self.blocks):
            x = block(x)
            features.append(x)
            if level < len(self.down):
                x = self.down[level](x)
        return features


class PSPNet(nn.Module):
    def __init__(self, config: PSPNetConfig) -> None:
        super().__init__()
        c = self.config = config
        self.encoder = Encoder(c)
        self.pyramid = PyramidPooling(c.dims, c.channels[-1], c.bins, c.norm)
        self.fuse = blocks.conv_norm_relu(c.dims, self.pyramid.width, c.channels[-1], 3, c.norm)
        self.head = blocks.conv(c.dims, c.channels[-1], c.out_channels, 1)
        self._head = blocks.HEADS.get(c.head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        size = x.shape[2:]
        x = blocks.pad_to_multiple(x, c.shift_multiple)
        deepest = self.encoder(x)[-1]
        scores = self.head(self.fuse(self.pyramid(deepest)))
        return blocks.crop(self._head(resize(scores, x.shape[2:])), size)


register_architecture("pspnet", PSPNetConfig, PSPNet)
