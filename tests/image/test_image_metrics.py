"""Metrics from one confusion matrix, checked against matrices worked out by hand."""

import math

import numpy as np
import pytest
import torch

from vocalsep.image.metrics import (
    SegmentationScores,
    class_accuracy,
    confusion_matrix,
    dice,
    frequency_weighted_iou,
    global_accuracy,
    iou,
    mean_class_accuracy,
    mean_dice,
    mean_iou,
)

# 3 classes; the last truth pixel is void (255).
TRUTH = np.array([[0, 0, 1], [1, 2, 255]], dtype=np.uint8)
PREDICTION = np.array([[0, 1, 1], [2, 2, 0]], dtype=np.uint8)
# Pairs (truth, prediction): (0,0) (0,1) (1,1) (1,2) (2,2); (255, 0) is not counted.
BY_HAND = np.array([[1, 1, 0], [0, 1, 1], [0, 0, 1]])


def test_confusion_matrix_skips_the_ignore_label():
    assert np.array_equal(confusion_matrix(TRUTH, PREDICTION, 3, ignore_index=255), BY_HAND)
    # Torch tensors give the same; a truth value that is no class (7) is skipped too.
    truth = torch.tensor([[0, 0, 1], [1, 2, 7]])
    assert np.array_equal(confusion_matrix(truth, torch.from_numpy(PREDICTION), 3), BY_HAND)
    # Without an ignore index, 255 is still no class index.
    assert np.array_equal(confusion_matrix(TRUTH, PREDICTION, 3, ignore_index=None), BY_HAND)


def test_scores_by_hand():
    c = BY_HAND
    assert global_accuracy(c) == pytest.approx(3 / 5)
    assert class_accuracy(c) == pytest.approx([1 / 2, 1 / 2, 1])
    assert mean_class_accuracy(c) == pytest.approx(2 / 3)
    # IoU = TP / (row + column - TP): 1/(2+1-1), 1/(2+2-1), 1/(1+2-1)
    assert iou(c) == pytest.approx([1 / 2, 1 / 3, 1 / 2])
    assert mean_iou(c) == pytest.approx(4 / 9)
    # Frequency weights 2/5, 2/5, 1/5 of the true pixels.
    assert frequency_weighted_iou(c) == pytest.approx(0.4 * 0.5 + 0.4 / 3 + 0.2 * 0.5)
    # Dice = 2 TP / (row + column): 2/3, 2/4, 2/3
    assert dice(c) == pytest.approx([2 / 3, 1 / 2, 2 / 3])
    assert mean_dice(c) == pytest.approx(11 / 18)


def test_absent_classes_are_nan_and_left_out_of_means():
    # 4 classes: class 0 true everywhere, predicted right once; class 3 predicted once but never
    # true; classes 1 and 2 appear nowhere.
    c = confusion_matrix(np.array([0, 0]), np.array([0, 3]), 4)
    assert np.array_equal(c[0], [1, 0, 0, 1]) and c.sum() == 2
    scores = iou(c)
    assert scores[0] == pytest.approx(1 / 2) and scores[3] == 0
    assert math.isnan(scores[1]) and math.isnan(scores[2])
    assert mean_iou(c) == pytest.approx(1 / 4)  # (1/2 + 0) / 2: the false positive counts
    accuracy = class_accuracy(c)
    assert accuracy[0] == pytest.approx(1 / 2) and np.isnan(accuracy[1:]).all()
    assert mean_class_accuracy(c) == pytest.approx(1 / 2)
    assert dice(c)[3] == 0 and np.isnan(dice(c)[1:3]).all()
    assert frequency_weighted_iou(c) == pytest.approx(1 / 2)
    assert math.isnan(global_accuracy(np.zeros((2, 2), dtype=np.int64)))


def test_scores_accumulate_like_one_big_image():
    scores = SegmentationScores(["a", "b", "c"], ignore_index=255)
    scores.add(TRUTH[:1], PREDICTION[:1])
    scores.add(torch.from_numpy(TRUTH[1:]), torch.from_numpy(PREDICTION[1:]))
    assert np.array_equal(scores.confusion, BY_HAND) and scores.images == 2
    values = scores.as_dict()
    assert values["miou"] == pytest.approx(4 / 9) and values["global_acc"] == pytest.approx(0.6)
    assert values["pixel_error"] == pytest.approx(0.4) and values["iou_b"] == pytest.approx(1 / 3)
    table = scores.table()
    assert "mIoU 44.44" in table and "global accuracy 60.00" in table
    assert table.splitlines()[2].split()[:2] == ["b", "33.33"]


def test_predictions_must_be_classes():
    with pytest.raises(ValueError):
        confusion_matrix(np.array([0, 1]), np.array([0, 5]), 3)
    with pytest.raises(ValueError):
        confusion_matrix(np.array([0, 1]), np.array([0, 1, 1]), 3)
