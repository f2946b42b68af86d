"""ONNX export and the torch-free onnxruntime path: the exported network gives the torch
model's output for any batch and frame (sample) count, the file carries the configs and
metadata, foreign files are refused with one line, and running an export imports no torch."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from support import LOCAL_MODEL, files_under, make_model, make_waveform_model

from vocalsep._version import __version__
from vocalsep.audio.models import (
    SpectrogramEnsemble,
    WaveformModel,
    load_model,
)
from vocalsep.core.checkpoint import load_checkpoint
from vocalsep.core.errors import CheckpointError, ConfigError
from vocalsep.pretrained import resolve

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
from vocalsep.audio.onnx_export import export_onnx  # noqa: E402 (needs the export extra)
from vocalsep.audio.onnx_model import METADATA_KEY, load_onnx_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TOLERANCE = 1e-4  # max abs difference, torch vs onnxruntime


def assert_runs_like_torch(run, module, shapes) -> float:
    """`run` (numpy) and the torch `module` agree on random inputs of each shape; returns the
    largest difference."""
    worst = 0.0
    rng = np.random.default_rng(0)
    for shape in shapes:
        inputs = (3 * rng.random(shape)).astype(np.float32)
        with torch.inference_mode():
            expected = module(torch.from_numpy(inputs)).numpy()
        outputs = run(inputs)
        assert outputs.dtype == np.float32 and outputs.shape == expected.shape, shape
        worst = max(worst, float(np.abs(outputs - expected).max()))
        assert worst < TOLERANCE, shape
    return worst


def spectrogram_shapes(config, batches=(1, 3), frames=(1, 2, 7, 33, 48, 129)):
    return [(b, config.audio_channels, config.band_bins, f) for b in batches for f in frames]


def description(path: Path) -> dict:
    """The vocalsep metadata of an exported file."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return json.loads(session.get_modelmeta().custom_metadata_map[METADATA_KEY])


METADATA = {"licence": "test", "dev_metrics": {"vocals_sdr": 1.5}}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """The export of the tiny mono model of the test support (`make_model()`)."""
    return export_onnx(make_model(), tmp_path_factory.mktemp("tiny") / "model.onnx")


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory) -> tuple[SpectrogramEnsemble, Path]:
    """Two stereo members with different STFTs, so different band sizes, and their export in
    a folder of its own (with METADATA)."""
    first = make_model(audio_channels=2, seed=0, **LOCAL_MODEL)
    second = make_model(audio_channels=2, seed=1, n_fft=512, hop_length=128, **LOCAL_MODEL)
    model = SpectrogramEnsemble([first, second], [1, 3])
    folder = tmp_path_factory.mktemp("ensemble")
    return model, export_onnx(model, folder / "out" / "model.onnx", metadata=METADATA)


@pytest.fixture(scope="module")
def waveform(tmp_path_factory) -> tuple[WaveformModel, Path]:
    model = make_waveform_model()
    return model, export_onnx(model, tmp_path_factory.mktemp("waveform") / "model.onnx")


@pytest.mark.parametrize("stereo_band", [False, True], ids=["mono", "stereo-band"])
def test_spectrogram_model_runs_like_torch(tmp_path, tiny, stereo_band):
    options = dict(audio_channels=2, max_bin=60, compression="sqrt", channels=(4, 8, 8))
    model = make_model(**options) if stereo_band else make_model()
    path = export_onnx(model, tmp_path / "model.onnx") if stereo_band else tiny
    network = load_onnx_model(path, threads=1)
    assert network.kind == "spectrogram" and network.backend == "onnx"
    assert network.config == model.config
    [member] = network.members
    assert member.weight == 1.0
    assert_runs_like_torch(member.run, model, spectrogram_shapes(model.config))


def test_default_model_runs_like_torch(tmp_path):
    checkpoint = resolve(None, "audio-separation")
    model = load_model(checkpoint)
    metadata = load_checkpoint(checkpoint).metadata
    network = load_onnx_model(export_onnx(model, tmp_path / "default.onnx", metadata=metadata))
    assert network.config == model.config and network.metadata == metadata
    shapes = spectrogram_shapes(model.config, batches=(1, 2), frames=(1, 77, 128))
    assert_runs_like_torch(network.members[0].run, model, shapes)


def test_ensemble_is_one_file_with_a_network_per_member(ensemble):
    ensemble, path = ensemble
    network = load_onnx_model(path)
    assert network.kind == "spectrogram" and network.config == ensemble.config
    assert [m.weight for m in network.members] == [0.25, 0.75]
    for member, model in zip(network.members, ensemble.members, strict=True):
        assert member.config == model.config
        assert_runs_like_torch(member.run, model, spectrogram_shapes(model.config))


