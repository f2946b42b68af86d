"""The modality-free segmentation core: networks behind a registry, tiling, checkpoints.

`build_network("unet", {"dims": 2, "in_channels": 1, "out_channels": 2})` builds any
registered architecture; `register_architecture` adds one (see `networks`). They load on first
use: importing `vocalsep.core.errors` and the like does not import torch."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["ARCHITECTURES", "build_network", "network_config_class", "register_architecture"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module(".networks", __name__), name)
    raise AttributeError(f"module 'vocalsep.core' has no attribute {name!r}")
