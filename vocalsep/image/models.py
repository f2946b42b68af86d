"""Segmentation models: a core 2-D encoder-decoder with a class-logits head, bundled with what
turns pixels into its input (normalisation) and its output into label maps (class names,
label values, colours, tiling).

The network sees `(batch, channels, height, width)` images normalised per channel and returns
one logit per class and pixel; everything around it (tiling, argmax, colours) belongs to
`predict.py`.
"""

from __future__ import annotations

import colorsys
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..core.checkpoint import CheckpointedModel, load_checkpoint
from ..core.config import Config, FieldError
from ..core.errors import ConfigError
from ..core.networks import build_network
from ..core.networks import network_config as core_network_config
from ..core.unet import EncoderDecoderConfig
from .transforms import normalise

TASK = "image-segmentation"
MODEL_TYPE = "segmentation"

# The image default network: a U-Net with two 3x3 convs per level (a strided conv down, a
# transposed conv up, then a conv after the skip fusion), BatchNorm and ReLU; the raw image
# joins the last features before the 3x3 class head, so that thin structures keep full
# resolution. Recipes replace fields (e.g. `channels`).
DEFAULT_NETWORK: dict[str, Any] = {
    "dims": 2,
    "channels": (16, 32, 64, 128, 256),
    "kernel_size": 3,
    "stride": 2,
    "downsample": "conv",
    "upsample": "transposed",
    "up_kernel_size": 3,
    "norm": "batch",
    "encoder_activation": "relu",
    "decoder_activation": "relu",
    "decoder_dropout": (),
    "skip": "concat",
    "bottleneck_channels": 0,
    "head": "logits",
    "head_kernel_size": 3,
    "input_skip": True,
    "convs_per_level": 2,
}


def network_config(
    in_channels: int, num_classes: int, architecture: str = "unet", **overrides: Any
) -> Config:
    """The network of a segmentation model: 2-D, `in_channels` image channels in,
    `num_classes` logits out, `overrides` over the architecture's defaults (for "unet":
    `DEFAULT_NETWORK`, with a logits head)."""
    fields = {**overrides, "dims": 2, "in_channels": in_channels, "out_channels": num_classes}
    try:
        if architecture == "unet":
            return EncoderDecoderConfig.from_dict({**DEFAULT_NETWORK, **fields, "head": "logits"})
        return core_network_config(architecture, fields)
    except FieldError as error:
        raise error.within("network") from None


def generated_palette(count: int) -> tuple[tuple[int, int, int], ...]:
    """`count` well separated colours (golden-ratio hues, alternating lightness)."""
    colours = []
    for index in range(count):
        hue = (index * 0.618033988749895) % 1.0
        red, green, blue = colorsys.hls_to_rgb(hue, 0.45 if index % 2 else 0.6, 0.75)
        colours.append((round(red * 255), round(green * 255), round(blue * 255)))
    return tuple(colours)


