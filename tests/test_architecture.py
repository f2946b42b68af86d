"""Layering and hygiene: core is modality-free, imports stay light, lint and contracts hold."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return set(result.stdout.split())


def test_core_imports_no_audio_or_image_module():
    modules = imported_modules(
        "import vocalsep.core, vocalsep.core.unet, vocalsep.core.tiling, "
        "vocalsep.core.checkpoint, vocalsep.core.config, vocalsep.core.registry"
    )
    assert "torch" in modules  # the statement really imported the core
    leaked = {m for m in modules if re.match(r"vocalsep\.(audio|image|api|cli|pretrained)", m)}
    leaked |= {m for m in modules if m.split(".")[0] in {"soundfile", "soxr", "PIL", "librosa"}}
    assert not leaked


def test_import_vocalsep_is_light():
    modules = imported_modules("import vocalsep, vocalsep.cli")
    assert "torch" not in modules and "numpy" not in modules


def test_import_contracts():
    lint_imports = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if lint_imports is None:
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    result = subprocess.run([lint_imports], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_clean():
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent))
    if ruff is None:
        pytest.skip("ruff is not installed (pip install -e '.[dev]')")
    result = subprocess.run([ruff, "check", "."], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- ci:test -->\n```bash\n(.+?)\n```\n<!-- /ci:test -->", readme, re.S)
    assert block and "pytest" in block.group(1)
    assert "ci:test" in (ROOT / ".ci" / "run").read_text()


def test_trainer_imports_no_audio_or_image_module():
    modules = imported_modules("import vocalsep.train, vocalsep.train.trainer")
    assert "torch" in modules
    assert not {m for m in modules if re.match(r"vocalsep\.(audio|image|api|cli|pretrained)", m)}
    assert not {m for m in modules if m.split(".")[0] in {"soundfile", "soxr", "PIL", "musdb"}}


IMAGE_MODULES = (
    "vocalsep.image.io, vocalsep.image.transforms, vocalsep.image.models, "
    "vocalsep.image.datasets, vocalsep.image.losses, vocalsep.image.metrics, "
    "vocalsep.image.predict, vocalsep.image.training, vocalsep.image.errors"
)
AUDIO_MODULES = (
    "vocalsep.audio.io, vocalsep.audio.stft, vocalsep.audio.models, vocalsep.audio.separator, "
    "vocalsep.audio.datasets, vocalsep.audio.training, vocalsep.audio.metrics"
)


def test_image_and_audio_never_import_each_other():
    modules = imported_modules(f"import {IMAGE_MODULES}")
    assert "vocalsep.image.training" in modules and "PIL" in modules
    assert not {m for m in modules if re.match(r"vocalsep\.(audio|api|cli|pretrained)", m)}
    assert not {m for m in modules if m.split(".")[0] in {"soundfile", "soxr", "musdb"}}
    modules = imported_modules(f"import {AUDIO_MODULES}")
    assert "vocalsep.audio.training" in modules
    assert not {m for m in modules if m.startswith("vocalsep.image")}
    # Separating audio through the public API does not load the image side either.
    modules = imported_modules("import vocalsep.api")
    assert not {m for m in modules if m.startswith("vocalsep.image")} and "PIL" not in modules


def test_no_module_of_the_package_is_over_500_lines():
    """A longer module is a sign to split it (the package holds the product, not the lab)."""
    long = {
        str(path.relative_to(ROOT)): count
        for path in (ROOT / "vocalsep").rglob("*.py")
        if (count := len(path.read_text(encoding="utf-8").splitlines())) > 500
    }
    assert not long, long


def test_training_data_generators_stay_in_recipes():
    """MIDI composition and fluidsynth rendering are recipe tooling (recipes/synthetic)."""
    for path in (ROOT / "vocalsep").rglob("*.py"):
        text = path.read_text(encoding="utf-8").lower()
        assert "fluidsynth" not in text and "midi" not in text, path


def test_import_vocalsep_api_loads_no_trainer():
    modules = imported_modules("import vocalsep.api")
    assert not {m for m in modules if m.startswith("vocalsep.train")}


def test_the_separation_api_imports_no_torch():
    """A plain `pip install vocalsep` has no torch: the public API, the Separator and the
    command line load without it (torch comes in only for a torch model or the torch backend)."""
    modules = imported_modules(
        "import vocalsep.api, vocalsep.audio.separator, vocalsep.audio.backends, "
        "vocalsep.audio.onnx_model, vocalsep.cli.export, vocalsep.cli.separate"
    )
    assert "vocalsep.audio.separator" in modules and "numpy" in modules
    assert "torch" not in modules
