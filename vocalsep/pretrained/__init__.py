"""Models shipped inside the package: a name -> file lookup. Nothing is ever downloaded."""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..core.errors import VocalsepError


class ModelNotFoundError(VocalsepError):
    """A model name or path that resolves to no file."""


@dataclass(frozen=True)
class PretrainedModel:
    name: str
    filename: str  # inside this package
    task: str  # "audio-separation" or "image-segmentation"
    summary: str  # one line for `vocalsep models`
    card: str = ""  # markdown model card inside this package
    onnx: str = ""  # the same network exported to ONNX, inside this package (optional)


# The shipped models; each card (markdown next to the weights) says how it was trained.
MODELS: dict[str, PretrainedModel] = {
    "vocalsep-small": PretrainedModel(
        name="vocalsep-small",
        filename="vocalsep-small.ckpt",
        task="audio-separation",
        summary="vocals/accompaniment, stereo spectrogram U-Net (2.5 M), 16 kHz net, full-band "
        "output; dev SDR 9.35/12.73 dB; research / non-commercial use",
        card="vocalsep-small.md",
        onnx="vocalsep-small.onnx",
    ),
    "camvid-unet": PretrainedModel(
        name="camvid-unet",
        filename="camvid-unet.ckpt",
        task="image-segmentation",
        summary="street scenes, CamVid's 11 classes, 2-D U-Net (2.8 M); CamVid val mIoU 64.2 / "
        "global acc. 90.3; research / non-commercial use",
        card="camvid-unet.md",
    ),
}
DEFAULT_MODELS: dict[str, str] = {  # task -> default
    "audio-separation": "vocalsep-small",
    "image-segmentation": "camvid-unet",
}
DEFAULT = "default"  # as a model name: the default model of the task at hand
COMMANDS = {"audio-separation": "separate", "image-segmentation": "segment"}
_KINDS = {"audio-separation": "audio separation", "image-segmentation": "image segmentation"}


def _package_file(filename: str) -> Path:
    return Path(str(resources.files(__name__).joinpath(filename)))


def model_path(name: str) -> Path:
    return _package_file(MODELS[name].filename)


def model_card(name: str) -> str:
    card = MODELS[name].card
    return _package_file(card).read_text(encoding="utf-8") if card else MODELS[name].summary


def resolve(name_or_path: str | os.PathLike | None, task: str) -> Path:
    """Return the checkpoint file for a shipped model name, an explicit path, or (None) the
    default model of `task`; raise `ModelNotFoundError` with the fix otherwise."""
    if name_or_path is None:
        default = DEFAULT_MODELS.get(task)
        if default is None:
            raise ModelNotFoundError(
                f"no default {task} model is installed in this version of vocalsep; "
                "pass a checkpoint with --model PATH (see `vocalsep models`)"
            )
        return model_path(default)
    text = os.fspath(name_or_path)
    if text == DEFAULT:
        return resolve(None, task)
    if text in MODELS:
        if MODELS[text].task != task:
            other = _KINDS.get(MODELS[text].task, MODELS[text].task)
            hint = f"; the default one is {DEFAULT_MODELS[task]}" if task in DEFAULT_MODELS else ""
            raise ModelNotFoundError(
                f"model {text!r} is an {other} model, not an {_KINDS.get(task, task)} model{hint}"
            )
        return model_path(text)
    path = Path(text).expanduser()
    if path.is_file():
        return path
    shipped = ", ".join([DEFAULT, *(name for name, m in MODELS.items() if m.task == task)])
    if path.exists():
        raise ModelNotFoundError(f"model path {path} is not a file; pass a checkpoint file")
    raise ModelNotFoundError(
        f"model {text!r} is neither a shipped model (shipped: {shipped}) nor an existing file"
    )


ONNX_SUFFIX = ".onnx"


def resolve_files(
    name_or_path: str | os.PathLike | None, task: str
) -> tuple[Path | None, Path | None]:
    """`(checkpoint, onnx file)` of a shipped model name (its ONNX file when it ships one), a
    checkpoint path `(path, None)`, an ONNX file `(None, path)`, or (None) the default model
    of `task`; `ModelNotFoundError` as `resolve` otherwise."""
    path = resolve(name_or_path, task)
    if path.suffix == ONNX_SUFFIX:
        return None, path
    name = next((n for n, m in MODELS.items() if _package_file(m.filename) == path), None)
    onnx = MODELS[name].onnx if name else ""
    return path, (_package_file(onnx) if onnx and _package_file(onnx).is_file() else None)
