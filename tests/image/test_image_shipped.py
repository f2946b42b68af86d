"""Shipped image models (`camvid-unet`, trained with recipes/camvid): size, safe loading,
and the CamVid acceptance scores."""

from pathlib import Path

import pytest

from vocalsep import api, pretrained

IMAGE_MODELS = sorted(
    name for name, model in pretrained.MODELS.items() if model.task == "image-segmentation"
)
CAMVID_VAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "images" / "camvid" / "val"


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_shipped_image_model_loads(name):
    path = pretrained.model_path(name)
    assert path.stat().st_size <= 15e6
    model = api.load_segmentation_model(name, device="cpu")
    assert not model.training and model.config.num_classes >= 2


@pytest.mark.slow
@pytest.mark.skipif("camvid-unet" not in pretrained.MODELS, reason="camvid-unet is not shipped")
@pytest.mark.skipif(not CAMVID_VAL.is_dir(), reason="needs ../shared/data/images/camvid/val")
def test_camvid_unet_meets_the_acceptance_scores():
    scores = api.evaluate_segmentation(CAMVID_VAL, model="camvid-unet", device="cpu").as_dict()
    assert scores["miou"] >= 0.62 and scores["global_acc"] >= 0.88, scores
