"""Shared fixtures. Helpers live in tests/support.py (on sys.path via pytest's pythonpath)."""

from __future__ import annotations

import os
from pathlib import Path

# One BLAS thread: museval's numpy solves otherwise slow down 4-7x when another process holds
# the cores (a shared CI machine); results do not change.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import pytest
from support import make_model


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A tiny 16 kHz mono-network checkpoint file, as a user would pass with --model."""
    path = tmp_path_factory.mktemp("models") / "tiny.ckpt"
    make_model().save(path, metadata={"trained_on": "nothing (random weights, for tests)"})
    return path