@dataclass(frozen=True)
class SegmentationModelConfig(Config):
    """What a segmentation model needs besides its network.

    class_names:  one name per class; the network predicts one logit per class.
    palette:      an RGB colour per class, for overlays and label PNGs; empty: generated.
    label_values: the value that stands for each class in label PNGs; empty: the class index.
                  Pixels whose value is no class's value (CamVid's 11, "void") are ignored.
    ignore_index: the class index given to ignored pixels (in [classes, 255]).
    in_channels:  1 (grey images) or 3 (RGB).
    mean, std:    per-channel normalisation of pixel values in [0, 1] (one value: all channels).
    tile_size, tile_overlap, tile_context: images are predicted in tiles of `tile_size` pixels
                  (per axis) overlapping by `tile_overlap`, each seeing `tile_context` more
                  pixels on every side (see `predict.py`); size and overlap must be multiples
                  of the network's `stride ** depth`.
    """

    class_names: tuple[str, ...] = ("background", "foreground")
    palette: tuple[tuple[int, int, int], ...] = ()
    label_values: tuple[int, ...] = ()
    ignore_index: int = 255
    in_channels: int = 3
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    tile_size: int = 512
    tile_overlap: int = 64
    tile_context: int = 32

    def __post_init__(self) -> None:
        count = len(self.class_names)
        if count < 2 or len(set(self.class_names)) != count:
            raise ConfigError(f"need at least two distinct class names, got {self.class_names}")
        if self.palette and (
            len(self.palette) != count
            or any(len(c) != 3 or not all(0 <= v <= 255 for v in c) for c in self.palette)
        ):
            raise ConfigError(f"palette must hold one (r, g, b) in 0..255 per class ({count})")
        if self.label_values and (
            len(self.label_values) != count
            or len(set(self.label_values)) != count
            or not all(0 <= v <= 255 for v in self.label_values)
        ):
            raise ConfigError(f"label_values must be {count} distinct values in 0..255")
        if not count <= self.ignore_index <= 255:
            raise ConfigError(f"ignore_index must be in [{count}, 255], got {self.ignore_index}")
        if self.in_channels not in (1, 3):
            raise ConfigError(f"in_channels must be 1 or 3, got {self.in_channels}")
        for name in ("mean", "std"):
            if len(getattr(self, name)) not in (1, self.in_channels):
                raise ConfigError(
                    f"{name} needs one value per channel ({self.in_channels}) or one for all, "
                    f"got {getattr(self, name)}"
                )
        if min(self.std) <= 0:
            raise ConfigError(f"std must be positive, got {self.std}")
        if self.tile_size < 1 or not 0 <= self.tile_overlap < self.tile_size:
            raise ConfigError("need tile_size >= 1 and 0 <= tile_overlap < tile_size")
        if self.tile_context < 0:
            raise ConfigError(f"tile_context must be >= 0, got {self.tile_context}")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def colours(self) -> np.ndarray:
        """`uint8 (classes, 3)`: the palette, or generated colours."""
        return np.array(self.palette or generated_palette(self.num_classes), dtype=np.uint8)

    def values(self) -> np.ndarray:
        """`uint8 (classes,)`: the label-PNG value of each class."""
        return np.array(self.label_values or range(self.num_classes), dtype=np.uint8)

    def encode(self, values: np.ndarray) -> np.ndarray:
        """Label-PNG values `uint8 (h, w)` -> class indices, `ignore_index` where no class."""
        table = np.full(256, self.ignore_index, dtype=np.uint8)
        table[self.values()] = np.arange(self.num_classes, dtype=np.uint8)
        return table[values]

    def decode(self, labels: np.ndarray) -> np.ndarray:
        """Class indices `(h, w)` -> label-PNG values (ignored pixels stay `ignore_index`)."""
        table = np.full(256, self.ignore_index, dtype=np.uint8)
        table[: self.num_classes] = self.values()
        return table[labels]


class SegmentationModel(CheckpointedModel):
    """Images `(batch, in_channels, height, width)` in [0, 1] -> class logits
    `(batch, classes, height, width)`, for any height and width."""

    task = TASK
    model_type = MODEL_TYPE
    config_class = SegmentationModelConfig

    def __init__(self, config: SegmentationModelConfig, architecture: str, network: Config) -> None:
        super().__init__()
        if getattr(network, "dims", 2) != 2 or getattr(network, "head", "logits") != "logits":
            raise ConfigError("a segmentation model needs a 2-D network with a 'logits' head")
        if getattr(network, "in_channels", None) != config.in_channels:
            raise ConfigError(f"network in_channels must be {config.in_channels}")
        if getattr(network, "out_channels", None) != config.num_classes:
            raise ConfigError(f"network out_channels must be the {config.num_classes} classes")
        multiple = getattr(network, "shift_multiple", 1)
        if config.tile_size % multiple or config.tile_overlap % multiple:
            raise ConfigError(
                f"tile_size and tile_overlap must be multiples of {multiple} (the network's "
                f"stride ** depth), got {config.tile_size} and {config.tile_overlap}"
            )
        self.config = config
        self.architecture = architecture
        self.network_config = network
        self.shift_multiple = multiple
        channels = config.in_channels
        mean = torch.tensor(config.mean, dtype=torch.float32).expand(channels).clone()
        std = torch.tensor(config.std, dtype=torch.float32).expand(channels).clone()
        # From the config, so not part of the weights.
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", std, persistent=False)
        # channels_last runs oneDNN's faster convolution kernels on the CPU (1.3-1.6x here).
        self.network = build_network(architecture, network).to(memory_format=torch.channels_last)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = normalise(images, self.mean, self.std)
        return self.network(features.contiguous(memory_format=torch.channels_last))


def load_model(path: str | os.PathLike) -> SegmentationModel:
    """Load a segmentation model from a checkpoint file (weights only, no code is executed)."""
    return SegmentationModel.from_checkpoint(load_checkpoint(path, task=TASK), path)
