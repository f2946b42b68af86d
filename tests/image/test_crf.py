"""The dense CRF that refines segmentation logits with the image (`vocalsep.image.crf`)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from imaging import make_segmentation_model, write_dataset

from vocalsep.core.errors import ConfigError
from vocalsep.image.crf import CRFConfig, kernel, refine


def two_regions(noise: float, seed: int = 0):
    """A dark left half and a bright right half, and logits that know the halves only
    roughly: the true margin 0.5, plus noise."""
    torch.manual_seed(seed)
    image = torch.zeros(1, 3, 48, 64)
    image[..., 32:] = 1.0
    truth = torch.zeros(48, 64, dtype=torch.long)
    truth[:, 32:] = 1
    logits = torch.zeros(1, 2, 48, 64)
    logits[0, 1] = (2 * truth.float() - 1) * 0.5 + noise * torch.randn(48, 64)
    return image, truth, logits


def test_the_crf_cleans_noisy_labels_along_the_image_edges():
    image, truth, logits = two_regions(noise=1.0)
    before = (logits.argmax(1)[0] == truth).float().mean()
    after = (refine(logits, image, CRFConfig()).argmax(1)[0] == truth).float().mean()
    assert before < 0.8 and after > 0.97, (before, after)


def test_the_kernel_stops_at_colour_edges_and_at_the_image_border():
    image, _, _ = two_regions(noise=0.0)
    weights = kernel(image, CRFConfig(window=3, smoothness_weight=0.0))  # (1, 9, h, w)
    left_of_edge = weights[0, :, 10, 31]  # the neighbour on the right is bright: ~0 weight
    assert left_of_edge[5] < 1e-6 and left_of_edge[3] > 1.0
    assert weights[0, 4].abs().max() == 0  # no message to itself
    assert weights[0, 0, 0, 0] == 0  # beyond the top-left corner


def test_config_is_checked():
    with pytest.raises(ConfigError, match="odd window"):
        CRFConfig(window=4)


def test_segment_and_evaluate_take_the_crf(tmp_path, capsys):
    from support import call

    make_segmentation_model().save(tmp_path / "m.ckpt")
    root = write_dataset(tmp_path / "data", count=2)
    code, out, err = call(
        capsys, "evaluate", "--task", "image", "--root", root, "--model", tmp_path / "m.ckpt",
        "--crf", "--no-progress",
    )  # fmt: skip
    assert code == 0, err
    assert "mIoU" in out
    images = sorted((root / "images").iterdir())
    code, out, err = call(
        capsys, "segment", images[0], "--model", tmp_path / "m.ckpt", "-o", tmp_path / "out",
        "--crf",
    )  # fmt: skip
    assert code == 0 and len(out.split()) == 2, err
    labels = np.asarray(__import__("PIL.Image").Image.open(out.split()[0]))
    assert labels.ndim == 2
