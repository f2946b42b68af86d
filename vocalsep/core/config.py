"""Frozen-dataclass configs that round-trip through plain dicts (and so through checkpoints)."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar

from .errors import ConfigError

C = TypeVar("C", bound="Config")


def _plain(value: Any) -> Any:
    """Turn tuples and nested configs into JSON-friendly lists and dicts."""
    if isinstance(value, Config):
        return value.to_dict()
    if isinstance(value, (tuple, list)):
        return [_plain(item) for item in value]
    return value


def _coerce(annotation: Any, value: Any) -> Any:
    """Turn lists back into tuples and dicts back into nested configs, following the annotation."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        for option in typing.get_args(annotation):
            if option is type(None):
                continue
            try:
                return _coerce(option, value)
            except (TypeError, ConfigError):
                continue
        return value
    if isinstance(annotation, type) and issubclass(annotation, Config) and isinstance(value, dict):
        return annotation.from_dict(value)
    if origin is tuple and isinstance(value, (list, tuple)):
        args = typing.get_args(annotation)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], item) for item in value)
        return tuple(value)
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


@dataclasses.dataclass(frozen=True)
class Config:
    """Base of all configs: immutable, comparable, serialisable with `to_dict` / `from_dict`."""

    def to_dict(self) -> dict[str, Any]:
        return {field.name: _plain(getattr(self, field.name)) for field in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any]) -> C:
        if not isinstance(data, dict):
            raise ConfigError(f"{cls.__name__}: expected a mapping, got {type(data).__name__}")
        hints = typing.get_type_hints(cls)
        names = {field.name for field in dataclasses.fields(cls) if field.init}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"{cls.__name__}: unknown field(s) {', '.join(unknown)}")
        values = {key: _coerce(hints[key], value) for key, value in data.items()}
        try:
            return cls(**values)
        except TypeError as error:
            raise ConfigError(f"{cls.__name__}: {error}") from None

    def replace(self: C, **changes: Any) -> C:
        return dataclasses.replace(self, **changes)
