"""`resunet`: a U-Net whose blocks are residual (He et al. 2016 blocks in the U-Net of
Ronneberger et al. 2015, as in Zhang, Liu and Wang 2018, "Road extraction by deep residual
U-Net"): two conv-norm layers plus a shortcut (1x1 where the width changes), then ReLU."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from . import blocks
from .levels import Levels, LevelsConfig
from .networks import register_architecture


@dataclass(frozen=True)
class ResUNetConfig(LevelsConfig):
    """Its fields are `LevelsConfig`'s (defaults: 2-D, widths 16-256 over five levels, 3x3
    kernels, batch norm, logits)."""


class ResidualBlock(nn.Module):
    def __init__(self, config: ResUNetConfig, i: int, o: int) -> None:
        super().__init__()
        c = config
        self.body = nn.Sequential(
            *blocks.conv_norm_relu(c.dims, i, o, c.kernel_size, c.norm),
            blocks.conv(c.dims, o, o, c.kernel_size),
            blocks.norm(c.norm, c.dims, o),
        )
        self.shortcut = nn.Identity() if i == o else blocks.conv(c.dims, i, o, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


def build(config: ResUNetConfig) -> Levels:
    return Levels(config, lambda i, o: ResidualBlock(config, i, o))


register_architecture("resunet", ResUNetConfig, build)
