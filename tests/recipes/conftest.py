"""The recipes' helper modules, importable as their scripts import them: `import midi_songs`
works because `recipes/synthetic` is on sys.path (appended, so it shadows nothing)."""

from __future__ import annotations

import sys
from pathlib import Path

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
for folder in (RECIPES / "synthetic", RECIPES / "architectures"):
    if str(folder) not in sys.path:
        sys.path.append(str(folder))
