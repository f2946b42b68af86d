"""`mmdensenet`: Takahashi and Mitsufuji 2017, "Multi-scale multi-band DenseNets for audio
source separation" (MMDenseNet): the frequency axis (the second-to-last, height on images, so
bands are horizontal strips) is cut into bands, each separated by a dense U-Net of its own
(`dense.DenseUNet`, multi-scale), the full band by another; the bands' outputs are put back
together along frequency, concatenated with the full band's, and a last dense block and a 1x1
conv give the output. 2-D only (the bands are along frequency)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from . import blocks
from .config import Config
from .dense import DenseBlock, DenseUNet, dense_reach
from .errors import ConfigError
from .networks import register_architecture


@dataclass(frozen=True)
class MMDenseNetConfig(Config):
    """`band_edges`: where the bands meet, as fractions of the frequency axis (default: one
    edge in the middle, two bands); the other fields size each dense U-Net."""

    dims: int = 2
    in_channels: int = 1
    out_channels: int = 1
    band_edges: tuple[float, ...] = (0.5,)
    first_channels: int = 16
    layers: tuple[int, ...] = (3, 3, 3)
    bottleneck_layers: int = 3
    growth: int = 8
    final_layers: int = 3
    kernel_size: int = 3
    norm: str = "batch"
    head: str = "logits"

    def __post_init__(self) -> None:
        if self.dims != 2:
            raise ConfigError("mmdensenet splits the frequency axis into bands: dims must be 2")
        if list(self.band_edges) != sorted(set(self.band_edges)) or not all(
            0 < edge < 1 for edge in self.band_edges
        ):
            raise ConfigError(f"band_edges must rise strictly within (0, 1): {self.band_edges}")
        if not self.layers or min(self.layers) < 1 or self.kernel_size % 2 == 0:
            raise ConfigError("mmdensenet needs one or more levels of layers and an odd kernel")

    @property
    def shift_multiple(self) -> int:
        return 2 ** len(self.layers)

    @property
    def receptive_field(self) -> int:
        """Along time (the last axis); the bands make frequency no translation axis."""
        final = self.final_layers * (self.kernel_size // 2)
        return dense_reach(self.layers, self.bottleneck_layers, self.kernel_size) + final


class MMDenseNet(nn.Module):
    def __init__(self, config: MMDenseNetConfig) -> None:
        super().__init__()
        c = self.config = config

        def unet() -> DenseUNet:
            return DenseUNet(
                2, c.in_channels, c.first_channels, c.layers, c.bottleneck_layers, c.growth,
                c.kernel_size, c.norm,
            )  # fmt: skip

        self.bands = nn.ModuleList(unet() for _ in range(len(c.band_edges) + 1))
        self.full = unet()
        width = self.bands[0].width + self.full.width
        self.final = DenseBlock(2, width, c.final_layers, c.growth, c.kernel_size, c.norm, False)
        self.head = blocks.conv(2, self.final.width, c.out_channels, 1)
        self._head = blocks.HEADS.get(c.head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        size = x.shape[2:]
        unit = c.shift_multiple
        # Every band is a whole number of the U-Nets' unit high.
        x = blocks.pad_to_multiple(x, unit * (len(c.band_edges) + 1))
        height = x.shape[-2]
        cuts = [0, *(round(edge * height / unit) * unit for edge in c.band_edges), height]
        bands = [
            net(x[..., low:high, :])
            for net, low, high in zip(self.bands, cuts, cuts[1:], strict=False)
        ]
        joined = torch.cat([torch.cat(bands, dim=-2), self.full(x)], dim=1)
        return blocks.crop(self._head(self.head(self.final(joined))), size)


register_architecture("mmdensenet", MMDenseNetConfig, MMDenseNet)
