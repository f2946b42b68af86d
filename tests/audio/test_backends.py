"""The torch and onnx backends through the whole Separator: the same stems (to 1e-4) for the
shipped model and a tiny trained model, chunk invariance on the ONNX path, the shipped ONNX
file in step with the shipped checkpoint, the backend choice, and a command line that runs
without importing torch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
from support import LOCAL_MODEL, assert_chunks_give_one_pass, make_model, synth

from vocalsep.audio import backends
from vocalsep.audio.backends import choose_backend, load_network
from vocalsep.audio.models import load_model
from vocalsep.audio.separator import Separator
from vocalsep.cli import main
from vocalsep.core.errors import ConfigError
from vocalsep.pretrained import MODELS, resolve, resolve_files

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
from vocalsep.audio.onnx_export import export_onnx  # noqa: E402 (needs the export extra)
from vocalsep.audio.onnx_model import load_onnx_model  # noqa: E402

TASK = "audio-separation"


def trained(model, steps: int = 5):
    """`model` after a few Adam steps of L1 on a synthesized target (weights away from their
    initialisation), back in eval mode."""
    torch.manual_seed(1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    band = model.config.band_bins
    magnitude = torch.rand(4, model.config.audio_channels, band, 40)
    target = (torch.arange(band) < band // 2).float()[:, None].expand(band, 40)
    for _ in range(steps):
        loss = (model(magnitude)[:, 0] - target).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny trained stereo model and its ONNX export."""
    model = trained(make_model(audio_channels=2, **LOCAL_MODEL))
    path = export_onnx(model, tmp_path_factory.mktemp("onnx") / "tiny.onnx")
    return model, path


def test_a_trained_tiny_model_separates_alike_on_both_backends(tiny):
    model, path = tiny
    for rate, channels in ((16000, 2), (44100, 1)):
        mixture = synth(rate, rate * 3 + 17, channels)
        torch_stems = Separator(model).separate(mixture, rate)
        onnx_stems = Separator(load_onnx_model(path)).separate(mixture, rate)
        for stem, value in torch_stems.items():
            assert np.abs(value).max() > 1e-3
            assert np.abs(onnx_stems[stem] - value).max() < 1e-4, stem


def test_the_onnx_path_gives_the_one_pass_result_in_chunks(tiny):
    _, path = tiny
    mixture = synth(16000, 16000 * 4 + 33, 2)
    assert_chunks_give_one_pass(load_onnx_model(path), mixture, 16000, 0.7, 0.1, tiles=4)


def test_the_shipped_model_separates_alike_on_both_backends():
    torch_separator = Separator.from_pretrained(backend="torch", device="cpu")
    onnx_separator = Separator.from_pretrained(backend="onnx")
    assert (torch_separator.backend, onnx_separator.backend) == ("torch", "onnx")
    mixture = synth(44100, 44100 * 6, 2)
    torch_stems = torch_separator.separate(mixture, 44100)
    onnx_stems = onnx_separator.separate(mixture, 44100)
    for stem, value in torch_stems.items():
        assert np.abs(onnx_stems[stem] - value).max() < 1e-4, stem


def test_the_shipped_onnx_file_is_the_shipped_checkpoint():
    """Both files of every shipped model that has an ONNX file hold the same network: a
    re-exported checkpoint and the shipped ONNX file give the same masks."""
    shipped = [name for name, model in MODELS.items() if model.onnx]
    assert shipped, "the default model ships an ONNX file"
    for name in shipped:
        checkpoint, onnx_file = resolve_files(name, TASK)
        assert onnx_file is not None and onnx_file.is_file(), name
        model = load_model(checkpoint)
        network = load_onnx_model(onnx_file)
        assert network.config == model.config
        rng = np.random.default_rng(0)
        shape = (2, model.config.audio_channels, model.config.band_bins, 160)
        magnitude = rng.gamma(0.5, 1.0, shape).astype(np.float32)
        with torch.inference_mode():
            expected = model(torch.from_numpy(magnitude)).numpy()
        assert np.abs(network.members[0].run(magnitude) - expected).max() < 1e-4


