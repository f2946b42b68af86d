"""The README's Python examples run as written, in a fresh interpreter, against files made here:
a synthesized `song.wav`, a `street.jpg` and a tiny `camvid/val` dataset."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support import synth, write_wav

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", README.read_text(encoding="utf-8"), re.M | re.S)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("readme")
    write_wav(folder / "song.wav", synth(44100, 44100 * 3, 2), 44100, subtype="PCM_16")
    rng = np.random.default_rng(0)
    picture = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
    Image.fromarray(picture).save(folder / "street.jpg")
    for sub in ("images", "labels"):
        (folder / "camvid" / "val" / sub).mkdir(parents=True)
    Image.fromarray(picture).save(folder / "camvid" / "val" / "images" / "0001.png")
    labels = rng.integers(0, 12, (96, 128), dtype=np.uint8)  # 11 classes and void (11)
    Image.fromarray(labels).save(folder / "camvid" / "val" / "labels" / "0001.png")
    return folder


def test_the_readme_has_python_examples():
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(workdir, index):
    script = workdir / f"example_{index}.py"
    script.write_text(BLOCKS[index], encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(script)], cwd=workdir, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"README example {index} failed:\n{result.stderr[-3000:]}"
    assert result.stdout.strip(), "every example prints what it made"
