"""vocalsep: singing-voice separation (vocals / accompaniment) with spectrogram U-Nets.

The public API is loaded lazily so that `import vocalsep` stays fast (torch is imported only
when a model is needed): `Separator`, `load_separator`, `separate_file`, `predict_mask`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from .api import Separator, load_separator, predict_mask, separate_file

__all__ = ["Separator", "__version__", "load_separator", "predict_mask", "separate_file"]
_LAZY = {"Separator", "load_separator", "predict_mask", "separate_file"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(".api", __name__), name)
    raise AttributeError(f"module 'vocalsep' has no attribute {name!r}")
