"""SpectrogramEnsemble: several spectrogram masking models (their own STFTs) whose masks the
Separator maps onto one output STFT and averages; one checkpoint file; `export.py` builds it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from support import LOCAL_MODEL, assert_chunks_give_one_pass, make_model, synth, write_wav

from vocalsep.audio.models import SpectrogramEnsemble, WaveformModel, load_model
from vocalsep.audio.separator import Separator
from vocalsep.cli import main
from vocalsep.core.checkpoint import load_checkpoint, save_checkpoint
from vocalsep.core.errors import CheckpointError, ConfigError

ROOT = Path(__file__).resolve().parents[2]


def _pair():
    """Two stereo models with different STFTs (256 / hop 64 and 512 / hop 128 at 16 kHz)."""
    first = make_model(audio_channels=2, seed=0, **LOCAL_MODEL)
    second = make_model(audio_channels=2, seed=1, n_fft=512, hop_length=128, **LOCAL_MODEL)
    return first, second


@pytest.mark.parametrize("rate", [16000, 44100])
def test_members_on_one_stft_give_the_weighted_mean_of_their_stems(rate):
    # Masks on the same grid, one iSTFT: the iSTFT is linear, so the ensemble's vocals are the
    # weighted mean of the members' vocals.
    first, second = make_model(seed=0), make_model(seed=1)
    mixture = synth(rate, rate * 2 + 57, 2)
    one = Separator(first).separate(mixture, rate)["vocals"]
    two = Separator(second).separate(mixture, rate)["vocals"]
    both = Separator(SpectrogramEnsemble([first, second], [1, 3])).separate(mixture, rate)
    assert np.abs(one - two).max() > 1e-3  # the members really differ
    assert np.abs(both["vocals"] - (0.25 * one + 0.75 * two)).max() < 1e-5
    assert np.abs(both["vocals"] + both["accompaniment"] - mixture).max() < 1e-6


def test_a_one_member_ensemble_is_its_model():
    model = make_model(audio_channels=2, max_bin=60)
    mixture = synth(44100, 44100 * 2, 2)
    alone = Separator(model).separate(mixture, 44100)
    ensemble = Separator(SpectrogramEnsemble([model], [5.0])).separate(mixture, 44100)
    for stem in alone:
        assert np.array_equal(alone[stem], ensemble[stem])


@pytest.mark.parametrize("rate,chunk_seconds", [(16000, 1.3), (22050, 2.1)])
def test_members_with_different_stfts_chunk_like_one_pass(rate, chunk_seconds):
    first, second = _pair()
    ensemble = SpectrogramEnsemble([first, second])
    mixture = synth(rate, rate * 12 + 5, 2)
    whole = assert_chunks_give_one_pass(ensemble, mixture, rate, chunk_seconds, 0.25, 4)
    # The second member's masks count: the result is neither member's alone.
    for member in (first, second):
        alone = Separator(member, chunk_seconds=100.0).separate(mixture, rate)["vocals"]
        assert np.abs(alone - whole["vocals"]).max() > 1e-3


def test_the_chunks_cover_the_member_with_the_longest_tiles():
    first, second = _pair()
    rate = 44100
    plan = Separator(SpectrogramEnsemble([first, second]))._chunk_plan(rate)
    assert plan.context == Separator(second)._chunk_plan(rate).context
    assert plan.context > Separator(first)._chunk_plan(rate).context
    assert Separator(SpectrogramEnsemble([first, second])).min_samples(rate) == 1412  # 512 @16k


def test_predict_mask_of_mixed_stfts_needs_the_complex_spectrogram():
    first, second = _pair()
    separator = Separator(SpectrogramEnsemble([first, second]), chunk_seconds=100.0)
    waveform = torch.from_numpy(synth(16000, 16000 * 6, 2))
    spectrum = separator._estimator.stft(waveform)  # (channels, bins, frames)
    with pytest.raises(ValueError, match="complex spectrogram"):
        separator.predict_mask(spectrum.abs())
    mask = separator.predict_mask(spectrum)
    assert mask.shape == (2, 2, *spectrum.shape[1:]) and 0 <= mask.min() and mask.max() <= 1
    assert torch.allclose(mask.sum(dim=0), torch.ones(()))  # accompaniment = 1 - vocals
    # The mask is the one `separate` applies: away from the ends the stems agree.
    vocals = separator._estimator.stft.inverse(mask[0] * spectrum, waveform.shape[-1])
    expected = separator.separate(waveform.numpy(), 16000)["vocals"]
    inner = slice(4000, -4000)
    assert np.abs(vocals.numpy()[:, inner] - expected[:, inner]).max() < 1e-4


def test_checkpoint_round_trip(tmp_path):
    first, second = _pair()
    path = tmp_path / "ensemble.ckpt"
    SpectrogramEnsemble([first, second], [2, 1]).save(path, metadata={"card": "test"})
    payload = torch.load(path, weights_only=True)  # plain data, no code
    assert payload["architecture"] == "ensemble"
    loaded = load_model(path)
    assert isinstance(loaded, SpectrogramEnsemble)
    assert loaded.weights == pytest.approx((2 / 3, 1 / 3))
    assert [m.config.stft.n_fft for m in loaded.members] == [256, 512]
    mixture = synth(44100, 44100 * 3, 2)
    before = Separator(SpectrogramEnsemble([first, second], [2, 1])).separate(mixture, 44100)
    after = Separator.from_pretrained(path).separate(mixture, 44100)
    assert np.array_equal(before["vocals"], after["vocals"])


def test_invalid_ensembles_are_refused(tmp_path):
    first, second = _pair()
    with pytest.raises(ConfigError, match="sample_rate"):
        SpectrogramEnsemble([first, make_model(sample_rate=8000, audio_channels=2)])
    with pytest.raises(ConfigError, match="audio_channels"):
        SpectrogramEnsemble([first, make_model()])
    with pytest.raises(ConfigError, match="weight"):
        SpectrogramEnsemble([first, second], [1.0, 0.0])
    with pytest.raises(ConfigError, match="weight"):
        SpectrogramEnsemble([first, second], [1.0])
    with pytest.raises(ConfigError, match="at least one"):
        SpectrogramEnsemble([])
    waveform = WaveformModel.__new__(WaveformModel)  # the type check comes first
    with pytest.raises(ConfigError, match="spectrogram masking models only"):
        SpectrogramEnsemble([first, waveform])
    good = SpectrogramEnsemble([first, second]).to_checkpoint()
    path = tmp_path / "bad.ckpt"
    broken = load_checkpoint_copy(good)
    broken.task_config.pop("members")
    save_checkpoint(broken, path)
    with pytest.raises(CheckpointError, match="invalid ensemble"):
        load_model(path)
    stray = load_checkpoint_copy(good)
    stray.state_dict["members.2.input_scale"] = torch.ones(3)
    save_checkpoint(stray, path)
    with pytest.raises(CheckpointError, match="no ensemble member"):
        load_model(path)
    short = load_checkpoint_copy(good)
    del short.state_dict["members.1.input_scale"]
    save_checkpoint(short, path)
    with pytest.raises(CheckpointError, match="member 1"):
        load_model(path)


def load_checkpoint_copy(checkpoint):
    """A deep-enough copy of a checkpoint to break one part of it."""
    copy = type(checkpoint)(**vars(checkpoint))
    copy.task_config = dict(checkpoint.task_config)
    copy.state_dict = dict(checkpoint.state_dict)
    return copy


def _export():
    spec = importlib.util.spec_from_file_location(
        "export", ROOT / "recipes" / "synthetic" / "export.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_export_packs_members_into_one_file_that_the_cli_separates_with(tmp_path, capsys):
    paths = []
    for i, model in enumerate(_pair()):
        paths.append(tmp_path / f"m{i}.ckpt")
        model.save(paths[-1])
    out = tmp_path / "ensemble.ckpt"
    args = [*map(str, paths), str(out), "--weights", "1,3"]
    assert _export().main(args) == 0
    checkpoint = load_checkpoint(out)
    assert checkpoint.training_state is None
    assert checkpoint.metadata["members"] == [str(p) for p in paths]
    assert load_model(out).weights == pytest.approx((0.25, 0.75))
    song = write_wav(tmp_path / "in" / "song.wav", synth(44100, 44100 * 3, 2), 44100)
    code = main(["separate", str(song), "-o", str(tmp_path / "out"), "--model", str(out)])
    assert code == 0, capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "out" / "song").iterdir()) == [
        "accompaniment.wav",
        "vocals.wav",
    ]
    # A bad member is one line on stderr, not a traceback.
    assert _export().main([str(paths[0]), str(tmp_path / "nope.ckpt"), str(out) + "2"]) == 1
    assert "nope.ckpt" in capsys.readouterr().err
    assert not (tmp_path / "ensemble.ckpt2").exists()
