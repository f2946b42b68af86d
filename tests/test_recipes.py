"""Every recipe config parses and builds its task and network, without touching any data:
a mistyped field fails here, not minutes into a researcher's run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vocalsep.api import build_task
from vocalsep.train import load_run_config

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
CONFIGS = sorted(RECIPES.glob("*/*.toml"))


def test_the_recipes_folder_has_configs():
    names = {str(path.relative_to(RECIPES)) for path in CONFIGS}
    assert {"synthetic/config.toml", "synthetic/single_stage.toml", "musdb18/config.toml"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(RECIPES)))
def test_recipe_builds_its_task_and_network(path):
    run = load_run_config(path)
    task = build_task(run)
    model = task.build_model()
    parameters = sum(p.numel() for p in model.parameters())
    assert parameters > 0
    assert all(torch.isfinite(p).all() for p in model.parameters())
