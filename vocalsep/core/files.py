"""Atomic file output: write beside the target under a hidden temporary name, then rename.

`atomic_file` is the one way to write a whole file; `reserve_temp` is for writers that stream
into the temporary file themselves (audio) or commit several files together (pictures)."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from .errors import OutputExistsError


def reserve_temp(path: str | os.PathLike) -> Path:
    """Create and return a fresh, empty hidden file `.<name>.partial-<random>` beside `path`.

    `os.replace(temp, path)` later puts it in place in one step, so a half-written output never
    exists under its final name. Raises OSError if the folder is not writable.
    """
    path = Path(path)
    while True:
        temp = path.with_name(f".{path.name}.partial-{secrets.token_hex(4)}")
        try:
            # O_EXCL claims a fresh name; mode 0o666 lets the umask decide as for any file
            # (mkstemp would leave the output readable by its owner only).
            os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return temp
        except FileExistsError:
            continue


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, *, overwrite: bool = True) -> Iterator[Path]:
    """Write a whole file at `path` atomically: the block writes the temporary file it is
    given, which replaces `path` only when the block ends without an exception (its folder is
    made first; on any failure nothing changes at `path` and the temporary file is gone).
    Without `overwrite`, an existing `path` is an `OutputExistsError`, also one that appears
    while the block runs."""
    path = Path(path)
    if not overwrite and os.path.lexists(path):
        raise OutputExistsError(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = reserve_temp(path)
    try:
        yield temp
        if not overwrite and os.path.lexists(path):
            raise OutputExistsError(path)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)  # only still there if something failed
