"""Start a wider U-Net from a trained one: every hidden layer gets `--factor` times the channels.

    python recipes/synthetic/widen.py runs/finetune-bus/best.ckpt runs/wide-init.ckpt --factor 1.5
    vocalsep train recipes/synthetic/finetune.toml --out runs/wide \
        --set "trainer.init_from='runs/wide-init.ckpt'" \
        --set "task_config.network.channels=[12, 24, 48, 96, 192, 384]" ...

The widened network computes what the narrow one computes (Net2WiderNet: copied channels,
split outgoing weights; `widen_unet` below) up to `--noise`, which lets the copies drift
apart in training. The output keeps the input's config (STFT, rate, targets) and drops its
training state; it prints the new channel list to pass to `vocalsep train`.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

import numpy as np
import torch

from vocalsep.core.checkpoint import load_checkpoint, save_checkpoint
from vocalsep.core.errors import ConfigError, VocalsepError
from vocalsep.core.networks import network_config_class
from vocalsep.core.unet import EncoderDecoderConfig

# -- widening ----------------------------------------------------------------------------------
# Function-preserving widening of a trained U-Net (Net2WiderNet, Chen et al. 2016).
#
# A wider network can start from a trained narrow one instead of from scratch: every hidden
# layer grows to `round(width * factor)` channels. The first `width` channels are the old ones;
# each new channel copies a random old one (its incoming weights and its norm), and every layer
# that reads a copied channel divides its weights from that channel between the copies. The
# widened network computes the same function as the narrow one (norms in eval mode, to float
# precision); a little noise on the copies' incoming weights then lets them drift apart in
# training.
#
# Supported: the "unet" encoder-decoder with strided conv downsampling, transposed-conv
# upsampling, concatenated skips, one conv per level and no group norm (the Jansson et al.
# 2017 family).


_NORM_KEYS = ("weight", "bias", "running_mean", "running_var")


def _check(config: EncoderDecoderConfig) -> None:
    unsupported = {
        "downsample": (config.downsample, "conv"),
        "upsample": (config.upsample, "transposed"),
        "skip": (config.skip, "concat"),
        "convs_per_level": (config.convs_per_level, 1),
        "bottleneck_channels": (config.bottleneck_channels, 0),
        "head_kernel_size": (config.head_kernel_size, 0),
    }
    if config.norm == "group":  # a group norm's groups would mix old and copied channels
        raise ConfigError("widening needs norm 'batch', 'instance' or 'none', got 'group'")
    for name, (value, wanted) in unsupported.items():
        if value != wanted:
            raise ConfigError(f"widening needs a U-Net with {name}={wanted!r}, got {value!r}")


def widen_unet(
    state: dict[str, torch.Tensor],
    config: EncoderDecoderConfig,
    factor: float,
    *,
    seed: int = 0,
    noise: float = 0.01,
    prefix: str = "",
) -> tuple[dict[str, torch.Tensor], EncoderDecoderConfig]:
    """Widen the U-Net whose weights are `state` (keys `prefix + "encoder.0.0.weight"`, ...; other
    keys are passed through). Returns the new state and config. `noise` is the standard
    deviation of the noise added to the copies' incoming weights, relative to each layer's
    weight spread (0: an exact copy of the function)."""
    _check(config)
    if factor < 1:
        raise ConfigError(f"widening factor must be >= 1, got {factor}")
    old = list(config.channels)
    new = [max(c, round(c * factor)) for c in old]
    depth = len(old)
    rng = np.random.default_rng(seed)
    state = {key: value.clone() for key, value in state.items()}

    def mapping(width: int, wider: int) -> tuple[torch.Tensor, torch.Tensor]:
        """New channel -> old channel, and how many copies that old channel now has."""
        source = np.concatenate([np.arange(width), rng.integers(0, width, wider - width)])
        copies = np.bincount(source, minlength=width)[source]
        return torch.from_numpy(source), torch.from_numpy(copies)

    encoder = [mapping(old[level], new[level]) for level in range(depth)]
    # Decoder level k emits the width of encoder level depth - 2 - k (its skip partner).
    decoder = [mapping(old[depth - 2 - k], new[depth - 2 - k]) for k in range(depth - 1)]

    def read(key: str, inputs: list[tuple[torch.Tensor, torch.Tensor]], dim: int) -> None:
        """Split the weights of `key` from copied input channels (inputs concatenated)."""
        weight, parts, start = state[key], [], 0
        for source, copies in inputs:
            width = int(source.max()) + 1  # the old channels come first, in order
            part = weight.narrow(dim, start, width).index_select(dim, source)
            shape = [1] * weight.dim()
            shape[dim] = -1
            parts.append(part / copies.reshape(shape).to(weight.dtype))
            start += width
        if start != weight.shape[dim]:
            raise ConfigError(f"{key}: {weight.shape[dim]} input channels, expected {start}")
        state[key] = torch.cat(parts, dim=dim)

    def emit(block: str, source: torch.Tensor, dim: int) -> None:
        """Copy the output channels of a conv block (its weight, bias and norm)."""
        state[f"{block}.0.weight"] = state[f"{block}.0.weight"].index_select(dim, source)
        if f"{block}.0.bias" in state:
            state[f"{block}.0.bias"] = state[f"{block}.0.bias"].index_select(0, source)
        for name in _NORM_KEYS:
            if f"{block}.1.{name}" in state:
                state[f"{block}.1.{name}"] = state[f"{block}.1.{name}"].index_select(0, source)

    enc, dec = f"{prefix}encoder", f"{prefix}decoder"
    for level in range(1, depth):  # conv weights are (out, in, ...)
        read(f"{enc}.{level}.0.weight", [encoder[level - 1]], 1)
    # transposed-conv weights are (in, out, ...); decoder inputs are (upsampled, skip)
    read(f"{dec}.0.0.weight", [encoder[depth - 1]], 0)
    for k in range(1, depth - 1):
        read(f"{dec}.{k}.0.weight", [decoder[k - 1], encoder[depth - 1 - k]], 0)
    read(f"{dec}.{depth - 1}.weight", [decoder[depth - 2], encoder[0]], 0)
    for level in range(depth):
        emit(f"{enc}.{level}", encoder[level][0], 0)
    for k in range(depth - 1):
        emit(f"{dec}.{k}", decoder[k][0], 1)

    if noise:
        generator = torch.Generator().manual_seed(seed)
        blocks = [(f"{enc}.{level}.0.weight", 0, old[level]) for level in range(depth)]
        blocks += [(f"{dec}.{k}.0.weight", 1, old[depth - 2 - k]) for k in range(depth - 1)]
        for key, dim, width in blocks:
            weight = state[key]
            fresh = weight.narrow(dim, width, weight.shape[dim] - width)
            fresh += (
                noise
                * float(weight.std())
                * torch.randn(fresh.shape, generator=generator, dtype=weight.dtype)
            )
    return state, replace(config, channels=tuple(new))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("out")
    parser.add_argument("--factor", type=float, default=1.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noise", type=float, default=0.01)
    args = parser.parse_args()
    try:
        checkpoint = load_checkpoint(args.checkpoint)
        if checkpoint.architecture != "unet":
            raise VocalsepError(f"{args.checkpoint}: only 'unet' networks can be widened")
        config = network_config_class(checkpoint.architecture).from_dict(checkpoint.model_config)
        state, wider = widen_unet(
            checkpoint.state_dict,
            config,
            args.factor,
            seed=args.seed,
            noise=args.noise,
            prefix="network.",
        )
    except VocalsepError as error:
        print(f"widen.py: error: {error}", file=sys.stderr)
        return 1
    checkpoint.state_dict = state
    checkpoint.model_config = wider.to_dict()
    checkpoint.training_state = None
    checkpoint.metadata = {
        **checkpoint.metadata,
        "widened_from": args.checkpoint,
        "widen": {"factor": args.factor, "seed": args.seed, "noise": args.noise},
    }
    path = save_checkpoint(checkpoint, args.out)
    print(f"wrote {path}: channels {list(wider.channels)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
