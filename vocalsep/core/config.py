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


class FieldError(ConfigError):
    """A value of the wrong type; `path` names the field from the outermost config down."""

    def __init__(self, path: tuple[str, ...], reason: str) -> None:
        self.path, self.reason = path, reason
        where = "".join(part if part.startswith("[") else f".{part}" for part in path)
        super().__init__(f"{where.lstrip('.')}: {reason}" if path else reason)

    def within(self, *names: str) -> FieldError:
        """The same error seen from an enclosing table: `names` go in front of the path."""
        return FieldError((*names, *self.path), self.reason)


def _describe(value: Any) -> str:
    text = repr(value)
    text = text if len(text) <= 40 else text[:37] + "..."
    return f"{text} ({type(value).__name__})"


def _name(annotation: Any) -> str:
    if isinstance(annotation, type) and issubclass(annotation, Config):
        return "a table"
    if typing.get_origin(annotation) is tuple or annotation is tuple:
        return "a list"
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _coerce(annotation: Any, value: Any) -> Any:
    """Check `value` against the annotation (bool, int, float, str, tuples, nested configs and
    unions of them) and convert it: lists become tuples, dicts nested configs, ints floats where
    a float is expected. A value of the wrong type raises `FieldError`; annotations it does not
    know (Any, dict, tensors) pass the value through."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = [option for option in typing.get_args(annotation) if option is not type(None)]
        if value is None:
            if len(options) < len(typing.get_args(annotation)):
                return None
            raise FieldError((), f"expected {' or '.join(map(_name, options))}, got None")
        errors = []
        for option in options:
            try:
                return _coerce(option, value)
            except (TypeError, ConfigError) as error:
                errors.append(error)
        if len(errors) == 1:
            raise errors[0]
        raise FieldError((), f"expected {' or '.join(map(_name, options))}, got {_describe(value)}")
    if isinstance(annotation, type) and issubclass(annotation, Config):
        if isinstance(value, annotation):
            return value
        if not isinstance(value, dict):
            raise FieldError(
                (), f"expected a table of {annotation.__name__}, got {_describe(value)}"
            )
        return annotation.from_dict(value)
    if origin is tuple or annotation is tuple:
        if not isinstance(value, (list, tuple)):
            raise FieldError((), f"expected a list, got {_describe(value)}")
        args = typing.get_args(annotation)
        if not args:
            return tuple(value)
        if len(args) == 2 and args[1] is Ellipsis:
            items = [(args[0], item) for item in value]
        elif len(args) != len(value):
            raise FieldError((), f"expected a list of {len(args)} items, got {_describe(value)}")
        else:
            items = list(zip(args, value, strict=True))
        coerced = []
        for index, (item_annotation, item) in enumerate(items):
            try:
                coerced.append(_coerce(item_annotation, item))
            except FieldError as error:
                raise error.within(f"[{index}]") from None
        return tuple(coerced)
    if annotation is bool:
        if not isinstance(value, bool):
            raise FieldError((), f"expected true or false, got {_describe(value)}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise FieldError((), f"expected an integer, got {_describe(value)}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise FieldError((), f"expected a number, got {_describe(value)}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise FieldError((), f"expected a string, got {_describe(value)}")
        return value
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
        values = {}
        for key, value in data.items():
            try:
                values[key] = _coerce(hints[key], value)
            except FieldError as error:
                raise error.within(key) from None
        try:
            return cls(**values)
        except TypeError as error:
            raise ConfigError(f"{cls.__name__}: {error}") from None

    def replace(self: C, **changes: Any) -> C:
        return dataclasses.replace(self, **changes)
