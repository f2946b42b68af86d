"""Atomic file output: write beside the target under a hidden temporary name, then rename."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


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
