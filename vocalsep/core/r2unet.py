"""`r2unet`: Alom et al. 2018, "Recurrent Residual Convolutional Neural Network based on U-Net
(R2U-Net)": a U-Net whose blocks are recurrent residual units. A 1x1 conv sets the width, then
two recurrent conv layers, each applying one conv `steps + 1` times to (input + its last
output), and the unit's input is added back."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from . import blocks
from .levels import Levels, LevelsConfig
from .networks import register_architecture


@dataclass(frozen=True)
class R2UNetConfig(LevelsConfig):
    """`LevelsConfig`'s fields, and `steps`: the recurrent conv layers' time steps (t)."""

    steps: int = 2

    @property
    def block_reach(self) -> int:
        return 2 * (self.steps + 1) * (self.kernel_size // 2)


class RecurrentConv(nn.Module):
    def __init__(self, config: R2UNetConfig, channels: int) -> None:
        super().__init__()
        c = self.config = config
        self.conv = blocks.conv_norm_relu(c.dims, channels, channels, c.kernel_size, c.norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        state = self.conv(x)
        for _ in range(self.config.steps):
            state = self.conv(x + state)
        return state


class RecurrentResidualUnit(nn.Module):
    def __init__(self, config: R2UNetConfig, i: int, o: int) -> None:
        super().__init__()
        self.width = blocks.conv(config.dims, i, o, 1)
        self.body = nn.Sequential(RecurrentConv(config, o), RecurrentConv(config, o))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.width(x)
        return x + self.body(x)


def build(config: R2UNetConfig) -> Levels:
    return Levels(config, lambda i, o: RecurrentResidualUnit(config, i, o))


register_architecture("r2unet", R2UNetConfig, build)