def test_auto_picks_onnx_for_a_model_with_an_onnx_file_and_torch_otherwise(tiny, tmp_path):
    _, path = tiny
    assert choose_backend("auto", path) == "onnx"
    assert choose_backend("auto", path, "cuda") == "torch"  # a GPU asked for: torch runs it
    assert choose_backend("auto", None) == "torch"
    assert load_network(None).backend == "onnx"  # the default model ships its ONNX file
    checkpoint = tmp_path / "tiny.ckpt"
    tiny[0].save(checkpoint)
    assert load_network(checkpoint, device="cpu").backend == "torch"
    with pytest.raises(ConfigError, match="vocalsep export"):
        load_network(checkpoint, backend="onnx")
    with pytest.raises(ConfigError, match="--backend onnx"):
        load_network(path, backend="torch", device="cpu")
    with pytest.raises(ConfigError, match="threads"):
        load_network(None, threads=0)


def test_missing_runtimes_are_one_line_naming_the_extra(monkeypatch, capsys, tmp_path):
    song = tmp_path / "song.wav"
    sf.write(song, synth(16000, 16000, 2).T, 16000)
    monkeypatch.setattr(backends, "has_module", lambda name: name != "onnxruntime")
    assert main(["separate", str(song), "-o", str(tmp_path), "--backend", "onnx"]) == 1
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and 'pip install "vocalsep[onnx]"' in error
    assert choose_backend("auto", resolve_files(None, TASK)[1]) == "torch"  # falls back
    monkeypatch.setattr(backends, "has_module", lambda name: name != "torch")
    assert main(["separate", str(song), "-o", str(tmp_path), "--backend", "torch"]) == 1
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and 'pip install "vocalsep[torch]"' in error


def test_separate_on_the_onnx_backend_imports_no_torch(tmp_path):
    song = tmp_path / "song.wav"
    sf.write(song, synth(44100, 44100 * 2, 2).T, 44100)
    code = (
        "import sys\n"
        "from vocalsep.cli import main\n"
        f"rc = main(['separate', {str(song)!r}, '-o', {str(tmp_path / 'out')!r},"
        " '--no-progress', '--threads', '1'])\n"
        "assert rc == 0, rc\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "assert 'vocalsep.audio.onnx_model' in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    for stem in ("vocals", "accompaniment"):
        audio, rate = sf.read(tmp_path / "out" / "song" / f"{stem}.wav")
        assert rate == 44100 and audio.shape == (44100 * 2, 2)


def test_export_command_writes_a_file_that_separate_runs(tiny, tmp_path, capsys):
    model, _ = tiny
    checkpoint = tmp_path / "tiny.ckpt"
    model.save(checkpoint)
    out = tmp_path / "tiny.onnx"
    assert main(["export", str(checkpoint), str(out)]) == 0 and out.is_file()
    assert main(["export", str(checkpoint), str(out)]) == 1  # not clobbered
    assert "--overwrite" in capsys.readouterr().err
    assert main(["export", str(checkpoint), str(tmp_path / "tiny.bin")]) == 1
    assert ".onnx" in capsys.readouterr().err
    song = tmp_path / "song.wav"
    mixture = synth(16000, 16000 * 2, 2)
    sf.write(song, mixture.T, 16000, subtype="FLOAT")
    assert main(["separate", str(song), "-o", str(tmp_path / "a"), "--model", str(out)]) == 0
    vocals, _ = sf.read(tmp_path / "a" / "song" / "vocals.wav", dtype="float32")
    expected = Separator(model).separate(mixture, 16000)["vocals"]
    assert np.abs(vocals.T - expected).max() < 2e-4  # 16-bit output


def test_resolve_files_of_names_and_paths(tiny, tmp_path):
    _, path = tiny
    assert resolve_files(path, TASK) == (None, path)
    checkpoint, onnx_file = resolve_files("vocalsep-small", TASK)
    assert checkpoint == resolve("vocalsep-small", TASK) and onnx_file.suffix == ".onnx"
    assert resolve_files("camvid-unet", "image-segmentation")[1] is None
