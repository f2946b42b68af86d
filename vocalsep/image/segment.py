"""Segmenting image files with a segmentation model: one image, a planned batch of files
(label PNG and colour overlay each, confined to the output folder), or a scored dataset."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from .. import pretrained
from ..core.device import select_device
from ..core.outputs import Job
from ..core.outputs import plan as plan_outputs

IMAGE_TASK = "image-segmentation"
SEGMENT_FILENAME = "{track}_{stem}.{ext}"
SEGMENT_OUTPUTS = ("labels", "overlay")  # the class-value PNG and the colour overlay


def load_segmentation_model(model=None, *, device: str = "auto"):
    """A `vocalsep.image.models.SegmentationModel` in eval mode on `device`, from a shipped model
    name, a checkpoint path, or (None) the default image model."""
    from .models import SegmentationModel, load_model

    if isinstance(model, SegmentationModel):
        return model.eval()
    if model is None and IMAGE_TASK not in pretrained.DEFAULT_MODELS:
        raise pretrained.ModelNotFoundError(
            "no CamVid segmentation model (camvid-unet) is installed in this version of vocalsep "
            "yet; train one (recipes/camvid/README.md) and pass it with --model PATH"
        )
    return load_model(pretrained.resolve(model, IMAGE_TASK)).to(select_device(device)).eval()


def segment_image(
    image, model=None, *, device: str = "auto", flip: bool = False, crf: bool = False
):
    """Class indices `uint8 (height, width)` of an image: a path, or a `uint8` array
    `(height, width, channels)` with the model's channels (1 grey or 3 RGB). `crf`: refine the
    logits with a dense CRF on the image first (`vocalsep.image.crf`; slower). `flip`: average
    the prediction with that of the mirrored image (twice the time; CamVid val mIoU 64.16 ->
    64.82 for camvid-unet)."""
    from .io import read_image
    from .predict import predict_labels

    network = load_segmentation_model(model, device=device)
    if isinstance(image, (str, os.PathLike)):
        image = read_image(image, network.config.in_channels)
    return predict_labels(network, image, flip=flip, crf=_crf(crf))


def plan_segment_jobs(
    inputs: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    filename: str = SEGMENT_FILENAME,
    overwrite: bool = False,
    skip_existing: bool = False,
) -> list[Job]:
    """Like `plan_jobs`, for images: a folder stands for the image files directly inside it;
    each image gets `labels` and `overlay` PNG outputs (`filename` fills {track} with the image
    name, {stem} with the output kind, {ext} with png)."""
    from .datasets import image_files
    from .io import IMAGE_EXTENSIONS

    def no_images(folder: Path) -> str:
        return f"{folder}: folder holds no image files ({' '.join(sorted(IMAGE_EXTENSIONS))})"

    return plan_outputs(
        inputs,
        out_dir,
        dict.fromkeys(SEGMENT_OUTPUTS, "png"),
        template=filename,
        expand=lambda folder, exclude: image_files(folder),
        empty_folder=no_images,
        overwrite=overwrite,
        skip_existing=skip_existing,
        verb="segmented",
    )


def segment_file(
    path: str | os.PathLike,
    out_dir: str | os.PathLike = "segmented",
    *,
    model=None,
    device: str = "auto",
    filename: str = SEGMENT_FILENAME,
    overwrite: bool = False,
    skip_existing: bool = False,
    outputs: dict[str, Path] | None = None,
    flip: bool = False,
    crf: bool = False,
) -> dict[str, Path]:
    """Segment one image file and write `labels` (a palette PNG whose pixel values are the
    classes' label values, as in the training labels) and `overlay` (the image blended with
    the class colours); returns output kind -> written path. They are written to temporary
    files and renamed only when all succeeded; an existing output is an `OutputExistsError`
    unless `overwrite` (replace it) or `skip_existing` (keep it). `flip` as in
    `segment_image`."""
    from .io import read_image, write_pngs
    from .predict import label_picture, overlay_picture, predict_labels

    network = load_segmentation_model(model, device=device)
    if outputs is None:
        (job,) = plan_segment_jobs(
            [path], out_dir, filename=filename, overwrite=overwrite, skip_existing=skip_existing
        )
        outputs = job.writes()
    if not outputs:
        return {}
    image = read_image(path, network.config.in_channels)
    labels = predict_labels(network, image, flip=flip, crf=_crf(crf))
    pictures = {
        "labels": lambda: label_picture(labels, network.config),
        "overlay": lambda: overlay_picture(image, labels, network.config),
    }
    write_pngs({outputs[kind]: pictures[kind]() for kind in outputs}, overwrite=overwrite)
    return dict(outputs)


def evaluate_segmentation(
    root: str | os.PathLike,
    *,
    model=None,
    names: Sequence[str] = (),
    max_images: int | None = None,
    device: str = "auto",
    flip: bool = False,
    crf: bool = False,
    progress: Callable[[int, int, str | None], None] | None = None,
):
    """Score a segmentation model on a dataset folder (`root/images`, `root/labels`, label
    values as the model's) through the same tiled prediction as `segment_file` (`flip` as in
    `segment_image`). `names` keeps
    images whose name contains one of them (case-insensitive), `max_images` the first N.
    Returns `vocalsep.image.metrics.SegmentationScores` (one confusion matrix over all images;
    `.table()` prints per class and overall scores); raises `VocalsepError` subclasses."""
    from .datasets import SegmentationFolder, find_pairs
    from .errors import DatasetError
    from .metrics import SegmentationScores
    from .predict import predict_labels

    if max_images is not None and max_images < 1:
        raise DatasetError(f"the number of images must be at least 1, got {max_images}")
    network = load_segmentation_model(model, device=device)
    found = [name for name, _, _ in find_pairs(root)]
    if names:
        wanted = [name.lower() for name in names]
        found = [name for name in found if any(part in name.lower() for part in wanted)]
        if not found:
            raise DatasetError(f"no image of {root} matches {', '.join(names)}")
    found = found[:max_images] if max_images else found
    dataset = SegmentationFolder(root, network.config, names=found, cache=False)
    scores = SegmentationScores(network.config.class_names, network.config.ignore_index)
    for index, name in enumerate(dataset.names):
        if progress:
            progress(index, len(dataset), name)
        image, truth = dataset[index]
        scores.add(truth, predict_labels(network, image, flip=flip, crf=_crf(crf)))
    if progress:
        progress(len(dataset), len(dataset), None)
    return scores


def _crf(enabled: bool):
    """The CRF's default settings when asked for, else None."""
    if not enabled:
        return None
    from .crf import CRFConfig

    return CRFConfig()
