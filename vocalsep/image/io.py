"""Reading images and label maps, writing PNGs atomically.

Images are numpy `uint8` arrays `(height, width, channels)`; label maps are `uint8`
`(height, width)` holding the values stored in the PNG (see `models.LabelCoding` for how values
become class indices). Outputs go to a hidden temporary file beside the target and are renamed
into place only once every output of a call is complete.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..core.errors import OutputExistsError
from ..core.files import reserve_temp
from .errors import ImageReadError, ImageWriteError

StrPath = str | os.PathLike

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
)
_MODES = {1: "L", 3: "RGB"}


def _open(path: Path) -> Image.Image:
    try:
        image = Image.open(path)
        image.load()
        return image
    except FileNotFoundError:
        raise ImageReadError(f"{path} does not exist; check the path") from None
    except IsADirectoryError:
        raise ImageReadError(f"{path} is a folder, not an image file") from None
    except UnidentifiedImageError:
        raise ImageReadError(
            f"{path} is not an image Pillow can read; use PNG, JPEG, BMP or TIFF"
        ) from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ImageReadError(
            f"cannot read {path}: the file is truncated or corrupt ({reason})"
        ) from None


def read_image(path: StrPath, channels: int = 3) -> np.ndarray:
    """Decode an image as `uint8` `(height, width, channels)`; 1 = grey, 3 = RGB (any alpha
    channel is dropped, palettes are expanded)."""
    if channels not in _MODES:
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    path = Path(path)
    image = _open(path)
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit grey: keep the top 8 bits
        values = np.asarray(image, dtype=np.int64)
        shift = 8 if values.max(initial=0) > 255 else 0
        image = Image.fromarray((values >> shift).clip(0, 255).astype(np.uint8))
    array = np.asarray(image.convert(_MODES[channels]))
    if array.size == 0:
        raise ImageReadError(f"{path} holds an empty image")
    return array.reshape(*array.shape[:2], channels)


def read_label(path: StrPath) -> np.ndarray:
    """The stored values of a label map (grey or palette PNG) as `uint8` `(height, width)`."""
    path = Path(path)
    image = _open(path)
    if image.mode not in ("L", "P", "I", "I;16", "I;16B", "I;16L", "1"):
        raise ImageReadError(
            f"{path} is a {image.mode} image; a label map must hold one value per pixel "
            "(a grey or palette PNG)"
        )
    values = np.asarray(image.convert("L") if image.mode == "1" else image)
    if values.max(initial=0) > 255 or values.min(initial=0) < 0:
        raise ImageReadError(f"{path} holds label values outside 0..255")
    return values.astype(np.uint8)


def _check_target(path: Path, overwrite: bool) -> None:
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as error:
        raise ImageWriteError(f"cannot write {path} ({error.strerror or error})") from None
    if stat.S_ISDIR(mode):
        raise ImageWriteError(f"{path} is a directory; choose another output name")
    if not overwrite:
        raise OutputExistsError(path)


def write_pngs(outputs: Mapping[StrPath, Image.Image], *, overwrite: bool = False) -> list[Path]:
    """Write every `path -> image` as PNG, all or nothing: each goes to a temporary file beside
    its target, and they are renamed into place only when all were written. An existing output
    is kept unless `overwrite`. Raises `ImageWriteError`."""
    targets = {Path(path): image for path, image in outputs.items()}
    for path in targets:
        _check_target(path, overwrite)
    temps: dict[Path, Path] = {}
    try:
        for path, image in targets.items():
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                temps[path] = reserve_temp(path)
                image.save(temps[path], format="PNG")
            except (OSError, ValueError) as error:
                raise ImageWriteError(
                    f"cannot write {path} ({getattr(error, 'strerror', None) or error}); "
                    "check the disk and the output folder"
                ) from None
        for path, temp in temps.items():
            _check_target(path, overwrite)  # the target may have appeared while we wrote
            os.replace(temp, path)
    finally:
        for temp in temps.values():
            temp.unlink(missing_ok=True)
    return list(targets)
