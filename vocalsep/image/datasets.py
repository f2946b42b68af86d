"""Segmentation datasets: a folder of images with label PNGs, and the class tables of CamVid and
the ISBI 2012 membrane set.

A dataset folder holds `images/` (PNG, JPEG, ...) and `labels/` with one label PNG per image,
of the same name stem (`images/0001TP_006690.jpg` -> `labels/0001TP_006690.png`), whose pixel
values are the classes' label values (see `SegmentationModelConfig.label_values`). Images are
listed in natural order (`2.png` before `10.png`). Decoded images are kept in memory: the sets
are small (CamVid's 367 training frames take 190 MB).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.registry import Registry
from .errors import DatasetError
from .io import IMAGE_EXTENSIONS, read_image, read_label
from .models import SegmentationModelConfig

StrPath = str | os.PathLike


@dataclass(frozen=True)
class DatasetInfo:
    """A known dataset: the class table (and input statistics) a model trained on it uses."""

    name: str
    model: SegmentationModelConfig
    description: str


CAMVID_CLASSES = (
    "Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car",
    "Pedestrian", "Bicyclist",
)  # fmt: skip
# SegNet's colours for the 11 classes.
CAMVID_PALETTE = (
    (128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222), (128, 128, 0),
    (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192),
)  # fmt: skip

DATASETS: Registry[DatasetInfo] = Registry("image dataset")
DATASETS.register(
    "camvid",
    DatasetInfo(
        name="camvid",
        model=SegmentationModelConfig(
            class_names=CAMVID_CLASSES,
            palette=CAMVID_PALETTE,
            ignore_index=11,  # label 11 is "void": ignored by the loss and the metrics
            in_channels=3,
            # Pixel statistics of camvid/train (RGB, values in [0, 1]).
            mean=(0.4117, 0.4250, 0.4324),
            std=(0.3068, 0.3115, 0.3069),
        ),
        description="CamVid, SegNet's 11 classes (label 11 = void, ignored), 480x360 RGB",
    ),
)
DATASETS.register(
    "membrane",
    DatasetInfo(
        name="membrane",
        model=SegmentationModelConfig(
            class_names=("membrane", "cell"),
            palette=((255, 48, 48), (40, 90, 200)),
            label_values=(0, 255),  # black membrane, white cell interior
            in_channels=1,
            # Pixel statistics of the 30 training images.
            mean=(0.4948,),
            std=(0.1726,),
        ),
        description="ISBI 2012 EM membrane segmentation: membrane (0) vs cell (255), grey",
    ),
)


def natural_key(name: str) -> tuple:
    """Sort key that orders the numbers inside names by value: 2 before 10."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


def image_files(folder: StrPath) -> list[Path]:
    """The image files directly inside `folder` (not hidden), in natural order."""
    folder = Path(folder)
    files = [
        path
        for path in folder.iterdir()
        if path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")
    ]
    return sorted((path for path in files if path.is_file()), key=lambda p: natural_key(p.name))


def find_pairs(folder: StrPath) -> list[tuple[str, Path, Path]]:
    """`(name, image path, label path)` of every image in `folder/images`, in natural order;
    `DatasetError` if a folder is missing or empty or an image has no label."""
    folder = Path(folder)
    images, labels = folder / "images", folder / "labels"
    for sub in (images, labels):
        if not sub.is_dir():
            raise DatasetError(
                f"{folder} has no {sub.name}/ folder; a dataset folder holds images/ and "
                "labels/ (label PNGs named like the images)"
            )
    pairs = []
    for image in image_files(images):
        label = labels / f"{image.stem}.png"
        if not label.is_file():
            raise DatasetError(f"{image} has no label map {label}; add it or remove the image")
        pairs.append((image.stem, image, label))
    if not pairs:
        extensions = " ".join(sorted(IMAGE_EXTENSIONS))
        raise DatasetError(f"{images} holds no images ({extensions})")
    names = [name for name, _, _ in pairs]
    if len(set(names)) != len(names):
        raise DatasetError(f"{images} holds two images with the same name stem")
    return pairs


def fold_names(names: Sequence[str], folds: int, fold: int) -> tuple[list[str], list[str]]:
    """(training, validation) names for cross-validation fold `fold` of `folds`: the validation
    fold is a contiguous block of the names in natural order (neighbouring slices of a stack
    stay together, so no validation image has a near copy in training)."""
    if not 2 <= folds <= len(names) or not 0 <= fold < folds:
        raise DatasetError(
            f"cannot make fold {fold} of {folds} from {len(names)} images "
            "(need 2 <= folds <= images and 0 <= fold < folds)"
        )
    ordered = sorted(names, key=natural_key)
    bounds = np.linspace(0, len(ordered), folds + 1).round().astype(int)
    held_out = ordered[bounds[fold] : bounds[fold + 1]]
    return [name for name in ordered if name not in held_out], held_out


class SegmentationFolder:
    """The (image, label) pairs of a dataset folder as numpy arrays: `uint8 (h, w, channels)`
    and class indices `uint8 (h, w)` (`ignore_index` where the label value is no class's).

    `names` keeps only those images (by name stem). Each pair is decoded on first use and
    kept (`cache=True`)."""

    def __init__(
        self,
        folder: StrPath,
        model: SegmentationModelConfig,
        *,
        names: Sequence[str] | None = None,
        cache: bool = True,
    ) -> None:
        self.folder = Path(folder)
        self.model = model
        pairs = find_pairs(self.folder)
        if names is not None:
            wanted = set(names)
            missing = sorted(wanted - {name for name, _, _ in pairs})
            if missing:
                raise DatasetError(f"{self.folder} has no image named {', '.join(missing)}")
            pairs = [pair for pair in pairs if pair[0] in wanted]
        self.pairs = pairs
        self.cache = cache
        self._decoded: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    @property
    def names(self) -> list[str]:
        return [name for name, _, _ in self.pairs]

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if index in self._decoded:
            return self._decoded[index]
        _, image_path, label_path = self.pairs[index]
        image = read_image(image_path, self.model.in_channels)
        label = self.model.encode(read_label(label_path))
        if label.shape != image.shape[:2]:
            raise DatasetError(
                f"{label_path} is {label.shape[1]}x{label.shape[0]} but its image is "
                f"{image.shape[1]}x{image.shape[0]}; labels must match their images"
            )
        if self.cache:
            self._decoded[index] = (image, label)
        return image, label

    def labels(self) -> Iterator[np.ndarray]:
        """Every label map (class indices), in order."""
        for index in range(len(self)):
            yield self[index][1]


def camvid(root: StrPath, split: str = "train", **options) -> SegmentationFolder:
    """CamVid's `root/<split>` (`train` or `val`) with SegNet's 11 classes."""
    return SegmentationFolder(Path(root) / split, DATASETS.get("camvid").model, **options)


def membrane(root: StrPath, **options) -> SegmentationFolder:
    """The ISBI 2012 membrane training set, `root/train` (30 images, no test labels)."""
    return SegmentationFolder(Path(root) / "train", DATASETS.get("membrane").model, **options)
