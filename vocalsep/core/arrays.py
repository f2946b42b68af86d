"""Telling numpy arrays and torch tensors apart without importing torch (a tensor can only come
from a program that has imported torch already)."""

from __future__ import annotations

from typing import Any


def is_torch(value: Any) -> bool:
    """Whether `value` is a torch tensor."""
    return type(value).__module__.startswith("torch")
