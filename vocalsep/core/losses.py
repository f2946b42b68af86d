"""Generic losses, `(prediction, target) -> scalar`, by name (`LOSSES.get("l1")`).

Tasks decide what is compared (masked magnitudes, waveforms, logits); these only compare.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from .registry import Registry

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

LOSSES: Registry[LossFn] = Registry("loss")
LOSSES.register("l1", F.l1_loss)
LOSSES.register("mse", F.mse_loss)
LOSSES.register("smooth_l1", F.smooth_l1_loss)
