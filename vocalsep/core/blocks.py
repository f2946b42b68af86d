"""Small layer factories shared by the core networks, parametrised by the number of spatial dims.

Every factory takes `dims` (1: tensors `(batch, channels, length)`, 2: tensors
`(batch, channels, height, width)`) so one network definition serves both.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .errors import ConfigError
from .registry import Registry

NORMS = ("batch", "instance", "group", "none")
ACTIVATIONS = ("leaky_relu", "relu", "gelu", "tanh")

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_CONV_TRANSPOSE = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
_BATCH_NORM = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
_INSTANCE_NORM = {1: nn.InstanceNorm1d, 2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d}


def _check_dims(dims: int) -> None:
    if dims not in _CONV:
        raise ConfigError(f"dims must be 1, 2 or 3, got {dims}")


def conv(
    dims: int,
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    stride: int = 1,
    bias: bool = True,
    dilation: int = 1,
) -> nn.Module:
    """Convolution padded by `dilation * (kernel_size // 2)`: `(B, in, *n) -> (B, out,
    *ceil(n / stride))` for an odd `kernel_size`."""
    _check_dims(dims)
    padding = dilation * (kernel_size // 2)
    return _CONV[dims](
        in_channels, out_channels, kernel_size, stride, padding, dilation=dilation, bias=bias
    )


def conv_norm_relu(
    dims: int, i: int, o: int, kernel: int, norm_kind: str, dilation: int = 1
) -> nn.Sequential:
    """A same-size conv (no bias where a norm follows), the norm and ReLU."""
    return nn.Sequential(
        conv(dims, i, o, kernel, bias=norm_kind == "none", dilation=dilation),
        norm(norm_kind, dims, o),
        nn.ReLU(),
    )


def double_conv(dims: int, i: int, o: int, kernel: int, norm_kind: str) -> nn.Sequential:
    """Two `conv_norm_relu`, the U-Net's block (Ronneberger et al. 2015)."""
    return nn.Sequential(
        *conv_norm_relu(dims, i, o, kernel, norm_kind),
        *conv_norm_relu(dims, o, o, kernel, norm_kind),
    )


def conv_transpose(
    dims: int, in_channels: int, out_channels: int, kernel_size: int, stride: int, bias: bool = True
) -> nn.Module:
    """Transposed convolution: `(B, in, *n) -> (B, out, *(n * stride))` for an odd `kernel_size`.

    With padding `k // 2` the output is `(n - 1) * stride + 1 + output_padding`, so an output
    padding of `stride - 1` makes it exactly `n * stride`.
    """
    _check_dims(dims)
    return _CONV_TRANSPOSE[dims](
        in_channels,
        out_channels,
        kernel_size,
        stride,
        padding=kernel_size // 2,
        output_padding=stride - 1,
        bias=bias,
    )


class LearnedInterpolation(nn.Module):
    """Upsampling by `stride` along every spatial axis, onto the grid that keeping every
    `stride`-th sample (decimation) samples: input sample j lands on j * stride and the
    `stride - 1` new samples after it mix it with sample j + 1 by per-channel weights in (0, 1).

    The weights are learned (Stoller et al. 2018, "learned upsampling") and start as linear
    interpolation. The last sample is repeated past the end.
    `(B, channels, *n) -> (B, channels, *(n * stride))`.
    """

    def __init__(self, dims: int, channels: int, stride: int) -> None:
        super().__init__()
        _check_dims(dims)
        self.stride = stride
        fraction = torch.arange(1, stride, dtype=torch.float32) / stride  # linear interpolation
        logits = torch.log(fraction / (1 - fraction))
        # One weight per axis, channel and new sample; sigmoid keeps them in (0, 1).
        self.logits = nn.Parameter(logits.expand(dims, channels, stride - 1).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for axis, logits in enumerate(self.logits):
            x = self._along(x.movedim(axis + 2, -1), logits).movedim(-1, axis + 2)
        return x

    def _along(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """Upsample the last axis of `x` `(B, channels, ..., n)` with weights `(channels, s-1)`."""
        following = torch.cat([x[..., 1:], x[..., -1:]], dim=-1)
        weight = torch.sigmoid(logits).reshape(-1, *[1] * (x.dim() - 2), self.stride - 1)
        new = x[..., None] + (following - x)[..., None] * weight  # (B, C, ..., n, s - 1)
        return torch.cat([x[..., None], new], dim=-1).flatten(-2)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Right-pad every spatial axis of `(batch, channels, *spatial)` with zeros to a multiple of
    `multiple`, and to at least two of them (a norm cannot normalise a single element), so that
    every level of a network divides exactly. `crop(y, x.shape[2:])` undoes it."""
    extra = [max(2, -(-n // multiple)) * multiple - n for n in x.shape[2:]]
    return torch.nn.functional.pad(x, [p for e in reversed(extra) for p in (0, e)])


def crop(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """The first `size` samples of every spatial axis."""
    return x[(..., *[slice(0, n) for n in size])]


def norm(kind: str, dims: int, channels: int) -> nn.Module:
    """Normalisation over `channels` features: "batch", "instance" (affine), "group" or "none"."""
    _check_dims(dims)
    if kind == "batch":
        return _BATCH_NORM[dims](channels)
    if kind == "instance":
        return _INSTANCE_NORM[dims](channels, affine=True)
    if kind == "group":
        groups = next(g for g in (8, 4, 2, 1) if channels % g == 0)
        return nn.GroupNorm(groups, channels)
    if kind == "none":
        return nn.Identity()
    raise ConfigError(f"norm must be one of {NORMS}, got {kind!r}")


def activation(name: str, negative_slope: float = 0.2) -> nn.Module:
    """Pointwise non-linearity; `negative_slope` is used by "leaky_relu" only."""
    if name == "leaky_relu":
        return nn.LeakyReLU(negative_slope)
    if name == "relu":
        return nn.ReLU()
    if name == "gelu":
        return nn.GELU()
    if name == "tanh":
        return nn.Tanh()
    raise ConfigError(f"activation must be one of {ACTIVATIONS}, got {name!r}")


# -- parts chosen by name ---------------------------------------------------------------------


@dataclass(frozen=True)
class SkipFusion:
    """How a decoder level joins the encoder's feature of its resolution (`skip`, or None
    where there is none) to its own `x`: `fuse(x, skip)`, and the width that gives
    (`width(features, skip_width)`, a `ConfigError` where the widths cannot be fused)."""

    fuse: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    width: Callable[[int, int], int]
    takes_skips: bool = True  # False: the decoder never sees the encoder's features


def _same_width(features: int, skip: int) -> int:
    if skip and features != skip:
        raise ConfigError(f"an additive skip needs equal widths, got {features} and {skip}")
    return features


SKIP_FUSIONS: Registry[SkipFusion] = Registry("skip fusion")
SKIP_FUSIONS.register(
    "concat", SkipFusion(lambda x, skip: torch.cat([x, skip], dim=1), lambda w, s: w + s)
)
SKIP_FUSIONS.register("add", SkipFusion(lambda x, skip: x + skip, _same_width))
SKIP_FUSIONS.register("none", SkipFusion(lambda x, skip: x, lambda w, s: w, takes_skips=False))

# What the output layer's values become: masks in [0, 1], or raw logits.
HEADS: Registry[Callable[[torch.Tensor], torch.Tensor]] = Registry("head")
HEADS.register("mask", torch.sigmoid)
HEADS.register("logits", lambda x: x)
