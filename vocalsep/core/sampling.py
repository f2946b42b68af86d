"""How an encoder level lowers the resolution and a decoder level raises it: parts chosen by
name (`DOWNSAMPLINGS`, `UPSAMPLINGS`) that the encoder-decoder networks are assembled from.

Every part works for 1-D and 2-D features (`dims`), by a factor `stride` per axis.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from . import blocks
from .registry import Registry

Block = Callable[[torch.Tensor], torch.Tensor]


class StridedConv:
    """The level's conv is strided (U-Net, Jansson et al.); the skip of resolution r_k is the
    level's input, and the full-resolution input is no skip."""

    def conv_stride(self, stride: int) -> int:
        return stride

    def skip_widths(self, channels: Sequence[int]) -> list[int]:
        """Width of the skip at r_0 .. r_{depth-1} (0: none)."""
        return [0, *channels[:-1]]

    def decoder_width(self, channels: Sequence[int], level: int) -> int:
        """The width decoder level `level` (> 0) emits: the encoder feature's at its
        resolution."""
        return channels[level - 1]

    def step(self, block: Block, x: torch.Tensor, level: int, stride: int, dims: int):
        """(the next resolution's features, the skip of this one)."""
        return block(x), (x if level else None)


class Decimate:
    """A stride-1 conv, then every `stride`-th sample kept (Wave-U-Net); the skip is the
    conv's output before decimation."""

    def conv_stride(self, stride: int) -> int:
        return 1

    def skip_widths(self, channels: Sequence[int]) -> list[int]:
        return list(channels)

    def decoder_width(self, channels: Sequence[int], level: int) -> int:
        return channels[level]

    def step(self, block: Block, x: torch.Tensor, level: int, stride: int, dims: int):
        x = block(x)
        return x[(..., *[slice(None, None, stride)] * dims)], x


class TransposedConv:
    """The level's transposed conv raises the resolution; the skip joins its output."""

    in_conv = True  # the conv itself upsamples: the skip is fused after it

    def conv(self, dims: int, i: int, o: int, kernel: int, stride: int, bias: bool) -> nn.Module:
        return blocks.conv_transpose(dims, i, o, kernel, stride, bias)

    def upsampler(self, dims: int, channels: int, stride: int) -> nn.Module | None:
        return None

    def reach(self, stride: int) -> int:
        """Samples of the lower resolution between an upsampled sample and what it mixes."""
        return 0

    def upsample(self, x: torch.Tensor, upsampler, stride: int, dims: int) -> torch.Tensor:
        return x


class Interpolate(TransposedConv):
    """(Bi)linear interpolation, then the skip fusion and a stride-1 conv."""

    in_conv = False

    def conv(self, dims: int, i: int, o: int, kernel: int, stride: int, bias: bool) -> nn.Module:
        return blocks.conv(dims, i, o, kernel, bias=bias)

    def reach(self, stride: int) -> int:
        return math.ceil(3 * stride / 2)

    def upsample(self, x: torch.Tensor, upsampler, stride: int, dims: int) -> torch.Tensor:
        mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[dims]
        return F.interpolate(x, scale_factor=stride, mode=mode, align_corners=False)


class Learned(Interpolate):
    """Interpolation on the decimation grid with learned per-channel weights that start linear
    (Wave-U-Net's learned upsampling), then the skip fusion and a stride-1 conv."""

    def upsampler(self, dims: int, channels: int, stride: int) -> nn.Module | None:
        return blocks.LearnedInterpolation(dims, channels, stride)

    def reach(self, stride: int) -> int:
        return stride - 1

    def upsample(self, x: torch.Tensor, upsampler, stride: int, dims: int) -> torch.Tensor:
        return upsampler(x)


DOWNSAMPLINGS: Registry[StridedConv | Decimate] = Registry("downsampling")
DOWNSAMPLINGS.register("conv", StridedConv())
DOWNSAMPLINGS.register("decimate", Decimate())
UPSAMPLINGS: Registry[TransposedConv] = Registry("upsampling")
UPSAMPLINGS.register("transposed", TransposedConv())
UPSAMPLINGS.register("interpolate", Interpolate())
UPSAMPLINGS.register("learned", Learned())
