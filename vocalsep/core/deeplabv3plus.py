"""`deeplabv3plus`: Chen et al. 2018, "Encoder-Decoder with Atrous Separable Convolution"
(DeepLab v3+): a residual encoder whose deepest features go through atrous spatial pyramid
pooling (1x1 and dilated 3x3 convs at several rates plus a globally pooled branch), upsampled
(bi)linearly to the resolution of the second level and concatenated with its features (reduced
by a 1x1 conv), then two 3x3 convs, class scores and upsampling to the input's size. The
image-level branch sees the whole input: no finite receptive field."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from . import blocks
from .context import AtrousPyramid, resize
from .levels import LevelsConfig
from .networks import register_architecture
from .pspnet import Encoder


@dataclass(frozen=True)
class DeepLabV3PlusConfig(LevelsConfig):
    """`LevelsConfig`'s fields, and `rates`: the ASPP's dilation rates (at the deepest
    resolution)."""

    rates: tuple[int, ...] = (2, 4, 6)

    @property
    def receptive_field(self) -> None:
        return None  # the image-level pooling branch sees the whole input


class DeepLabV3Plus(nn.Module):
    def __init__(self, config: DeepLabV3PlusConfig) -> None:
        super().__init__()
        c = self.config = config
        self.encoder = Encoder(c)
        deep, low = c.channels[-1], c.channels[1]
        self.aspp = AtrousPyramid(c.dims, deep, deep, c.rates, c.norm)
        reduced = max(1, low // 2)
        self.low = blocks.conv_norm_relu(c.dims, low, reduced, 1, c.norm)
        self.decoder = nn.Sequential(
            blocks.conv_norm_relu(c.dims, deep + reduced, deep, 3, c.norm),
            blocks.conv_norm_relu(c.dims, deep, deep, 3, c.norm),
        )
        self.head = blocks.conv(c.dims, deep, c.out_channels, 1)
        self._head = blocks.HEADS.get(c.head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        size = x.shape[2:]
        x = blocks.pad_to_multiple(x, c.shift_multiple)
        features = self.encoder(x)
        low = features[1]
        deep = resize(self.aspp(features[-1]), low.shape[2:])
        scores = self.head(self.decoder(torch.cat([deep, self.low(low)], dim=1)))
        return blocks.crop(self._head(resize(scores, x.shape[2:])), size)


register_architecture("deeplabv3plus", DeepLabV3PlusConfig, DeepLabV3Plus)
