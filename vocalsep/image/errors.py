"""Exception types of the image side; every message is one line that names the file and the fix."""

from ..core.errors import VocalsepError


class ImageReadError(VocalsepError):
    """A file cannot be opened or decoded as an image or label map."""


class ImageWriteError(VocalsepError):
    """An output image cannot be written (exists, unwritable folder, full disk)."""


class DatasetError(VocalsepError):
    """A dataset folder is missing, empty, or its images and labels do not match."""
