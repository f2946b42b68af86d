"""Shared fixtures. Helpers live in tests/support.py (on sys.path via pytest's pythonpath)."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import make_model


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A tiny 16 kHz mono-network checkpoint file, as a user would pass with --model."""
    path = tmp_path_factory.mktemp("models") / "tiny.ckpt"
    make_model().save(path, metadata={"trained_on": "nothing (random weights, for tests)"})
    return path
