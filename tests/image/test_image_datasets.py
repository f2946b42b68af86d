"""Dataset folders: pairing, label values, natural order, folds; the real sets when present."""

from pathlib import Path

import numpy as np
import pytest
from imaging import scene_model_config, write_dataset
from PIL import Image

from vocalsep.image.datasets import (
    DATASETS,
    SegmentationFolder,
    camvid,
    find_pairs,
    fold_names,
    membrane,
)
from vocalsep.image.errors import DatasetError, ImageReadError
from vocalsep.image.io import read_image, read_label

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "images"


def test_folder_reads_pairs_in_natural_order(tmp_path):
    root = write_dataset(tmp_path / "set", count=12)
    dataset = SegmentationFolder(root, scene_model_config())
    assert len(dataset) == 12 and dataset.names[:3] == ["0", "1", "2"]
    assert dataset.names[-2:] == ["10", "11"]
    image, label = dataset[3]
    assert image.shape == (40, 52, 3) and image.dtype == np.uint8
    assert label.shape == (40, 52) and set(np.unique(label)) <= {0, 1, 2, 255}
    assert np.array_equal(label, np.asarray(Image.open(root / "labels" / "3.png")))
    assert dataset[3][0] is image  # decoded once, then kept
    only = SegmentationFolder(root, scene_model_config(), names=["5", "10"])
    assert only.names == ["5", "10"]


def test_label_values_map_to_classes(tmp_path):
    root = tmp_path / "binary"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    Image.fromarray(np.full((4, 6), 128, np.uint8)).save(root / "images" / "a.png")
    values = np.array([[0, 255, 7, 0, 0, 255]] * 4, np.uint8)
    Image.fromarray(values).save(root / "labels" / "a.png")
    config = scene_model_config(
        class_names=("membrane", "cell"), label_values=(0, 255), in_channels=1
    )
    image, label = SegmentationFolder(root, config)[0]
    assert image.shape == (4, 6, 1)
    assert label[0].tolist() == [0, 1, 255, 0, 0, 1]  # 7 is no class: ignored
    assert config.decode(label)[0].tolist() == [0, 255, 255, 0, 0, 255]


def test_folder_errors_are_one_line(tmp_path):
    with pytest.raises(DatasetError, match="no images/ folder"):
        find_pairs(tmp_path)
    root = write_dataset(tmp_path / "set", count=2)
    (root / "labels" / "1.png").unlink()
    with pytest.raises(DatasetError, match="has no label map"):
        find_pairs(root)
    root = write_dataset(tmp_path / "other", count=1)
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(root / "labels" / "0.png")
    with pytest.raises(DatasetError, match="labels must match"):
        SegmentationFolder(root, scene_model_config())[0]
    with pytest.raises(DatasetError, match="no image named"):
        SegmentationFolder(root, scene_model_config(), names=["7"])
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    with pytest.raises(ImageReadError, match="broken.png"):
        read_image(broken)
    Image.fromarray(np.zeros((3, 3, 3), np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(ImageReadError, match="one value per pixel"):
        read_label(tmp_path / "rgb.png")


def test_folds_are_contiguous_and_cover_everything():
    names = [str(i) for i in range(30)]
    held_out = []
    for fold in range(5):
        train, validation = fold_names(names, 5, fold)
        assert len(validation) == 6 and not set(train) & set(validation)
        assert validation == [str(i) for i in range(6 * fold, 6 * fold + 6)]
        held_out += validation
    assert held_out == names
    with pytest.raises(DatasetError):
        fold_names(names, 5, 5)


@pytest.mark.skipif(not SHARED.is_dir(), reason="needs ../shared/data/images")
def test_real_datasets():
    val = camvid(SHARED / "camvid", "val", cache=False)
    assert len(val) == 101 and len(find_pairs(SHARED / "camvid" / "train")) == 367
    image, label = val[0]
    assert image.shape == (360, 480, 3) and label.max() <= 11
    assert DATASETS.get("camvid").model.ignore_index == 11
    stack = membrane(SHARED / "membrane", cache=False)
    image, label = stack[0]
    assert len(stack) == 30 and image.shape == (512, 512, 1)
    assert set(np.unique(label)) == {0, 1}
