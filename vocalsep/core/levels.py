"""A U-Net skeleton that architectures fill in (Ronneberger et al. 2015): one block per
resolution level, strided-conv downsampling, transposed-conv upsampling, the skip of each level
(optionally passed through a gate) concatenated to the upsampled features, a 1x1 head.

An architecture built on it gives `block(in, out)` (a same-size block of its kind) and,
optionally, `gate(level, skip, gating)`: a module for the skip of `level` (`skip` channels),
called with the skip and the decoder's upsampled features there (`gating` channels); its
config has `dims`, `in_channels`, `out_channels`, `channels` (one width per level), `kernel_size`,
`stride`, `norm` and `head` ("logits" or "mask").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from . import blocks
from .config import Config
from .errors import ConfigError


@dataclass(frozen=True)
class LevelsConfig(Config):
    """The fields of a network built on `Levels`; `block_reach` (samples each side that one
    of the architecture's blocks reaches at its own resolution) sizes the receptive field."""

    dims: int = 2
    in_channels: int = 1
    out_channels: int = 1
    channels: tuple[int, ...] = (16, 32, 64, 128, 256)
    kernel_size: int = 3
    stride: int = 2
    norm: str = "batch"
    head: str = "logits"

    def __post_init__(self) -> None:
        check_levels(self)

    @property
    def block_reach(self) -> int:
        return 2 * (self.kernel_size // 2)  # two same-size convs

    @property
    def shift_multiple(self) -> int:
        return self.stride ** (len(self.channels) - 1)

    @property
    def receptive_field(self) -> int:
        return levels_receptive_field(self, self.block_reach)


def check_levels(config) -> None:
    if config.dims not in (1, 2):
        raise ConfigError(f"dims must be 1 or 2, got {config.dims}")
    if len(config.channels) < 2 or min(config.channels) < 1:
        raise ConfigError(f"channels needs two or more widths >= 1, got {config.channels}")
    if config.kernel_size < 1 or config.kernel_size % 2 == 0:
        raise ConfigError(f"kernel_size must be odd, got {config.kernel_size}")
    if config.stride < 2:
        raise ConfigError(f"stride must be >= 2, got {config.stride}")
    if config.norm not in blocks.NORMS or config.head not in blocks.HEADS:
        raise ConfigError(f"norm must be one of {blocks.NORMS}, head one of {blocks.HEADS.names()}")


def levels_receptive_field(config, block_reach: int) -> int:
    """An upper bound of the skeleton's receptive field (input samples on each side), for
    blocks that reach `block_reach` samples each side at their own resolution: per level an
    encoder and a decoder block, and the down- and up-sampling convs' `stride - 1`."""
    stride, field = config.stride, 0
    for level in range(len(config.channels)):
        field += (2 * block_reach + 2 * (stride - 1)) * stride**level
    return field


class Levels(nn.Module):
    """`(batch, in_channels, *spatial) -> (batch, out_channels, *spatial)`, any spatial size."""

    def __init__(
        self,
        config,
        block: Callable[[int, int], nn.Module],
        gate: Callable[[int, int, int], nn.Module] | None = None,
    ) -> None:
        super().__init__()
        c = self.config = config
        widths = list(c.channels)
        self.encoder = nn.ModuleList(
            block(w_in, w_out)
            for w_in, w_out in zip([c.in_channels, *widths], widths, strict=False)
        )
        self.down = nn.ModuleList(
            blocks.conv(c.dims, w, w, c.stride, stride=c.stride) for w in widths[:-1]
        )
        # `blocks.conv` pads k // 2: with k = stride that shifts even strides; undo it.
        for conv in self.down:
            conv.padding = (0,) * c.dims
        self.up = nn.ModuleList(
            _transpose(c.dims, widths[level + 1], widths[level], c.stride)
            for level in range(len(widths) - 1)
        )
        self.gates = (
            nn.ModuleList(gate(level, w, w) for level, w in enumerate(widths[:-1]))
            if gate
            else None
        )
        self.decoder = nn.ModuleList(block(2 * w, w) for w in widths[:-1])
        self.head = blocks.conv(c.dims, widths[0], c.out_channels, 1)
        self._head = blocks.HEADS.get(c.head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        size = x.shape[2:]
        x = blocks.pad_to_multiple(x, c.stride ** (len(c.channels) - 1))
        skips = []
        for level, block in enumerate(self.encoder):
            x = block(x)
            if level < len(self.down):
                skips.append(x)
                x = self.down[level](x)
        for level in reversed(range(len(self.decoder))):
            x = self.up[level](x)
            skip = skips[level]
            if self.gates is not None:
                skip = self.gates[level](skip, x)
            x = self.decoder[level](torch.cat([x, skip], dim=1))
        x = self._head(self.head(x))
        return blocks.crop(x, size)


def _transpose(dims: int, i: int, o: int, stride: int) -> nn.Module:
    """A transposed conv with kernel = stride: each input sample becomes `stride` outputs."""
    return {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d}[dims](i, o, stride, stride=stride)
