"""Training augmentation and input normalisation.

Augmentation works on numpy pairs: an image `uint8 (height, width, channels)` and its label map
`uint8 (height, width)` of class indices. Every geometric step is applied to both (images
resized bilinearly, labels with nearest neighbour, so no new label values appear), which keeps
them aligned pixel for pixel. Randomness comes from the `numpy.random.Generator` passed in, so
an example is a pure function of its seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from ..core.config import Config
from ..core.errors import ConfigError


@dataclass(frozen=True)
class AugmentConfig(Config):
    """Random training augmentation, applied in this order: scale, crop, flips and rotation,
    colour jitter.

    scale:       (low, high): resize by a factor drawn log-uniformly from this range.
    crop:        (height, width) of every training example, cut at a random place (images
                 smaller than that are padded, with labels `ignore_index` in the padding);
                 (0, 0) keeps the whole (scaled) image.
    hflip, vflip: probability of a left-right and of an up-down flip.
    rotate90:    also rotate by a random multiple of 90 degrees (needs a square crop).
    brightness, contrast, saturation: jitter strength s: each factor is uniform in
                 [1 - s, 1 + s] (saturation does nothing to grey images).
    """

    scale: tuple[float, float] = (1.0, 1.0)
    crop: tuple[int, int] = (0, 0)
    hflip: float = 0.5
    vflip: float = 0.0
    rotate90: bool = False
    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0

    def __post_init__(self) -> None:
        low, high = self.scale
        if not 0 < low <= high:
            raise ConfigError(
                f"augment.scale must be (low, high) with 0 < low <= high: {self.scale}"
            )
        if len(self.crop) != 2 or min(self.crop) < 0 or (0 in self.crop and any(self.crop)):
            raise ConfigError(f"augment.crop must be (height, width) > 0 or (0, 0): {self.crop}")
        if self.rotate90 and not (self.crop[0] and self.crop[0] == self.crop[1]):
            raise ConfigError("augment.rotate90 needs a square crop (crop = [n, n])")
        for name in ("hflip", "vflip"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"augment.{name} is a probability in [0, 1]")
        for name in ("brightness", "contrast", "saturation"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(f"augment.{name} must be in [0, 1)")


def resize(
    image: np.ndarray, label: np.ndarray | None, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray | None]:
    """Resize to `size` = (height, width): the image bilinearly, the label nearest-neighbour."""
    height, width = size
    channels = image.shape[2]
    picture = Image.fromarray(image[..., 0] if channels == 1 else image)
    resized = np.asarray(picture.resize((width, height), Image.Resampling.BILINEAR))
    resized = resized.reshape(height, width, channels)
    if label is not None:
        label = np.asarray(Image.fromarray(label).resize((width, height), Image.Resampling.NEAREST))
    return resized, label


def random_crop(
    image: np.ndarray,
    label: np.ndarray,
    size: tuple[int, int],
    rng: np.random.Generator,
    ignore_index: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Cut `size` = (height, width) at a random place, padding (image 0, label
    `ignore_index`) where the input is smaller."""
    height, width = size
    pad_h, pad_w = max(0, height - image.shape[0]), max(0, width - image.shape[1])
    if pad_h or pad_w:
        top, left = int(rng.integers(pad_h + 1)), int(rng.integers(pad_w + 1))
        spread = ((top, pad_h - top), (left, pad_w - left))
        image = np.pad(image, (*spread, (0, 0)))
        label = np.pad(label, spread, constant_values=ignore_index)
    top = int(rng.integers(image.shape[0] - height + 1))
    left = int(rng.integers(image.shape[1] - width + 1))
    return image[top : top + height, left : left + width], label[
        top : top + height, left : left + width
    ]


def colour_jitter(
    image: np.ndarray,
    rng: np.random.Generator,
    brightness: float = 0.0,
    contrast: float = 0.0,
    saturation: float = 0.0,
) -> np.ndarray:
    """Scale brightness, contrast (around the image's mean grey) and saturation (around each
    pixel's grey) by random factors in [1 - s, 1 + s]; returns `uint8`."""
    values = image.astype(np.float32)
    if brightness:
        values *= rng.uniform(1 - brightness, 1 + brightness)
    grey_weights = np.array([0.299, 0.587, 0.114], np.float32)
    if contrast:
        grey = values @ grey_weights if values.shape[2] == 3 else values[..., 0]
        factor = rng.uniform(1 - contrast, 1 + contrast)
        values = grey.mean() + factor * (values - grey.mean())
    if saturation and values.shape[2] == 3:
        grey = (values @ grey_weights)[..., None]
        values = grey + rng.uniform(1 - saturation, 1 + saturation) * (values - grey)
    return np.clip(values + 0.5, 0, 255).astype(np.uint8)


def augment(
    image: np.ndarray,
    label: np.ndarray,
    config: AugmentConfig,
    rng: np.random.Generator,
    ignore_index: int,
) -> tuple[np.ndarray, np.ndarray]:
    """One random training view of an (image, label) pair (see `AugmentConfig`)."""
    low, high = config.scale
    if high > low or low != 1.0:
        factor = float(np.exp(rng.uniform(np.log(low), np.log(high))))
        size = (max(1, round(image.shape[0] * factor)), max(1, round(image.shape[1] * factor)))
        image, label = resize(image, label, size)
    if config.crop[0]:
        image, label = random_crop(image, label, config.crop, rng, ignore_index)
    if rng.random() < config.hflip:
        image, label = image[:, ::-1], label[:, ::-1]
    if rng.random() < config.vflip:
        image, label = image[::-1], label[::-1]
    if config.rotate90:
        turns = int(rng.integers(4))
        image, label = np.rot90(image, turns), np.rot90(label, turns)
    if config.brightness or config.contrast or config.saturation:
        image = colour_jitter(image, rng, config.brightness, config.contrast, config.saturation)
    return np.ascontiguousarray(image), np.ascontiguousarray(label)


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """`uint8 (height, width, channels)` -> `float32 (channels, height, width)` in [0, 1]."""
    # A copy: arrays decoded by Pillow are read-only, which torch warns about.
    return torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1).float().div_(255)


def normalise(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """`(batch, channels, height, width)` in [0, 1] -> `(images - mean) / std` per channel
    (`mean`, `std`: `(channels,)`)."""
    return (images - mean[:, None, None]) / std[:, None, None]
