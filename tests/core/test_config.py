"""Config round trips and type checks: a mistyped value is a one-line `ConfigError` that names
the field, never a TypeError deep inside a run."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from vocalsep.core.config import Config, FieldError
from vocalsep.core.errors import ConfigError


@dataclass(frozen=True)
class Inner(Config):
    rate: float = 1.0
    name: str = "a"


@dataclass(frozen=True)
class Outer(Config):
    steps: int = 1
    flag: bool = False
    inner: Inner = Inner()
    pair: tuple[float, float] = (0.0, 1.0)
    names: tuple[str, ...] = ()
    inners: tuple[Inner, ...] = ()
    maybe: str | None = None


def test_round_trip_and_conversions():
    config = Outer.from_dict(
        {"steps": 3, "inner": {"rate": 2}, "pair": [1, 2.5], "inners": [{"name": "b"}]}
    )
    assert config.inner.rate == 2.0 and isinstance(config.inner.rate, float)
    assert config.pair == (1.0, 2.5) and all(isinstance(x, float) for x in config.pair)
    assert config.inners == (Inner(name="b"),)
    assert Outer.from_dict(config.to_dict()) == config
    assert Outer.from_dict({"maybe": None}).maybe is None
    assert Outer.from_dict({"maybe": "x"}).maybe == "x"


@pytest.mark.parametrize(
    "data, message",
    [
        ({"steps": 2.5}, "steps: expected an integer, got 2.5 (float)"),
        ({"steps": True}, "steps: expected an integer, got True (bool)"),
        ({"steps": "3"}, "steps: expected an integer, got '3' (str)"),
        ({"flag": 1}, "flag: expected true or false, got 1 (int)"),
        ({"inner": {"rate": "x"}}, "inner.rate: expected a number, got 'x' (str)"),
        ({"inner": {"name": 3}}, "inner.name: expected a string, got 3 (int)"),
        ({"inner": 3}, "inner: expected a table of Inner, got 3 (int)"),
        ({"pair": [1]}, "pair: expected a list of 2 items, got [1] (list)"),
        ({"pair": 1.0}, "pair: expected a list, got 1.0 (float)"),
        ({"pair": [1, "x"]}, "pair[1]: expected a number, got 'x' (str)"),
        ({"names": ["a", 2]}, "names[1]: expected a string, got 2 (int)"),
        ({"inners": [{}, {"rate": []}]}, "inners[1].rate: expected a number, got [] (list)"),
        ({"maybe": 3}, "maybe: expected a string, got 3 (int)"),
    ],
)
def test_wrong_types_name_the_field(data, message):
    with pytest.raises(FieldError) as caught:
        Outer.from_dict(data)
    assert str(caught.value) == message
    assert isinstance(caught.value, ConfigError)


def test_unknown_fields_still_rejected():
    with pytest.raises(ConfigError, match="unknown field"):
        Outer.from_dict({"inner": {"speed": 1}})
