"""Dimension-agnostic encoder-decoder segmentation networks (U-Net, FCN, Wave-U-Net family).

Resolution `r_k` is the (padded) input size divided by `stride ** k`; the encoder goes from
`r_0` down to `r_depth`, the decoder back up, fusing the encoder's skip feature at each `r_k`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import torch
from torch import nn

from . import blocks
from .config import Config
from .errors import ConfigError
from .networks import register_architecture
from .registry import Registry
from .sampling import DOWNSAMPLINGS, UPSAMPLINGS

DOWNSAMPLES = tuple(DOWNSAMPLINGS.names())  # conv, decimate
UPSAMPLES = tuple(UPSAMPLINGS.names())  # interpolate, learned, transposed
SKIPS = tuple(blocks.SKIP_FUSIONS.names())  # concat (U-Net), add (FCN), none
HEADS = tuple(blocks.HEADS.names())  # mask, logits


@dataclass(frozen=True)
class EncoderDecoderConfig(Config):
    """An encoder-decoder network; the defaults are Jansson et al. (2017)'s singing-voice U-Net.

    dims:                1 (input `(batch, channels, length)`), 2 (`(batch, channels, h, w)`) or
                         3 (volumes: the 3-D U-Net of Cicek et al. 2016).
    channels:            encoder widths; the depth is `len(channels)`.
    downsample:          "conv" (strided conv) or "decimate" (stride-1 conv, keep every
                         stride-th sample, as in Wave-U-Net).
    upsample:            "transposed" (transposed conv), "interpolate" ((bi)linear upsampling,
                         skip fusion, then a stride-1 conv) or "learned" (interpolation on the
                         decimation grid with learned per-channel weights that start linear,
                         then skip fusion and a stride-1 conv, as in Wave-U-Net).
    up_kernel_size:      decoder kernel; 0 means `kernel_size`.
    decoder_dropout:     dropout per decoder level, deepest first; missing levels get none and
                         the last layer never has any when it emits the output.
    skip:                "concat" (U-Net), "add" (FCN) or "none".
    bottleneck_channels: > 0 adds a stride-1 conv block at the lowest resolution.
    head:                "mask" (sigmoid output) or "logits" (raw output).
    head_kernel_size:    0: the last decoder layer emits `out_channels` directly; k > 0: it
                         emits `channels[0]` features and a size-k conv maps them to the output.
    input_skip:          concatenate the network input to the features before the conv head.
    convs_per_level:     convolutions per encoder and decoder level. 1: the strided (or
                         up-) conv alone; n > 1 adds n - 1 stride-1 conv blocks after the
                         encoder's strided conv and after the decoder's skip fusion, as in
                         Ronneberger et al.'s U-Net (needs a conv head).
    """

    dims: int = 2
    in_channels: int = 1
    out_channels: int = 1
    channels: tuple[int, ...] = (16, 32, 64, 128, 256, 512)
    kernel_size: int = 5
    stride: int = 2
    downsample: str = "conv"
    upsample: str = "transposed"
    up_kernel_size: int = 0
    norm: str = "batch"
    encoder_activation: str = "leaky_relu"
    decoder_activation: str = "relu"
    negative_slope: float = 0.2
    decoder_dropout: tuple[float, ...] = (0.5, 0.5, 0.5)
    skip: str = "concat"
    bottleneck_channels: int = 0
    head: str = "mask"
    head_kernel_size: int = 0
    input_skip: bool = False
    convs_per_level: int = 1

    def __post_init__(self) -> None:
        choices = {
            "downsample": DOWNSAMPLES,
            "upsample": UPSAMPLES,
            "norm": blocks.NORMS,
            "encoder_activation": blocks.ACTIVATIONS,
            "decoder_activation": blocks.ACTIVATIONS,
            "skip": SKIPS,
            "head": HEADS,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.dims not in (1, 2, 3):  # 3: the volumetric U-Net (Cicek et al. 2016)
            raise ConfigError(f"dims must be 1, 2 or 3, got {self.dims}")
        if self.in_channels < 1 or self.out_channels < 1:
            raise ConfigError("in_channels and out_channels must be >= 1")
        if not self.channels or min(self.channels) < 1:
            raise ConfigError(f"channels must be a non-empty tuple of widths >= 1: {self.channels}")
        if self.stride < 1:
            raise ConfigError(f"stride must be >= 1, got {self.stride}")
        # Padding k // 2 keeps sizes (up to the stride) only for odd kernels.
        for name, zero_ok in [("kernel_size", 0), ("up_kernel_size", 1), ("head_kernel_size", 1)]:
            size = getattr(self, name)
            if not (size > 0 and size % 2 == 1 or zero_ok and size == 0):
                allowed = "odd or 0" if zero_ok else "odd"
                raise ConfigError(f"{name} must be {allowed}, got {size}")
        if any(not 0 <= p < 1 for p in self.decoder_dropout):
            raise ConfigError(f"decoder_dropout values must be in [0, 1): {self.decoder_dropout}")
        if self.bottleneck_channels < 0:
            raise ConfigError(f"bottleneck_channels must be >= 0, got {self.bottleneck_channels}")
        if self.input_skip and not self.head_kernel_size:
            raise ConfigError("input_skip needs a conv head (head_kernel_size > 0)")
        if self.convs_per_level < 1:
            raise ConfigError(f"convs_per_level must be >= 1, got {self.convs_per_level}")
        if self.convs_per_level > 1 and not self.head_kernel_size:
            raise ConfigError("convs_per_level > 1 needs a conv head (head_kernel_size > 0)")
        _decoder_widths(self)  # checks that the skip fusions fit

    @property
    def depth(self) -> int:
        return len(self.channels)

    @property
    def shift_multiple(self) -> int:
        """Shifting the input by a multiple of this shifts the output alike (away from the
        edges); other shifts change the strided sampling grid and so the output."""
        return self.stride**self.depth

    @property
    def receptive_field(self) -> int:
        """How far, in input samples along each axis, an output can depend on the input (an
        upper bound, away from the edges): a window of the input with this much context on
        both sides, starting at a multiple of `shift_multiple`, reproduces the whole-input
        result there exactly (with local or no norms, in eval mode)."""
        stride = self.stride
        down = self.kernel_size // 2
        up = (self.up_kernel_size or self.kernel_size) // 2
        # Samples of resolution r_k between an upsampled sample and the inputs it mixes:
        reach = UPSAMPLINGS.get(self.upsample).reach(stride)
        extra = self.convs_per_level - 1  # encoder extras at r_{k+1} at most, decoder's at r_k
        field = self.head_kernel_size // 2
        for level in range(self.depth):
            field += (down + up + reach + extra * down) * stride**level
            field += extra * down * stride ** (level + 1)
        if self.bottleneck_channels:
            field += down * stride**self.depth
        return field


def _decoder_widths(config: EncoderDecoderConfig) -> tuple[list[tuple[int, int, int]], int]:
    """Widths of each decoder level, deepest first, as (input, output, refined) of its first
    conv, where `refined` is the width entering the level's extra convs (`convs_per_level`),
    and the final feature width.

    Raises ConfigError where an "add" fusion would meet different widths, or where a skip would
    be fused after a last layer that already emits the output.
    """
    c = config
    # Skip width at r_0 .. r_{depth-1} (0: none); "conv" mode has no skip at full resolution.
    downsampling, upsampling = DOWNSAMPLINGS.get(c.downsample), UPSAMPLINGS.get(c.upsample)
    fusion = blocks.SKIP_FUSIONS.get(c.skip)
    skips = downsampling.skip_widths(c.channels) if fusion.takes_skips else [0] * c.depth

    def fuse(width: int, skip: int, level: int) -> int:
        try:
            return fusion.width(width, skip)
        except ConfigError as error:
            raise ConfigError(f"skip={c.skip!r} at level {level}: {error}") from None

    width = c.bottleneck_channels or c.channels[-1]
    plan = []
    for k in reversed(range(c.depth)):
        # Mirror the encoder: level k emits the width of the encoder feature at r_k.
        if k == 0:
            out = c.channels[0] if c.head_kernel_size else c.out_channels
        else:
            out = downsampling.decoder_width(c.channels, k)
        if upsampling.in_conv:
            if k == 0 and skips[0] and not c.head_kernel_size:
                raise ConfigError("a skip at full resolution needs head_kernel_size > 0")
            fused = fuse(out, skips[k], k)
            plan.append((width, out, fused))
            width = out if c.convs_per_level > 1 else fused
        else:
            plan.append((fuse(width, skips[k], k), out, out))
            width = out
    return plan, width


class EncoderDecoder(nn.Module):
    """`(batch, in_channels, *spatial) -> (batch, out_channels, *spatial)` for any spatial size."""

    def __init__(self, config: EncoderDecoderConfig) -> None:
        super().__init__()
        self.config = c = config
        plan, width = _decoder_widths(c)
        # Parts chosen by name (registries in `blocks`): they hold no weights.
        self._fusion = blocks.SKIP_FUSIONS.get(c.skip)
        self._head = blocks.HEADS.get(c.head)
        bias = c.norm == "none"  # a following norm's shift makes a conv bias redundant
        self._down = DOWNSAMPLINGS.get(c.downsample)
        self._up = UPSAMPLINGS.get(c.upsample)
        down_stride = self._down.conv_stride(c.stride)
        extra = c.convs_per_level - 1
        self.encoder = nn.ModuleList(
            self._block(
                blocks.conv(c.dims, i, o, c.kernel_size, down_stride, bias),
                o,
                c.encoder_activation,
                extra=extra,
            )
            for i, o in pairwise([c.in_channels, *c.channels])
        )
        self.bottleneck = None
        if c.bottleneck_channels:
            width_in, width_out = c.channels[-1], c.bottleneck_channels
            conv = blocks.conv(c.dims, width_in, width_out, c.kernel_size, bias=bias)
            self.bottleneck = self._block(conv, width_out, c.encoder_activation)
        self.decoder = nn.ModuleList()
        # The extra convs of each decoder level (after the skip fusion); absent when
        # convs_per_level is 1, so that such networks keep their parameter names.
        self.refine = nn.ModuleList() if extra else None
        up_kernel = c.up_kernel_size or c.kernel_size
        self.upsamplers = nn.ModuleList()  # learned upsampling only: one per decoder level
        upsampled = c.bottleneck_channels or c.channels[-1]  # width entering the deepest level
        for level, (i, o, refined) in enumerate(plan):
            upsampler = self._up.upsampler(c.dims, upsampled, c.stride)
            if upsampler is not None:
                self.upsamplers.append(upsampler)
            upsampled = o
            last = level == c.depth - 1 and not c.head_kernel_size
            conv = self._up.conv(c.dims, i, o, up_kernel, c.stride, bias or last)
            dropout = c.decoder_dropout[level] if level < len(c.decoder_dropout) else 0.0
            self.decoder.append(
                conv if last else self._block(conv, o, c.decoder_activation, dropout)
            )
            if self.refine is not None:
                first = blocks.conv(c.dims, refined, o, c.kernel_size, bias=bias)
                self.refine.append(self._block(first, o, c.decoder_activation, extra=extra - 1))
        self.head = None
        if c.head_kernel_size:
            width += c.in_channels if c.input_skip else 0
            self.head = blocks.conv(c.dims, width, c.out_channels, c.head_kernel_size)

    def _block(
        self,
        conv: nn.Module,
        channels: int,
        activation: str,
        dropout: float = 0.0,
        extra: int = 0,
    ) -> nn.Sequential:
        """conv -> norm -> activation, then `extra` times stride-1 conv -> norm -> activation
        (-> dropout)."""
        c = self.config
        layers = [conv, blocks.norm(c.norm, c.dims, channels)]
        layers.append(blocks.activation(activation, c.negative_slope))
        for _ in range(extra):
            layers.append(
                blocks.conv(c.dims, channels, channels, c.kernel_size, bias=c.norm == "none")
            )
            layers.append(blocks.norm(c.norm, c.dims, channels))
            layers.append(blocks.activation(activation, c.negative_slope))
        return nn.Sequential(*layers, *([nn.Dropout(dropout)] if dropout else []))

    def _fuse(self, x: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
        return x if skip is None else self._fusion.fuse(x, skip)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`x`: `(batch, in_channels, *spatial)` -> `(batch, out_channels, *spatial)`."""
        c = self.config
        if x.dim() != c.dims + 2 or x.shape[1] != c.in_channels:
            raise ValueError(f"expected (batch, {c.in_channels}, <{c.dims} sizes>), got {x.shape}")
        size = x.shape[2:]
        x = blocks.pad_to_multiple(x, c.stride**c.depth)
        inputs = x
        skips: list[torch.Tensor | None] = []  # the encoder feature at r_0 .. r_{depth-1}
        for level, block in enumerate(self.encoder):
            x, skip = self._down.step(block, x, level, c.stride, c.dims)
            skips.append(skip)
        if self.bottleneck is not None:
            x = self.bottleneck(x)
        for level, (block, skip) in enumerate(zip(self.decoder, reversed(skips), strict=True)):
            if self._up.in_conv:
                x = self._fuse(block(x), skip)
            else:
                upsampler = self.upsamplers[level] if level < len(self.upsamplers) else None
                x = self._up.upsample(x, upsampler, c.stride, c.dims)
                x = block(self._fuse(x, skip))
            if self.refine is not None:
                x = self.refine[level](x)
        if self.head is not None:
            x = self.head(torch.cat([x, inputs], dim=1) if c.input_skip else x)
        x = self._head(x)
        return blocks.crop(x, size)


