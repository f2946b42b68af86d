"""Whole-image prediction in tiles, and label maps turned into PNG pictures.

An image of any size is cut along height and width into tiles of `tile_size` pixels that
overlap by `tile_overlap` and see `tile_context` extra pixels on every side
(`vocalsep.core.tiling.overlap_add`); outside the image the model sees its edge pixels repeated.
Tile starts are multiples of the network's `stride ** depth`, so a network whose receptive field
fits in the context gives the same logits tiled as in one piece: the tile size only bounds
memory. Sizes that are no multiple of the stride are padded inside the network.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from ..core.tiling import TilePlan, overlap_add
from .crf import CRFConfig, refine
from .models import SegmentationModel, SegmentationModelConfig
from .transforms import to_tensor


def tile_plans(model: SegmentationModel, height: int, width: int) -> list[TilePlan]:
    """How `model` cuts an image of `height` x `width`: one tile per axis where it fits."""
    config, multiple = model.config, model.shift_multiple
    plans = []
    for size in (height, width):
        whole = -(-size // multiple) * multiple
        if whole <= config.tile_size:
            plans.append(TilePlan(whole, 0, config.tile_context))
        else:
            plans.append(TilePlan(config.tile_size, config.tile_overlap, config.tile_context))
    return plans


def predict_logits(
    model: SegmentationModel, images: torch.Tensor, *, flip: bool = False
) -> torch.Tensor:
    """Images `(batch, channels, height, width)` in [0, 1] -> logits
    `(batch, classes, height, width)`, tile by tile (call under `torch.no_grad()`, in eval
    mode). `flip`: test-time augmentation, the mean of the logits of the images and of their
    left-right mirrors (mirrored back); twice the time."""
    plans = tile_plans(model, *images.shape[-2:])
    logits = overlap_add(model, images, plans, pad_mode="replicate")
    if flip:
        mirrored = overlap_add(model, images.flip(-1), plans, pad_mode="replicate")
        logits = 0.5 * (logits + mirrored.flip(-1))
    return logits


@torch.no_grad()
def predict_labels(
    model: SegmentationModel, image: np.ndarray, *, flip: bool = False, crf: CRFConfig | None = None
) -> np.ndarray:
    """Class indices `uint8 (height, width)` of an image `uint8 (height, width, channels)`;
    `flip` as in `predict_logits`; `crf`: refine the logits with the image first
    (`vocalsep.image.crf`)."""
    device = next(model.parameters()).device
    pixels = to_tensor(image)[None].to(device)
    logits = predict_logits(model, pixels, flip=flip)
    if crf is not None:
        logits = refine(logits, pixels, crf)
    return logits[0].argmax(0).to(torch.uint8).cpu().numpy()


def label_picture(labels: np.ndarray, config: SegmentationModelConfig) -> Image.Image:
    """A palette PNG image of class indices: pixel values are the classes' label values (as
    in the training labels), shown in the classes' colours (ignored pixels black)."""
    palette = np.zeros((256, 3), dtype=np.uint8)
    palette[config.values()] = config.colours()
    picture = Image.fromarray(config.decode(labels))  # "L"; a palette makes it "P"
    picture.putpalette(palette.reshape(-1).tolist())
    return picture


def overlay_picture(
    image: np.ndarray, labels: np.ndarray, config: SegmentationModelConfig, alpha: float = 0.5
) -> Image.Image:
    """The image (grey or RGB) blended with the class colours: `(1 - alpha) image + alpha
    colour`, as an RGB image."""
    rgb = np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image
    colours = config.colours()[np.minimum(labels, config.num_classes - 1)]
    blend = (1 - alpha) * rgb.astype(np.float32) + alpha * colours.astype(np.float32)
    return Image.fromarray(np.clip(blend + 0.5, 0, 255).astype(np.uint8))
