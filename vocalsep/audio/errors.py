"""Exception types raised while reading, checking and writing audio files.

Every message is a single line that names the file and says how to fix the problem, so the
command line can print it as it is.
"""

from ..core.errors import VocalsepError


class AudioDecodeError(VocalsepError):
    """A file cannot be opened or decoded as audio (missing, unreadable, truncated, no backend)."""


class InvalidAudioError(VocalsepError, ValueError):
    """Audio decoded fine but cannot be used: no samples, NaN/Inf samples or too short."""


class AudioWriteError(VocalsepError):
    """An output file cannot be written (exists, unwritable directory, unsupported settings)."""
