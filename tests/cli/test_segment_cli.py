"""`vocalsep segment` and `vocalsep evaluate --task image`: outputs, no clobbering, one-line
errors."""

import numpy as np
import pytest
from imaging import make_segmentation_model, scene, write_dataset
from PIL import Image
from support import digest

from vocalsep import api, pretrained
from vocalsep.cli import main


def call(capsys, *args):
    code = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return code, captured.out, [line for line in captured.err.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "scenes.ckpt"
    make_segmentation_model().save(path, metadata={"trained_on": "nothing (random weights)"})
    return path


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for index, size in enumerate([(30, 40), (37, 21)]):
        Image.fromarray(scene(*size, seed=index)[0]).save(folder / f"photo{index}.jpg")
    return folder


def test_segment_writes_labels_and_overlay(model_file, images, tmp_path, capsys):
    before = {path: digest(path) for path in images.iterdir()}
    out = tmp_path / "out"
    code, stdout, errors = call(capsys, "segment", images, "--model", model_file, "-o", out)
    assert code == 0 and not errors
    assert sorted(p.name for p in out.iterdir()) == [
        "photo0_labels.png", "photo0_overlay.png", "photo1_labels.png", "photo1_overlay.png",
    ]  # fmt: skip
    assert len(stdout.splitlines()) == 4
    labels = Image.open(out / "photo1_labels.png")
    assert labels.mode == "P" and labels.size == (21, 37)
    assert np.asarray(labels).max() < 3
    assert Image.open(out / "photo1_overlay.png").size == (21, 37)
    assert {path: digest(path) for path in images.iterdir()} == before  # inputs untouched
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary leftovers

    # No clobbering without --overwrite; with it, the outputs are replaced.
    stamp = digest(out / "photo0_labels.png")
    code, _, errors = call(
        capsys, "segment", images / "photo0.jpg", "--model", model_file, "-o", out
    )
    assert code == 1 and len(errors) == 1 and "--overwrite" in errors[0]
    code, _, errors = call(
        capsys, "segment", images / "photo0.jpg", "--model", model_file, "-o", out, "--overwrite"
    )
    assert code == 0 and not errors and digest(out / "photo0_labels.png") == stamp
    code, _, errors = call(
        capsys, "segment", images / "photo0.jpg", "--model", model_file, "-o", out / "flip",
        "--flip",
    )  # fmt: skip
    assert code == 0 and not errors and (out / "flip" / "photo0_labels.png").is_file()


def test_segment_bad_inputs_are_one_line_errors(model_file, images, tmp_path, capsys):
    fake = tmp_path / "fake.png"
    fake.write_text("not an image")
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "out"
    for bad, message in [
        (fake, "not an image"),
        (tmp_path / "missing.png", "does not exist"),
        (empty, "holds no image files"),
    ]:
        code, _, errors = call(capsys, "segment", bad, "--model", model_file, "-o", out)
        assert code == 1 and len(errors) == 1 and message in errors[0], errors
    code, _, errors = call(capsys, "segment", images, "--model", tmp_path / "nope.ckpt")
    assert code == 1 and len(errors) == 1 and "nope.ckpt" in errors[0]
    # A good image next to a bad one is still segmented.
    code, _, errors = call(capsys, "segment", fake, images, "--model", model_file, "-o", out)
    assert code == 1 and len(errors) == 1 and (out / "photo0_overlay.png").exists()
    # The same image twice: segmented once, and the message speaks of images.
    photo = images / "photo1.jpg"
    code, _, errors = call(
        capsys, "segment", photo, photo, "--model", model_file, "-o", tmp_path / "twice"
    )
    assert code == 1 and len(errors) == 1 and "segmented only once" in errors[0], errors
    assert (tmp_path / "twice" / "photo1_labels.png").exists()


def test_segment_without_a_model_says_none_is_installed(images, capsys, monkeypatch):
    monkeypatch.delitem(pretrained.DEFAULT_MODELS, "image-segmentation", raising=False)
    code, _, errors = call(capsys, "segment", images)
    assert code == 1 and len(errors) == 1
    assert "camvid-unet" in errors[0] and "--model PATH" in errors[0]


@pytest.mark.skipif(
    "image-segmentation" not in pretrained.DEFAULT_MODELS, reason="no default image model"
)
def test_segment_without_a_model_uses_the_shipped_default(images, tmp_path, capsys):
    out = tmp_path / "out"
    code, _, errors = call(capsys, "segment", images / "photo0.jpg", "-o", out)
    assert code == 0 and not errors
    labels = np.asarray(Image.open(out / "photo0_labels.png"))
    default = pretrained.DEFAULT_MODELS["image-segmentation"]
    classes = len(api.load_segmentation_model(default, device="cpu").config.class_names)
    assert labels.shape == (30, 40) and labels.max() < classes


def test_evaluate_image_errors(model_file, tmp_path, capsys):
    root = write_dataset(tmp_path / "set", count=2)
    code, out, errors = call(
        capsys, "evaluate", "--task", "image", "--root", root, "--model", model_file,
        "--filter", "0",
    )  # fmt: skip
    assert code == 0 and not errors and "(1 images)" in out
    code, _, errors = call(
        capsys, "evaluate", "--task", "image", "--root", root, "--model", model_file,
        "--baseline", "irm",
    )  # fmt: skip
    assert code == 2 and len(errors) == 1 and "--baseline" in errors[0]
    code, out, errors = call(
        capsys, "evaluate", "--task", "image", "--root", root, "--model", model_file, "--flip"
    )
    assert code == 0 and not errors and "(2 images)" in out
    code, _, errors = call(capsys, "evaluate", "--root", root, "--baseline", "irm", "--flip")
    assert code == 2 and len(errors) == 1 and "--flip: only for --task image" in errors[0]
    (root / "labels" / "1.png").unlink()
    code, _, errors = call(
        capsys, "evaluate", "--task", "image", "--root", root, "--model", model_file
    )
    assert code == 1 and len(errors) == 1 and "has no label map" in errors[0]
