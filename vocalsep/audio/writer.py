"""Writing audio files atomically: into a hidden temporary file beside the target, renamed into
place only once complete, so a half-written file never exists under the final name."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from types import TracebackType

import numpy as np
import soundfile

from ..core.errors import OutputExistsError
from ..core.files import reserve_temp
from .errors import AudioWriteError
from .io import SOUNDFILE_ERRORS, StrPath, soundfile_reason

SUBTYPES = {"16": "PCM_16", "24": "PCM_24", "32f": "FLOAT"}
FORMATS = {"wav": "WAV", "flac": "FLAC"}
_BLOCK = 1 << 18  # frames written at once by `write_audio` (bounds the clipped float32 copy)


class AudioWriter:
    """Write `(channels, n)` blocks to `path` atomically: into a hidden temporary file beside it,
    renamed onto `path` by `commit()` (or leaving the `with` block normally) and deleted by
    `abort()` (or an exception in the block). Problems raise `AudioWriteError`."""

    def __init__(
        self,
        path: StrPath,
        sample_rate: int,
        channels: int,
        format: str = "wav",
        bit_depth: str = "16",
        overwrite: bool = False,
    ) -> None:
        self.path = Path(path)
        self.overwrite = overwrite
        if format not in FORMATS or bit_depth not in SUBTYPES:
            raise AudioWriteError(
                f"cannot write {self.path} as {format}/{bit_depth}: format must be one of "
                f"{', '.join(FORMATS)} and bit depth one of {', '.join(SUBTYPES)}"
            )
        if format == "flac" and bit_depth == "32f":
            raise AudioWriteError(
                f"cannot write {self.path}: flac cannot store 32-bit float samples; "
                "use --bit-depth 16 or 24, or --format wav"
            )
        if sample_rate <= 0 or channels <= 0:
            raise ValueError(f"sample rate and channels must be positive for {self.path}")
        self.channels = int(channels)
        self._clip = bit_depth != "32f"
        self._done = False
        self._check_target()
        directory = self.path.parent
        # Folders this writer creates, innermost first: abort() removes them again if empty,
        # so a failed run leaves no trace.
        self._made_dirs = [p for p in (directory, *directory.parents) if not p.exists()]
        try:
            directory.mkdir(parents=True, exist_ok=True)
            self._temp = reserve_temp(self.path)
        except OSError as error:
            self._remove_made_dirs()
            raise AudioWriteError(_unwritable(directory, error)) from None
        try:
            self._file = soundfile.SoundFile(
                os.fspath(self._temp),
                "w",
                int(sample_rate),
                self.channels,
                SUBTYPES[bit_depth],
                format=FORMATS[format],
            )
        except SOUNDFILE_ERRORS as error:
            self._temp.unlink(missing_ok=True)
            self._remove_made_dirs()
            raise AudioWriteError(f"cannot write {self.path}: {soundfile_reason(error)}") from None

    def _check_target(self) -> None:
        try:
            mode = os.lstat(self.path).st_mode
        except FileNotFoundError:
            return
        except OSError as error:
            raise AudioWriteError(_unwritable(self.path.parent, error)) from None
        if stat.S_ISDIR(mode):
            raise AudioWriteError(f"{self.path} is a directory; choose another output name")
        if not self.overwrite:
            raise OutputExistsError(self.path)

    def write(self, block: np.ndarray) -> None:
        """Append a `(channels, n)` block of samples in [-1, 1]."""
        if self._done:
            raise ValueError(f"writer of {self.path} is already committed or aborted")
        block = np.asarray(block, dtype=np.float32)
        if block.ndim != 2 or block.shape[0] != self.channels:
            raise ValueError(f"expected a ({self.channels}, n) block, got {block.shape}")
        if self._clip:  # libsndfile would wrap out-of-range samples around, not clip them
            block = np.clip(block, -1.0, 1.0)
        try:
            self._file.write(np.ascontiguousarray(block.T))
        # soundfile asserts that every frame was written (a full disk can fail that way too)
        except (soundfile.SoundFileError, RuntimeError, OSError, AssertionError) as error:
            self.abort()
            reason = soundfile_reason(error) or "short write"
            raise AudioWriteError(
                f"cannot write {self.path} ({reason}); free disk space or choose another output "
                "directory"
            ) from None

    def commit(self) -> Path:
        """Finish the file and rename it onto `path`; returns `path`."""
        if self._done:
            raise ValueError(f"writer of {self.path} is already committed or aborted")
        try:
            self._file.close()
            self._check_target()  # the target may have appeared while we were writing
            os.replace(self._temp, self.path)
        except (AudioWriteError, OutputExistsError):
            self.abort()
            raise
        except (soundfile.SoundFileError, RuntimeError, OSError) as error:
            self.abort()
            raise AudioWriteError(f"cannot write {self.path} ({soundfile_reason(error)})") from None
        self._done = True
        return self.path

    def abort(self) -> None:
        """Drop everything written so far; `path` is left as it was. Safe to call twice."""
        if self._done:
            return
        self._done = True
        try:
            self._file.close()
        except (soundfile.SoundFileError, RuntimeError, OSError):
            pass  # the file is deleted anyway
        self._temp.unlink(missing_ok=True)
        self._remove_made_dirs()

    def _remove_made_dirs(self) -> None:
        for directory in self._made_dirs:
            try:
                directory.rmdir()  # only succeeds while empty (e.g. a sibling stem's writer)
            except OSError:
                break

    def __enter__(self) -> AudioWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType
    ) -> None:
        if self._done:
            return
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def write_audio(
    path: StrPath,
    audio: np.ndarray,
    sample_rate: int,
    format: str = "wav",
    bit_depth: str = "16",
    overwrite: bool = False,
) -> Path:
    """Write `(channels, samples)` (or mono `(samples,)`) atomically; returns the path."""
    audio = np.asarray(audio)
    if audio.ndim == 1:
        audio = audio[None]
    with AudioWriter(path, sample_rate, audio.shape[0], format, bit_depth, overwrite) as writer:
        for start in range(0, audio.shape[1], _BLOCK):  # bounds the clipped float32 copy
            writer.write(audio[:, start : start + _BLOCK])
    return Path(path)


def _unwritable(directory: Path, error: OSError) -> str:
    reason = error.strerror or str(error)
    if isinstance(error, (FileExistsError, NotADirectoryError)):
        # mkdir's "File exists" hides the real problem: a regular file where a folder should be
        blocker = next((p for p in (directory, *directory.parents) if p.is_file()), directory)
        reason = f"{blocker} is a file, not a directory"
    return f"cannot write to {directory} ({reason}); choose another output directory with -o"
