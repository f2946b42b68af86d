"""The stereo cue: `|L - R| / (|L| + |R|)` per bin as one more input of a stereo spectrogram
model (`SpectrogramModelConfig.stereo_cue`), in the separator, the training loss and the
converter that adds it to a trained model at zero weight."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from support import make_model, synth

from vocalsep.audio.models import MONO_CUE, SpectrogramModelConfig, stereo_cue
from vocalsep.audio.separator import Separator
from vocalsep.audio.training import SeparationTask, SeparationTaskConfig
from vocalsep.core.checkpoint import load_checkpoint
from vocalsep.core.errors import ConfigError

FIRST_CONV = "network.encoder.0.0.weight"
ROOT = Path(__file__).resolve().parents[2]


def _spectrum(left, right):
    return torch.stack([left, right])[None]  # (1, 2, bins, frames)


def test_cue_is_zero_in_the_centre_one_on_a_side_and_minus_one_for_mono():
    torch.manual_seed(0)
    x, y = torch.randn(2, 6, 5, dtype=torch.complex64)
    # A centred source beside a panned one: 0 where only the centred one sounds.
    both = stereo_cue(_spectrum(torch.cat([x, x]), torch.cat([x, torch.zeros_like(x)])))
    assert both[..., :6, :].abs().max() < 1e-6 and torch.allclose(both[..., 6:, :], torch.ones(1))
    assert stereo_cue(_spectrum(x, 0.5 * x)) == pytest.approx(torch.full((1, 1, 6, 5), 1 / 3))
    assert torch.allclose(stereo_cue(_spectrum(x, -x)), torch.ones(1, 1, 6, 5))  # opposite phase
    # Identical channels (a mono song on two channels) and silence carry no stereo information.
    silence = torch.zeros(6, 5, dtype=torch.complex64)
    for mono in (_spectrum(x, x), _spectrum(silence, silence)):
        assert torch.equal(stereo_cue(mono), torch.full((1, 1, 6, 5), MONO_CUE))
    # Per item of a batch.
    batch = stereo_cue(torch.cat([_spectrum(x, x), _spectrum(x, y)]))
    assert torch.equal(batch[0], torch.full((1, 6, 5), MONO_CUE)) and batch[1].min() >= 0
    with pytest.raises(ValueError, match="complex"):
        stereo_cue(_spectrum(x, x).abs())


def test_cue_needs_a_stereo_network_and_adds_an_input():
    with pytest.raises(ConfigError, match="stereo_cue needs a stereo network"):
        SpectrogramModelConfig(audio_channels=1, stereo_cue=True)
    assert SpectrogramModelConfig(audio_channels=2, stereo_cue=True).network_channels == (3, 2)
    assert SpectrogramModelConfig(audio_channels=2).network_channels == (2, 2)


def _cue_model_and_copy_without_cue():
    """A random stereo-cue model, and the same model with the cue's input weights at 0."""
    model = make_model(audio_channels=2, stereo_cue=True, seed=3)
    deaf = make_model(audio_channels=2, stereo_cue=True, seed=3)
    with torch.no_grad():
        deaf.state_dict()[FIRST_CONV][:, 2] = 0
        model.state_dict()[FIRST_CONV][:, 2] *= 20  # a strong cue weight: a clear difference
    return Separator(model), Separator(deaf)


def _cues_seen(separator):
    """The cue channel of every network call of `separator`, collected in a list."""
    seen = []
    separator.model.network.register_forward_hook(
        lambda module, args, out: seen.append(args[0][:, 2].clone())
    )
    return seen


def test_separator_feeds_the_cue_of_stereo_songs_and_minus_one_for_mono():
    model, deaf = _cue_model_and_copy_without_cue()
    wide = synth(16000, 16000 * 2, 2, seed=4)  # independent channels: cue far from 0
    seen = _cues_seen(model)
    assert not np.allclose(
        model.separate(wide, 16000)["vocals"], deaf.separate(wide, 16000)["vocals"], atol=1e-4
    )
    assert min(float(cue.min()) for cue in seen) >= 0 and float(seen[0].mean()) > 0.3
    # At another rate too (the cue is taken on the model's resampled STFT).
    assert not np.allclose(
        model.separate(wide, 44100)["vocals"], deaf.separate(wide, 44100)["vocals"], atol=1e-4
    )
    # A mono song, and the same song on two identical channels, have no stereo information:
    # -1 on the song's frames (the zero padding of tiles past its ends may stay 0).
    mono = synth(16000, 16000 * 2, 1, seed=4)
    for song in (mono, np.concatenate([mono, mono])):
        seen.clear()
        model.separate(song, 16000)
        cues = torch.cat([cue.flatten() for cue in seen])
        assert set(cues.unique().tolist()) <= {MONO_CUE, 0.0}
        assert float((seen[0] == MONO_CUE).float().mean()) > 0.6