register_architecture("unet", EncoderDecoderConfig, EncoderDecoder)


# Presets spell out every field that defines them, so changing a default cannot change them.
_JANSSON2017: dict[str, Any] = {
    "dims": 2,
    "channels": (16, 32, 64, 128, 256, 512),
    "kernel_size": 5,
    "stride": 2,
    "downsample": "conv",
    "upsample": "transposed",
    "up_kernel_size": 5,
    "norm": "batch",
    "encoder_activation": "leaky_relu",
    "decoder_activation": "relu",
    "negative_slope": 0.2,
    "decoder_dropout": (0.5, 0.5, 0.5),
    "skip": "concat",
    "bottleneck_channels": 0,
    "head": "mask",
    "head_kernel_size": 0,
    "input_skip": False,
}


def _jansson2017(**overrides: Any) -> EncoderDecoderConfig:
    """Jansson et al. (2017), "Singing voice separation with deep U-Net convolutional networks"."""
    return EncoderDecoderConfig.from_dict({**_JANSSON2017, **overrides})


def _fcn(**overrides: Any) -> EncoderDecoderConfig:
    """The Jansson network with additive skips (a fully convolutional network, FCN)."""
    return EncoderDecoderConfig.from_dict({**_JANSSON2017, "skip": "add", **overrides})


