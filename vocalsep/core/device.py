"""The one way vocalsep picks a torch device from a user's choice."""

from __future__ import annotations

import torch

from .errors import ConfigError


def select_device(name: str | torch.device = "auto", *, local_rank: int = 0) -> torch.device:
    """ "auto": CUDA, then Apple's MPS, then the CPU. A bare "cuda" is the `local_rank`-th GPU
    (one per process under torchrun). A device this machine does not have is a `ConfigError`
    that says to use the CPU."""
    name = str(name)
    mps = getattr(torch.backends, "mps", None)
    has_mps = mps is not None and mps.is_available()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError("CUDA is not available on this machine; use the device cpu")
        if name == "cuda":  # an explicit index: torch.cuda.set_device rejects a bare "cuda"
            name = f"cuda:{local_rank}"
    if name == "mps" and not has_mps:
        raise ConfigError("MPS is not available on this machine; use the device cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}; use auto, cpu, cuda or mps") from None
