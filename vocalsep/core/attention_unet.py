"""`attention_unet`: Oktay et al. 2018, "Attention U-Net": a U-Net (double conv-norm-ReLU
blocks) whose skips pass through attention gates, `skip * sigmoid(psi(relu(W_x skip + W_g
g)))`, with the gating signal `g` the decoder's upsampled features at the skip's resolution:
the decoder learns where in the skip to look."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from . import blocks
from .levels import Levels, LevelsConfig
from .networks import register_architecture


@dataclass(frozen=True)
class AttentionUNetConfig(LevelsConfig):
    """Its fields are `LevelsConfig`'s (defaults: 2-D, widths 16-256 over five levels, 3x3
    kernels, batch norm, logits)."""


class AttentionGate(nn.Module):
    """Weighs a skip `(batch, skip, *n)` by a gating signal `(batch, gating, *n)`."""

    def __init__(self, dims: int, skip: int, gating: int) -> None:
        super().__init__()
        inner = max(1, skip // 2)
        self.skip = blocks.conv(dims, skip, inner, 1, bias=False)
        self.gating = blocks.conv(dims, gating, inner, 1)
        self.psi = blocks.conv(dims, inner, 1, 1)

    def forward(self, skip: torch.Tensor, gating: torch.Tensor) -> torch.Tensor:
        weight = torch.sigmoid(self.psi(torch.relu(self.skip(skip) + self.gating(gating))))
        return skip * weight


def build(config: AttentionUNetConfig) -> Levels:
    c = config

    return Levels(
        config,
        lambda i, o: blocks.double_conv(c.dims, i, o, c.kernel_size, c.norm),
        lambda level, s, g: AttentionGate(c.dims, s, g),
    )


register_architecture("attention_unet", AttentionUNetConfig, build)