def test_predict_mask_needs_the_complex_spectrum_of_a_stereo_input():
    model, deaf = _cue_model_and_copy_without_cue()
    stft = model._model_stft
    spectrum = stft(torch.from_numpy(synth(16000, 16000, 2, seed=5)))
    masks = model.predict_mask(spectrum)
    assert masks.shape == (2, 2, *spectrum.shape[1:])
    assert not torch.allclose(masks, deaf.predict_mask(spectrum), atol=1e-4)
    with pytest.raises(ValueError, match="complex spectrogram"):
        model.predict_mask(spectrum.abs())
    mono = spectrum[:1]  # one channel: magnitudes are enough (the cue is -1 either way)
    assert torch.allclose(model.predict_mask(mono.abs()), model.predict_mask(mono), atol=1e-6)


def _cue_task(**changes) -> SeparationTask:
    """A tiny stereo-cue separation task (8 kHz, 2-level U-Net)."""
    model = {
        "sample_rate": 8000,
        "stft": {"n_fft": 256, "hop_length": 64},
        "audio_channels": 2,
        "stereo_cue": True,
    }
    config = {"model": model, "network": {"channels": [4, 8]}, "data": {"channels": 2}}
    return SeparationTask(SeparationTaskConfig.from_dict({**config, **changes}))


def test_training_loss_gives_the_cue_weights_a_gradient():
    task = _cue_task()
    model = task.build_model()
    seen = []
    model.network.register_forward_hook(lambda module, args, out: seen.append(args[0].shape[1]))
    torch.manual_seed(0)
    vocals, accompaniment = torch.randn(2, 2, 4000), torch.randn(2, 2, 4000)
    batch = {"mixture": vocals + accompaniment, "vocals": vocals}
    task.loss(model, batch).backward()
    assert seen == [3]  # two magnitudes and the cue
    assert model.state_dict(keep_vars=True)[FIRST_CONV].grad[:, 2].abs().sum() > 0


def _script(name):
    spec = importlib.util.spec_from_file_location(
        name, ROOT / "recipes" / "synthetic" / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_add_stereo_cue_starts_as_the_same_model(tmp_path, monkeypatch, capsys):
    source, out = tmp_path / "plain.ckpt", tmp_path / "cue.ckpt"
    make_model(audio_channels=2, seed=1).save(source)
    add = _script("add_stereo_cue")
    monkeypatch.setattr("sys.argv", ["add_stereo_cue.py", str(source), str(out)])
    assert add.main() == 0
    checkpoint = load_checkpoint(out)
    assert checkpoint.task_config["stereo_cue"] is True
    assert checkpoint.state_dict[FIRST_CONV].shape[1] == 3
    song = synth(44100, 44100 * 2, 2, seed=6)
    before = Separator.from_pretrained(source).separate(song, 44100)["vocals"]
    after = Separator.from_pretrained(out).separate(song, 44100)["vocals"]
    np.testing.assert_allclose(after, before, atol=1e-6)
    # A mono model, or one that has the cue already, is refused with one line.
    make_model(audio_channels=1).save(tmp_path / "mono.ckpt")
    for bad in (tmp_path / "mono.ckpt", out):
        monkeypatch.setattr("sys.argv", ["add_stereo_cue.py", str(bad), str(tmp_path / "x.ckpt")])
        assert add.main() == 1
        assert "add_stereo_cue.py: error:" in capsys.readouterr().err
    assert not (tmp_path / "x.ckpt").exists()


def test_cue_dropout_hides_the_cue_of_a_share_of_training_items_only():
    task = _cue_task(cue_dropout=0.5)
    model = task.build_model()
    cues = []
    model.network.register_forward_hook(lambda module, args, out: cues.append(args[0][:, 2]))
    torch.manual_seed(0)
    vocals, accompaniment = torch.randn(64, 2, 2000), torch.randn(64, 2, 2000)
    batch = {"mixture": vocals + accompaniment, "vocals": vocals}
    task.loss(model.train(), batch)
    hidden = (cues[-1] == MONO_CUE).flatten(1).all(dim=1)
    assert 16 <= int(hidden.sum()) <= 48  # about half of 64 stereo items
    assert (cues[-1][~hidden] >= 0).all()  # the others see their real cue
    task.loss(model.eval(), batch)  # validation: never hidden
    assert (cues[-1] >= 0).all()
    with pytest.raises(ConfigError, match="stereo_cue"):
        SeparationTaskConfig.from_dict({"model": {"audio_channels": 2}, "cue_dropout": 0.2})