def test_waveform_model_runs_like_torch(waveform):
    model, path = waveform
    network = load_onnx_model(path)
    assert network.kind == "waveform" and network.config == model.config
    unit = model.network_config.shift_multiple
    assert network.unit == unit == 16
    assert network.context == math.ceil(model.context / unit) * unit  # as the estimator tiles
    shapes = [(b, 2, n) for b in (1, 2) for n in (1, 17, 1000, 1544, 4001)]
    assert_runs_like_torch(network.members[0].run, model, shapes)


def test_the_file_carries_the_checkpoint_without_weights(ensemble, waveform):
    ensemble, path = ensemble
    assert files_under(path.parent.parent) == ["out/model.onnx"]  # atomic: no temp file left
    checkpoint = ensemble.to_checkpoint(METADATA)
    assert description(path) == {
        "format": 1,
        "vocalsep_version": __version__,
        "task": checkpoint.task,
        "architecture": "ensemble",
        "model_config": checkpoint.model_config,
        "task_config": checkpoint.task_config,
        "metadata": METADATA,
    }
    assert load_onnx_model(path).metadata == METADATA
    # a waveform model also carries what its tiles need
    model, path = waveform
    found = description(path)
    assert found["task_config"] == model.to_checkpoint().task_config
    assert (found["context"], found["unit"]) == (272, 16)


def test_export_uses_eval_mode_and_leaves_the_model_alone(tmp_path):
    model = make_model().train()  # dropout and batch statistics would change the output
    network = load_onnx_model(export_onnx(model, tmp_path / "model.onnx"))
    assert model.training
    assert_runs_like_torch(network.members[0].run, model.eval(), [(2, 1, 129, 40)])


def test_only_separation_models_export(tmp_path):
    with pytest.raises(ConfigError, match="cannot export a Linear to ONNX"):
        export_onnx(torch.nn.Linear(2, 2), tmp_path / "model.onnx")
    with pytest.raises(ConfigError, match="opset 18 or newer, not 17"):
        export_onnx(make_model(), tmp_path / "model.onnx", opset=17)
    with pytest.raises(ConfigError, match="metadata must be JSON"):
        export_onnx(make_model(), tmp_path / "model.onnx", metadata={"tensor": torch.ones(1)})
    assert files_under(tmp_path) == []


def test_exporter_failures_name_the_model_kind(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise torch.onnx.OnnxExporterError("generic text") from ValueError("unsupported op")

    monkeypatch.setattr(torch.onnx, "export", fail)
    with pytest.raises(ConfigError) as error:
        export_onnx(make_waveform_model(), tmp_path / "model.onnx")
    assert str(error.value) == "cannot export this waveform model (unet) to ONNX: unsupported op"


def test_foreign_files_are_refused_in_one_line(tmp_path, tiny):
    onnx = pytest.importorskip("onnx")

    def edited(name: str, change) -> Path:
        """A copy of the export whose vocalsep metadata is `change(metadata)` (None: gone)."""
        proto = onnx.load(str(tiny))
        [entry] = [p for p in proto.metadata_props if p.key == METADATA_KEY]
        found = change(json.loads(entry.value))
        if found is None:
            proto.ClearField("metadata_props")
        else:
            entry.value = json.dumps(found)
        onnx.save(proto, str(tmp_path / name))
        return tmp_path / name

    foreign = edited("foreign.onnx", lambda found: None)
    newer = edited("newer.onnx", lambda found: {**found, "format": 2})
    image = edited("image.onnx", lambda found: {**found, "task": "image-segmentation"})
    (tmp_path / "text.onnx").write_text("not a model")
    cases = [
        (tmp_path / "missing.onnx", "does not exist"),
        (tmp_path / "text.onnx", "not an ONNX model"),
        (foreign, "not a vocalsep export"),
        (newer, "uses vocalsep ONNX format 2, this vocalsep"),
        (image, "is a 'image-segmentation' model"),
    ]
    for file, reason in cases:
        with pytest.raises(CheckpointError) as error:
            load_onnx_model(file)
        message = str(error.value)
        assert reason in message and str(file) in message and "\n" not in message


def test_a_missing_onnxruntime_says_how_to_install_it(tiny, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails
    with pytest.raises(ConfigError, match=r'pip install "vocalsep\[onnx\]"'):
        load_onnx_model(tiny)


def test_running_an_export_imports_no_torch(tiny):
    script = (
        "import sys; import numpy as np\n"
        "from vocalsep.audio.onnx_model import load_onnx_model\n"
        f"network = load_onnx_model({str(tiny)!r}, threads=1)\n"
        "masks = network.members[0].run(np.ones((1, 1, 129, 9), np.float32))\n"
        "assert masks.shape == (1, 1, 1, 129, 9), masks.shape\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
