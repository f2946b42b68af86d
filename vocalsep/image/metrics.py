"""Segmentation metrics, all read from one confusion matrix.

`confusion[i, j]` counts the pixels of true class i predicted as class j; pixels whose true
label is `ignore_index` (or any value that is no class) are left out. From it:

    global accuracy      sum_i C[i,i] / sum C                      (SegNet's "G")
    class accuracy       C[i,i] / sum_j C[i,j]   (recall), mean over classes: SegNet's "C"
    IoU                  C[i,i] / (sum_j C[i,j] + sum_j C[j,i] - C[i,i]), mean: mIoU
    frequency-weighted IoU   sum_i (sum_j C[i,j] / sum C) IoU_i
    Dice (F1)            2 C[i,i] / (sum_j C[i,j] + sum_j C[j,i])

Undefined values are NaN and left out of every mean: the accuracy of a class with no true
pixel, and the IoU and Dice of a class absent from both the truth and the prediction (nothing
to get right or wrong). A class that is predicted but absent from the truth has IoU and Dice 0
(only false positives), which the means include. So the scores of a set of images are those of
its summed confusion matrix, as in SegNet's and the PASCAL VOC evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch


def confusion_matrix(
    truth: np.ndarray | torch.Tensor,
    prediction: np.ndarray | torch.Tensor,
    num_classes: int,
    ignore_index: int | None = 255,
) -> np.ndarray:
    """`int64 (classes, classes)` counts of (true class, predicted class) over the pixels of
    `truth` that hold a class index (so `ignore_index`, or any other value outside
    `[0, classes)`, is skipped). Both inputs have the same shape, any number of dims."""
    truth = torch.as_tensor(truth).reshape(-1).long()
    prediction = torch.as_tensor(prediction).reshape(-1).long().to(truth.device)
    if truth.shape != prediction.shape:
        raise ValueError(
            f"truth and prediction differ in size: {truth.shape} vs {prediction.shape}"
        )
    keep = (truth >= 0) & (truth < num_classes)
    if ignore_index is not None:
        keep &= truth != ignore_index
    if ((prediction[keep] < 0) | (prediction[keep] >= num_classes)).any():
        raise ValueError(f"predictions must be class indices in [0, {num_classes})")
    pairs = truth[keep] * num_classes + prediction[keep]
    counts = torch.bincount(pairs, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).cpu().numpy()


def _divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Elementwise ratio, NaN where the denominator is 0."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    safe = np.where(denominator > 0, denominator, 1.0)
    return np.where(denominator > 0, numerator / safe, np.nan)


def _nanmean(values: np.ndarray) -> float:
    values = np.asarray(values, dtype=np.float64)
    return float(values[~np.isnan(values)].mean()) if (~np.isnan(values)).any() else float("nan")


def global_accuracy(confusion: np.ndarray) -> float:
    """Correct pixels / counted pixels (NaN without pixels)."""
    return float(_divide(np.trace(confusion), confusion.sum()))


def class_accuracy(confusion: np.ndarray) -> np.ndarray:
    """Per class: correct / true pixels of the class (recall); NaN for a class with no true
    pixel."""
    return _divide(np.diag(confusion), confusion.sum(axis=1))


def mean_class_accuracy(confusion: np.ndarray) -> float:
    return _nanmean(class_accuracy(confusion))


def iou(confusion: np.ndarray) -> np.ndarray:
    """Per class intersection over union; NaN for a class absent from truth and prediction."""
    correct = np.diag(confusion)
    union = confusion.sum(axis=1) + confusion.sum(axis=0) - correct
    return _divide(correct, union)


def mean_iou(confusion: np.ndarray) -> float:
    return _nanmean(iou(confusion))


def frequency_weighted_iou(confusion: np.ndarray) -> float:
    """IoU weighted by each class's share of the true pixels (classes with no true pixel
    weigh 0)."""
    total = confusion.sum()
    if total == 0:
        return float("nan")
    frequency = confusion.sum(axis=1) / total
    scores = iou(confusion)
    present = frequency > 0
    return float((frequency[present] * scores[present]).sum())


def dice(confusion: np.ndarray) -> np.ndarray:
    """Per class Dice coefficient (= F1); NaN for a class absent from truth and prediction."""
    correct = np.diag(confusion)
    return _divide(2 * correct, confusion.sum(axis=1) + confusion.sum(axis=0))


def mean_dice(confusion: np.ndarray) -> float:
    return _nanmean(dice(confusion))


def metric_key(name: str) -> str:
    """A class name as part of a metric name: lower case, non-alphanumerics as '_'."""
    return "".join(char if char.isalnum() else "_" for char in name.lower()).strip("_")


@dataclass
class SegmentationScores:
    """An accumulating confusion matrix and every score read from it."""

    class_names: Sequence[str]
    ignore_index: int | None = 255
    confusion: np.ndarray | None = None
    images: int = 0

    def __post_init__(self) -> None:
        count = len(self.class_names)
        if self.confusion is None:
            self.confusion = np.zeros((count, count), dtype=np.int64)

    def add(self, truth: np.ndarray | torch.Tensor, prediction: np.ndarray | torch.Tensor) -> None:
        """Count one image (or a batch) of true and predicted class indices."""
        truth = torch.as_tensor(truth)
        self.confusion += confusion_matrix(
            truth, prediction, len(self.class_names), self.ignore_index
        )
        self.images += 1 if truth.dim() <= 2 else truth.shape[0]

    def as_dict(self) -> dict[str, float]:
        """Fractions in [0, 1]: global_acc, class_acc, miou, fwiou, dice (mean), pixel_error
        (1 - global_acc), and iou_<class> for every class (NaN where undefined)."""
        c = self.confusion
        scores = {
            "global_acc": global_accuracy(c),
            "class_acc": mean_class_accuracy(c),
            "miou": mean_iou(c),
            "fwiou": frequency_weighted_iou(c),
            "dice": mean_dice(c),
        }
        scores["pixel_error"] = 1 - scores["global_acc"]
        for name, value in zip(self.class_names, iou(c), strict=True):
            scores[f"iou_{metric_key(name)}"] = float(value)
        return scores

    def table(self) -> str:
        """Per class IoU, accuracy, Dice and share of true pixels, then the overall scores, in
        percent (NaN printed as '-')."""

        def cell(value: float) -> str:
            return f"{100 * value:7.2f}" if np.isfinite(value) else f"{'-':>7}"

        c = self.confusion
        width = max(12, *(len(name) for name in self.class_names))
        share = _divide(c.sum(axis=1), c.sum())
        lines = [f"{'class':<{width}} {'IoU':>7} {'acc':>7} {'Dice':>7} {'pixels%':>7}"]
        for row in zip(self.class_names, iou(c), class_accuracy(c), dice(c), share, strict=True):
            name, *values = row
            lines.append(f"{name:<{width}} " + " ".join(cell(value) for value in values))
        scores = self.as_dict()
        lines.append(
            f"{'overall':<{width}} {cell(scores['miou'])} {cell(scores['class_acc'])} "
            f"{cell(scores['dice'])} {cell(1.0 if c.sum() else float('nan'))}"
        )
        lines.append(
            f"global accuracy {100 * scores['global_acc']:.2f}  class accuracy "
            f"{100 * scores['class_acc']:.2f}  mIoU {100 * scores['miou']:.2f}  "
            f"fwIoU {100 * scores['fwiou']:.2f}  mean Dice {100 * scores['dice']:.2f}  "
            f"pixel error {100 * scores['pixel_error']:.2f}  (percent)"
        )
        return "\n".join(lines)
