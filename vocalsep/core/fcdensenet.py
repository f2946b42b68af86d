"""`fcdensenet`: Jegou et al. 2017, "The One Hundred Layers Tiramisu: Fully Convolutional
DenseNets for Semantic Segmentation" (FC-DenseNet): dense blocks with transitions down and up
in a U-Net (see `dense.DenseUNet`), a 1x1 head. Defaults: a small Tiramisu (growth 12, four
levels of 4 layers, a 4-layer bottleneck)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from . import blocks
from .config import Config
from .dense import DenseUNet, dense_reach
from .errors import ConfigError
from .networks import register_architecture


@dataclass(frozen=True)
class FCDenseNetConfig(Config):
    dims: int = 2
    in_channels: int = 1
    out_channels: int = 1
    first_channels: int = 24
    layers: tuple[int, ...] = (4, 4, 4, 4)
    bottleneck_layers: int = 4
    growth: int = 12
    kernel_size: int = 3
    norm: str = "batch"
    head: str = "logits"

    def __post_init__(self) -> None:
        if self.dims not in (1, 2) or not self.layers or min(self.layers) < 1:
            raise ConfigError("fcdensenet needs dims 1 or 2 and one or more levels of layers")
        if self.kernel_size % 2 == 0 or self.growth < 1 or self.first_channels < 1:
            raise ConfigError("fcdensenet needs an odd kernel, growth >= 1, first_channels >= 1")

    @property
    def shift_multiple(self) -> int:
        return 2 ** len(self.layers)

    @property
    def receptive_field(self) -> int:
        return dense_reach(self.layers, self.bottleneck_layers, self.kernel_size)


class FCDenseNet(nn.Module):
    def __init__(self, config: FCDenseNetConfig) -> None:
        super().__init__()
        c = self.config = config
        self.body = DenseUNet(
            c.dims, c.in_channels, c.first_channels, c.layers, c.bottleneck_layers, c.growth,
            c.kernel_size, c.norm,
        )  # fmt: skip
        self.head = blocks.conv(c.dims, self.body.width, c.out_channels, 1)
        self._head = blocks.HEADS.get(c.head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[2:]
        x = blocks.pad_to_multiple(x, self.config.shift_multiple)
        return blocks.crop(self._head(self.head(self.body(x))), size)


register_architecture("fcdensenet", FCDenseNetConfig, FCDenseNet)
