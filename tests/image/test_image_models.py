"""Segmentation models: tiled prediction equals whole-image prediction, any size, checkpoints,
pictures."""

import copy

import numpy as np
import pytest
import torch
from imaging import make_segmentation_model, scene

from vocalsep.core.checkpoint import load_checkpoint, save_checkpoint
from vocalsep.core.errors import CheckpointError, ConfigError
from vocalsep.image.models import (
    SegmentationModel,
    SegmentationModelConfig,
    load_model,
    network_config,
)
from vocalsep.image.predict import (
    label_picture,
    overlay_picture,
    predict_labels,
    predict_logits,
    tile_plans,
)


@torch.no_grad()
def test_tiled_prediction_equals_whole_image_prediction():
    model = make_segmentation_model()
    whole = copy.deepcopy(model)
    whole.config = whole.config.replace(tile_size=1024)
    images = torch.rand(2, 3, 45, 61)
    counts = [
        plan.num_tiles(size) for plan, size in zip(tile_plans(model, 45, 61), (45, 61), strict=True)
    ]
    assert counts == [4, 5]
    assert [plan.tile for plan in tile_plans(whole, 45, 61)] == [48, 64]  # one tile each
    tiled, reference = predict_logits(model, images), predict_logits(whole, images)
    assert tiled.shape == (2, 3, 45, 61)
    torch.testing.assert_close(tiled, reference, atol=1e-4, rtol=1e-4)
    # Without enough context the tiles differ: the test above can fail.
    short = copy.deepcopy(model)
    short.config = short.config.replace(tile_context=0)
    assert (predict_logits(short, images) - reference).abs().max() > 1e-3


@torch.no_grad()
def test_flip_averaging_is_mirror_equivariant():
    model = make_segmentation_model()
    images = torch.rand(1, 3, 37, 50)
    plain, averaged = predict_logits(model, images), predict_logits(model, images, flip=True)
    mirrored = predict_logits(model, images.flip(-1)).flip(-1)
    torch.testing.assert_close(averaged, 0.5 * (plain + mirrored))
    # The average predicts a mirrored image as the mirror of the prediction; a plain pass of
    # this (asymmetric, untrained) network does not.
    torch.testing.assert_close(
        predict_logits(model, images.flip(-1), flip=True).flip(-1), averaged, atol=1e-5, rtol=0
    )
    assert (plain - mirrored).abs().max() > 1e-3
    image = (images[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    assert predict_labels(model, image, flip=True).shape == (37, 50)


@torch.no_grad()
@pytest.mark.parametrize("size", [(1, 1), (7, 5), (33, 17), (64, 64)])
def test_any_image_size(size):
    model = make_segmentation_model()
    image = np.random.default_rng(0).integers(0, 255, (*size, 3), dtype=np.uint8)
    labels = predict_labels(model, image)
    assert labels.shape == size and labels.dtype == np.uint8 and labels.max() < 3


@torch.no_grad()
def test_checkpoint_round_trip_gives_the_same_output(tmp_path):
    model = make_segmentation_model()
    path = tmp_path / "model.ckpt"
    model.save(path, metadata={"trained_on": "nothing"})
    torch.load(path, map_location="cpu", weights_only=True)  # plain data only
    loaded = load_model(path)
    assert loaded.config == model.config and not loaded.training
    images = torch.rand(1, 3, 30, 41)
    assert torch.equal(loaded(images), model(images))
    checkpoint = load_checkpoint(path)
    assert checkpoint.task == "image-segmentation"
    assert checkpoint.task_config["class_names"] == ["background", "box", "disc"]
    checkpoint.task = "audio-separation"
    save_checkpoint(checkpoint, tmp_path / "audio.ckpt")
    with pytest.raises(CheckpointError, match="not a 'image-segmentation' model"):
        load_model(tmp_path / "audio.ckpt")


def test_model_config_checks():
    config = SegmentationModelConfig(class_names=("a", "b", "c"), ignore_index=3)
    values = np.array([[0, 1, 2, 3, 200]], np.uint8)
    assert config.encode(values).tolist() == [[0, 1, 2, 3, 3]]
    assert config.colours().shape == (3, 3)
    network = network_config(3, 3, channels=(4, 8, 16))
    with pytest.raises(ConfigError, match="multiples of 8"):
        SegmentationModel(config.replace(tile_size=20, tile_overlap=4), "unet", network)
    with pytest.raises(ConfigError, match="out_channels"):
        SegmentationModel(config, "unet", network_config(3, 4, channels=(4, 8)))
    for fields in (
        {"class_names": ("a",)},
        {"ignore_index": 1},
        {"label_values": (0, 0)},
        {"palette": ((0, 0, 0),)},
        {"in_channels": 2},
        {"std": (0.0,)},
        {"tile_overlap": 512},
    ):
        with pytest.raises(ConfigError):
            SegmentationModelConfig(**fields)


def test_pictures():
    config = SegmentationModelConfig(
        class_names=("membrane", "cell"), label_values=(0, 255), palette=((255, 0, 0), (0, 0, 255))
    )
    labels = np.array([[0, 1], [1, 0]], np.uint8)
    picture = label_picture(labels, config)
    assert picture.mode == "P" and np.asarray(picture).tolist() == [[0, 255], [255, 0]]
    assert picture.convert("RGB").getpixel((1, 0)) == (0, 0, 255)
    image, _ = scene(8, 8, seed=0)
    overlay = overlay_picture(image[:2, :2, :1], labels, config)
    assert overlay.mode == "RGB" and overlay.size == (2, 2)
