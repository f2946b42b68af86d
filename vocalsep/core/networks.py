"""The architecture registry: a network is a config class and a module built from it.

A new architecture is one file that defines its config (a frozen `Config` dataclass with at
least `dims`, `in_channels` and `out_channels`, good defaults for the rest) and its module
(`(batch, in_channels, *spatial) -> (batch, out_channels, *spatial)` for any spatial size),
and calls `register_architecture`; add its import to `_BUILT_IN` below so that checkpoints
naming it load. Model configs (audio and image) name the architecture they use.

Optional attributes a config may offer: `receptive_field` (samples of context an output
depends on, for exact tiling; without it tile context must be set explicitly),
`shift_multiple` (the stride of the spatial grid; default 1) and `head` ("mask" for outputs in
[0, 1], "logits" otherwise; default "logits").
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from torch import nn

from .config import Config
from .errors import ConfigError
from .registry import Registry

NetworkEntry = tuple[type[Config], Callable[[Any], nn.Module]]
ARCHITECTURES: Registry[NetworkEntry] = Registry("architecture")

# Modules that register the architectures vocalsep ships (imported on first use).
_BUILT_IN = (
    "vocalsep.core.unet",
    "vocalsep.core.resunet",
    "vocalsep.core.attention_unet",
    "vocalsep.core.fcn",
    "vocalsep.core.segnet",
    "vocalsep.core.gcn",
    "vocalsep.core.pspnet",
    "vocalsep.core.deeplabv3plus",
    "vocalsep.core.r2unet",
    "vocalsep.core.multiresunet",
    "vocalsep.core.fcdensenet",
    "vocalsep.core.mmdensenet",
)


def register_architecture(
    name: str, config_class: type[Config], builder: Callable[[Any], nn.Module]
) -> None:
    """Make `build_network(name, config)` build `builder(config_class.from_dict(config))`."""
    for field in ("dims", "in_channels", "out_channels"):
        if field not in config_class.__dataclass_fields__:
            raise ConfigError(f"architecture {name!r}: its config needs a {field!r} field")
    ARCHITECTURES.register(name, (config_class, builder))


def _load_built_in() -> None:
    for module in _BUILT_IN:
        importlib.import_module(module)


def architecture_names() -> list[str]:
    _load_built_in()
    return ARCHITECTURES.names()


def network_config_class(architecture: str) -> type[Config]:
    """The config class of a registered architecture (ConfigError if unknown)."""
    _load_built_in()
    return ARCHITECTURES.get(architecture)[0]


def network_config(architecture: str, fields: dict[str, Any]) -> Config:
    """The architecture's config from a dict of fields (the others keep their defaults)."""
    return network_config_class(architecture).from_dict(fields)


def build_network(architecture: str, config: Config | dict[str, Any]) -> nn.Module:
    """Build a registered architecture from its config (or the config's dict form; `dims`,
    `in_channels` and `out_channels` are enough, the rest has defaults)."""
    _load_built_in()
    config_class, builder = ARCHITECTURES.get(architecture)
    if isinstance(config, dict):
        config = config_class.from_dict(config)
    if not isinstance(config, config_class):
        raise ConfigError(
            f"architecture {architecture!r} needs a {config_class.__name__}, "
            f"got {type(config).__name__}"
        )
    return builder(config)