_STOLLER2018: dict[str, Any] = {
    "dims": 1,
    "channels": tuple(24 * level for level in range(1, 13)),
    "kernel_size": 15,
    "stride": 2,
    "downsample": "decimate",
    "upsample": "learned",
    "up_kernel_size": 5,
    "norm": "none",
    "encoder_activation": "leaky_relu",
    "decoder_activation": "leaky_relu",
    "negative_slope": 0.2,
    "decoder_dropout": (),
    "skip": "concat",
    "bottleneck_channels": 24 * 13,
    "head": "logits",
    "head_kernel_size": 1,
    "input_skip": True,
}


def _waveunet(**overrides: Any) -> EncoderDecoderConfig:
    """Stoller, Ewert and Dixon (2018), "Wave-U-Net": 12 levels of a size-15 conv and
    decimation by 2 with 24 more features per level, a size-15 bottleneck, learned-interpolation
    upsampling, skip concatenation and a size-5 conv per level, leaky ReLU and no norms; the
    input is concatenated to the last features and a size-1 conv gives the output. The output is
    linear (the paper uses tanh), so loud inputs are not clipped."""
    return EncoderDecoderConfig.from_dict({**_STOLLER2018, **overrides})


@dataclass(frozen=True)
class WaveUNetConfig(EncoderDecoderConfig):
    """The `waveunet` architecture: the encoder-decoder with Stoller et al.'s defaults (see
    `_waveunet`), so that `dims`, `in_channels` and `out_channels` are enough to build one."""

    dims: int = 1
    channels: tuple[int, ...] = _STOLLER2018["channels"]
    kernel_size: int = 15
    downsample: str = "decimate"
    upsample: str = "learned"
    up_kernel_size: int = 5
    norm: str = "none"
    decoder_activation: str = "leaky_relu"
    decoder_dropout: tuple[float, ...] = ()
    bottleneck_channels: int = 24 * 13
    head: str = "logits"
    head_kernel_size: int = 1
    input_skip: bool = True


register_architecture("waveunet", WaveUNetConfig, EncoderDecoder)

PRESETS: Registry[Callable[..., EncoderDecoderConfig]] = Registry("preset")
PRESETS.register("jansson2017", _jansson2017)
PRESETS.register("fcn", _fcn)
PRESETS.register("waveunet", _waveunet)


def preset(name: str, **overrides: Any) -> EncoderDecoderConfig:
    """A named preset config with some fields replaced, e.g. `preset("fcn", in_channels=2)`."""
    return PRESETS.get(name)(**overrides)
