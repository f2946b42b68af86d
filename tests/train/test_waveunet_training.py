"""Training a waveform (Wave-U-Net) model with the same trainer, data and recipes, then
separating with the result from the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from conftest import ROOT
from support import synth, write_wav

from vocalsep import api
from vocalsep.audio.models import SpectrogramMaskModel, WaveformModel
from vocalsep.audio.training import SeparationTaskConfig
from vocalsep.cli import main
from vocalsep.core.errors import ConfigError
from vocalsep.train import RunConfig, load_run_config

WAVEFORM = (
    "task_config.model_type='waveform'",
    "task_config.preset='waveunet'",
    "task_config.network={channels=[4, 8, 12], bottleneck_channels=16}",
    "task_config.model={sample_rate=8000, targets=['vocals', 'accompaniment'], "
    "audio_channels=1, tile_samples=4096}",
)


def test_tiny_waveunet_learns_and_separates_from_the_cli(tiny_config, tmp_path, capsys):
    config = tiny_config(
        *WAVEFORM,
        "trainer.steps=40",
        "trainer.validate_every=20",
        "trainer.validate_at_start=true",
        "task_config.data.validation_examples=8",
    )
    result = api.train(config, tmp_path / "run", progress=False)
    lines = (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    history = [r for r in map(json.loads, lines) if r["event"] == "validation"]
    assert {"loss", "sdr", "sdr_vocals", "sdr_accompaniment"} <= set(history[-1])
    assert history[-1]["loss"] < 0.5 * history[0]["loss"], history
    assert history[-1]["sdr_vocals"] > history[0]["sdr_vocals"] + 3.0, history
    separator = api.load_separator(result.best, device="cpu")
    assert isinstance(separator.model, WaveformModel) and separator.sample_rate == 8000

    song = write_wav(tmp_path / "song.wav", synth(22050, 22050 * 2 + 3, 2), 22050)
    out = tmp_path / "out"
    argv = ["separate", song, "-o", out, "--model", result.best, "--bit-depth", "32f"]
    assert main([str(arg) for arg in argv]) == 0, capsys.readouterr().err
    mixture, _ = sf.read(song)
    vocals, rate = sf.read(out / "song" / "vocals.wav")
    accompaniment, _ = sf.read(out / "song" / "accompaniment.wav")
    assert rate == 22050 and vocals.shape == mixture.shape
    assert np.abs(vocals + accompaniment - mixture).max() < 1e-6


@pytest.mark.parametrize(
    "recipe, sample_rate, parameters",
    [("synthetic/waveunet.toml", 16000, 373_742), ("musdb18/waveunet.toml", 44100, 10_265_550)],
)
def test_waveunet_recipes_build(recipe, sample_rate, parameters):
    run = load_run_config(ROOT / "recipes" / recipe)
    task = api.build_task(run)
    model = task.build_model()
    assert isinstance(model, WaveformModel) and model.config.sample_rate == sample_rate
    assert sum(p.numel() for p in model.parameters()) == parameters
    assert task.margin == model.context == model.network_config.receptive_field


def test_spectrogram_configs_load_as_before():
    for recipe in ("tiny/config.toml", "synthetic/config.toml", "musdb18/config.toml"):
        task = api.build_task(load_run_config(ROOT / "recipes" / recipe))
        assert task.config.model_type == "spectrogram-mask"
        assert isinstance(task.build_model(), SpectrogramMaskModel)


def test_task_config_errors():
    with pytest.raises(ConfigError, match="unknown model_type"):
        SeparationTaskConfig.from_dict({"model_type": "transformer"})
    with pytest.raises(ConfigError, match="WaveformModelConfig: unknown field.*max_bin"):
        SeparationTaskConfig.from_dict({"model_type": "waveform", "model": {"max_bin": 512}})
    with pytest.raises(ConfigError, match="needs a WaveformModelConfig"):
        SeparationTaskConfig(model_type="waveform")
    config = SeparationTaskConfig.from_dict({"model_type": "waveform", "preset": "waveunet"})
    assert SeparationTaskConfig.from_dict(config.to_dict()) == config
    short = config.to_dict()
    short["data"]["segment_seconds"] = 3.0  # the full paper network sees 1.6 s on both sides
    with pytest.raises(ConfigError, match="segment_seconds must exceed"):
        api.build_task(RunConfig(task_config=short))
