"""How many CPU cores this process may use (the default thread count of every backend)."""

from __future__ import annotations

import os


def cores() -> int:
    """The CPU cores this process may run on (its affinity on Linux)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
