"""The recipes' helper modules, importable as their scripts import them: `import midi_songs`
works because `recipes/synthetic` is on sys.path (appended, so it shadows nothing)."""

from __future__ import annotations

import sys
from pathlib import Path

SYNTHETIC = Path(__file__).resolve().parents[2] / "recipes" / "synthetic"
if str(SYNTHETIC) not in sys.path:
    sys.path.append(str(SYNTHETIC))
