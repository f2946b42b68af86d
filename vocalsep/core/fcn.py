"""`fcn`: a fully convolutional network in the FCN-8s style (Long, Shelhamer and Darrell 2015):
an encoder of conv blocks and max-pooling, class scores (1x1 convs) from the last three pooled
resolutions, and a decoder that upsamples the coarsest scores with transposed convolutions
initialised to bilinear interpolation, adding the finer scores on the way (additive skip
fusion), then upsamples to the input's resolution. Stride 2; three or more levels."""

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
class FCNConfig(LevelsConfig):
    """`LevelsConfig`'s fields; `channels` are the widths of the encoder levels (each two
    convs, then 2x max-pooling)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.stride != 2 or len(self.channels) < 3:
            raise ConfigError("fcn needs stride 2 and at least three levels of channels")

    @property
    def shift_multiple(self) -> int:
        return self.stride ** len(self.channels)

    @property
    def receptive_field(self) -> int:
        # The encoder's convs and pools, then the upsampling kernels (4 samples wide at each
        # of the two fusions, 2 * factor at the last), all at their own resolutions.
        reach, field = 2 * (self.kernel_size // 2), 0
        for level in range(len(self.channels)):
            field += (reach + 1) * 2**level
        depth = len(self.channels)
        return field + 2 * 2 ** (depth - 1) + 2 * 2 ** (depth - 2) + 2 ** (depth - 2)


def bilinear_transpose(dims: int, channels: int, factor: int) -> nn.Module:
    """A transposed conv that upsamples by `factor` and starts as (bi)linear interpolation of
    each channel on its own (kernel 2 * factor, padding factor // 2)."""
    kernel = 2 * factor
    conv = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d}[dims](
        channels, channels, kernel, stride=factor, padding=factor // 2, bias=False
    )
    centre = (kernel - 1) / 2
    taps = 1 - torch.abs(torch.arange(kernel, dtype=torch.float32) - centre) / factor
    weight = taps if dims == 1 else taps[:, None] * taps[None, :]
    with torch.no_grad():
        conv.weight.zero_()
        for channel in range(channels):
            conv.weight[channel, channel] = weight
    return conv


class FCN(nn.Module):
    def __init__(self, config: FCNConfig) -> None:
        super().__init__()
        c = self.config = config
        widths = [c.in_channels, *c.channels]
        self.encoder = nn.ModuleList(
            blocks.double_conv(c.dims, i, o, c.kernel_size, c.norm)
            for i, o in zip(widths, widths[1:], strict=False)
        )
        self.scores = nn.ModuleList(
            blocks.conv(c.dims, w, c.out_channels, 1) for w in c.channels[-3:]
        )
        self.up = nn.ModuleList(bilinear_transpose(c.dims, c.out_channels, 2) for _ in range(2))
        self.final = bilinear_transpose(c.dims, c.out_channels, 2 ** (len(c.channels) - 2))
        self._head = blocks.HEADS.get(c.head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        size = x.shape[2:]
        x = blocks.pad_to_multiple(x, c.shift_multiple)
        pool = F.max_pool1d if c.dims == 1 else F.max_pool2d
        pooled = []
        for block in self.encoder:
            x = pool(block(x), 2)
            pooled.append(x)
        shallow, middle, deep = (
            score(f) for score, f in zip(self.scores, pooled[-3:], strict=True)
        )
        x = self.up[0](deep) + middle
        x = self.up[1](x) + shallow
        x = self._head(self.final(x))
        return blocks.crop(x, size)


register_architecture("fcn", FCNConfig, FCN)
