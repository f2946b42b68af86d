"""Fixtures for training tests: the tiny recipe on toy audio written into a temp folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from vocalsep.audio.toy import write_toy_sources
from vocalsep.train import load_run_config

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "recipes" / "tiny" / "config.toml"


@pytest.fixture(scope="session")
def toy_audio(tmp_path_factory) -> Path:
    return write_toy_sources(tmp_path_factory.mktemp("toy-audio"))


def tiny_overrides(toy_audio: Path, *extra: str) -> list[str]:
    """--set overrides pointing the tiny recipe at `toy_audio`."""
    vocals = f'{{path="{toy_audio / "vocals"}", validation_groups=["singer1"]}}'
    music = f'{{path="{toy_audio / "accompaniment"}", validation_groups=["track1"]}}'
    return [
        f"task_config.data.synthesized.vocals=[{vocals}]",
        f"task_config.data.synthesized.accompaniment=[{music}]",
        *extra,
    ]


@pytest.fixture
def tiny_config(toy_audio):
    def make(*extra: str):
        return load_run_config(TINY, tiny_overrides(toy_audio, *extra))

    return make
