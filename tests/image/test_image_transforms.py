"""Augmentation keeps images and labels aligned; normalisation and tensors."""

import numpy as np
import pytest
import torch

from vocalsep.core.errors import ConfigError
from vocalsep.image.transforms import (
    AugmentConfig,
    augment,
    colour_jitter,
    normalise,
    random_crop,
    to_tensor,
)


def gradient(height=48, width=64):
    """Red = 4 x column, green = 4 x row; label = column // 8 (classes 0..7)."""
    rows, cols = np.mgrid[:height, :width]
    image = np.stack([cols * 4, rows * 4, np.full_like(cols, 100)], axis=-1).astype(np.uint8)
    return image, (cols // 8).astype(np.uint8)


def test_flip_moves_image_and_label_together():
    image, label = gradient()
    config = AugmentConfig(hflip=1.0, vflip=1.0)
    flipped, flipped_label = augment(image, label, config, np.random.default_rng(0), 255)
    assert np.array_equal(flipped, image[::-1, ::-1])
    assert np.array_equal(flipped_label, label[::-1, ::-1])


@pytest.mark.parametrize("seed", range(6))
def test_random_geometry_keeps_labels_on_their_pixels(seed):
    image, label = gradient()
    config = AugmentConfig(scale=(0.5, 2.0), crop=(40, 40), hflip=0.5, vflip=0.5, rotate90=True)
    out, out_label = augment(image, label, config, np.random.default_rng(seed), 255)
    assert out.shape == (40, 40, 3) and out_label.shape == (40, 40)
    assert out.dtype == np.uint8 and out_label.dtype == np.uint8
    real = out_label != 255  # not padding
    # The label each pixel should have, read back from its (interpolated) red value.
    expected = (out[..., 0].astype(int) // 4) // 8
    difference = np.abs(expected[real] - out_label[real].astype(int))
    assert difference.max() <= 1  # bilinear vs nearest may differ at a class border
    assert (difference == 0).mean() > 0.85
    assert set(np.unique(out_label)) <= set(range(8)) | {255}  # no new label values


def test_crop_pads_small_images_with_the_ignore_label():
    image, label = gradient(10, 12)
    out, out_label = random_crop(image, label, (16, 20), np.random.default_rng(0), 11)
    assert out.shape == (16, 20, 3) and (out_label == 11).sum() == 16 * 20 - 10 * 12
    assert (out[out_label == 11] == 0).all()


def test_colour_jitter_changes_colours_only():
    image, label = gradient()
    config = AugmentConfig(brightness=0.3, contrast=0.3, saturation=0.3, hflip=0.0)
    out, out_label = augment(image, label, config, np.random.default_rng(3), 255)
    assert np.array_equal(out_label, label) and out.shape == image.shape
    assert not np.array_equal(out, image)
    grey = colour_jitter(image[..., :1], np.random.default_rng(0), 0.2, 0.2, 0.2)
    assert grey.shape == (48, 64, 1) and grey.dtype == np.uint8


def test_tensor_and_normalisation():
    image, _ = gradient()
    tensor = to_tensor(image)
    assert tensor.shape == (3, 48, 64) and tensor.dtype == torch.float32
    assert float(tensor[0, 0, 1]) == pytest.approx(4 / 255)
    mean, std = torch.tensor([0.5, 0.5, 0.5]), torch.tensor([0.25, 0.5, 1.0])
    normalised = normalise(tensor[None], mean, std)
    assert torch.allclose(normalised[0, 1], (tensor[1] - 0.5) / 0.5)


@pytest.mark.parametrize(
    "fields",
    [{"scale": (0.0, 1.0)}, {"scale": (2.0, 1.0)}, {"crop": (0, 8)}, {"rotate90": True},
     {"crop": (8, 16), "rotate90": True}, {"hflip": 1.5}, {"brightness": 1.0}],
    ids=str,
)  # fmt: skip
def test_invalid_augment_configs(fields):
    with pytest.raises(ConfigError):
        AugmentConfig(**fields)
