"""Test helpers for the image side: synthesized images with known labels, tiny models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from support import randomise_norm_statistics

from vocalsep.image.models import SegmentationModel, SegmentationModelConfig, network_config

# Class colours of the synthesized scenes: 0 dark background, 1 red boxes, 2 green discs.
SCENE_CLASSES = ("background", "box", "disc")
SCENE_COLOURS = np.array([[30, 30, 40], [200, 40, 40], [40, 190, 60]], dtype=np.float32)


def scene(height: int, width: int, seed: int, ignore_value: int = 255):
    """An RGB image `uint8 (h, w, 3)` with a red box and a green disc on a dark background, and
    its label map `uint8 (h, w)` (0, 1, 2; a 2-pixel `ignore_value` frame around the box)."""
    rng = np.random.default_rng(seed)
    label = np.zeros((height, width), dtype=np.uint8)
    top, left = rng.integers(0, height // 2), rng.integers(0, width // 2)
    box_h, box_w = rng.integers(height // 5, height // 2), rng.integers(width // 5, width // 2)
    label[max(0, top - 2) : top + box_h + 2, max(0, left - 2) : left + box_w + 2] = ignore_value
    label[top : top + box_h, left : left + box_w] = 1
    rows, cols = np.mgrid[:height, :width]
    centre = rng.integers(0, height), rng.integers(0, width)
    radius = rng.integers(min(height, width) // 8, min(height, width) // 3)
    label[(rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 < radius**2] = 2
    colours = np.zeros((height, width, 3), np.float32)
    for index in range(3):
        colours[label == index] = SCENE_COLOURS[index]
    colours[label == ignore_value] = SCENE_COLOURS[1] * 0.6
    image = np.clip(colours + rng.normal(0, 12, colours.shape), 0, 255).astype(np.uint8)
    return image, label


def write_dataset(
    folder: Path, count: int = 4, size: tuple[int, int] = (40, 52), seed: int = 0
) -> Path:
    """`folder/images/<i>.png` (RGB scenes) and `folder/labels/<i>.png`; returns `folder`."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "labels").mkdir(parents=True, exist_ok=True)
    for index in range(count):
        image, label = scene(*size, seed=seed * 1000 + index)
        Image.fromarray(image).save(folder / "images" / f"{index}.png")
        Image.fromarray(label).save(folder / "labels" / f"{index}.png")
    return folder


def scene_model_config(**changes) -> SegmentationModelConfig:
    """The scenes' classes; tiles of 16 pixels (the tiny network's stride ** depth is 4)."""
    fields = dict(class_names=SCENE_CLASSES, mean=(0.5,), std=(0.25,), tile_size=16, tile_overlap=4)
    return SegmentationModelConfig(**{**fields, "tile_context": 24, **changes})


def make_segmentation_model(seed: int = 0, **changes) -> SegmentationModel:
    """A tiny (4, 8)-channel U-Net for the scenes, with random BatchNorm statistics, in eval
    mode."""
    torch.manual_seed(seed)
    config = scene_model_config(**changes)
    network = network_config(config.in_channels, config.num_classes, channels=(4, 8))
    return randomise_norm_statistics(SegmentationModel(config, "unet", network))
