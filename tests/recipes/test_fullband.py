"""fullband.py moves a narrow-band model onto a grid twice as fine in time samples and twice
as tall in bins, keeping its weights and matching its input statistics bin by bin."""

from dataclasses import replace

import numpy as np
import pytest
import torch
from fullband import features, main, matched_normalisation
from support import make_model, synth_stems, write_wav

from vocalsep.audio.models import SpectrogramMaskModel
from vocalsep.audio.stft import STFT, STFTConfig
from vocalsep.core.checkpoint import load_checkpoint


def test_matched_normalisation_gives_each_bin_the_old_statistics():
    rng = np.random.default_rng(0)
    old_bins, new_bins = 16, 32
    old_offset, old_scale = rng.normal(0, 1, old_bins), rng.uniform(0.5, 2, old_bins)
    old_x = rng.gamma(2.0, 1.0, (old_bins, 400))
    new_x = rng.gamma(3.0, 0.7, (new_bins, 400)) + 0.5
    old_stats = old_x.mean(1), old_x.std(1)
    offset, scale = matched_normalisation(
        old_offset, old_scale, old_stats, (new_x.mean(1), new_x.std(1))
    )
    old_features = (old_x - old_offset[:, None]) * old_scale[:, None]
    new_features = (new_x - offset[:, None]) * scale[:, None]
    np.testing.assert_allclose(new_features[:old_bins].mean(1), old_features.mean(1), atol=1e-9)
    np.testing.assert_allclose(new_features[:old_bins].std(1), old_features.std(1), rtol=1e-9)
    # above the old band: the mean statistics of the old band's top eighth
    top = old_features[-2:]
    np.testing.assert_allclose(new_features[old_bins:].mean(1), top.mean(1).mean(), atol=1e-9)
    np.testing.assert_allclose(new_features[old_bins:].std(1), top.std(1).mean(), rtol=1e-9)


def test_the_doubled_grid_puts_a_tone_in_the_same_bin_and_frame():
    old, new = STFT(STFTConfig(256, 64)), STFT(STFTConfig(512, 128))
    t = np.arange(8000) / 8000
    tone = np.sin(2 * np.pi * 1000 * t) * (t > 0.5)  # 1 kHz, starting at 0.5 s
    t2 = np.arange(16000) / 16000
    tone2 = np.sin(2 * np.pi * 1000 * t2) * (t2 > 0.5)
    a, b = np.abs(old(tone)), np.abs(new(tone2))
    assert a.shape[1] == b.shape[1]  # the same frames
    assert np.argmax(a[:, -1]) == np.argmax(b[:, -1]) == 32  # 1000 Hz / 31.25 Hz per bin
    assert np.argmax(a[32] > a[32].max() / 2) == np.argmax(b[32] > b[32].max() / 2)
    # the STFT is not normalised: twice the window gives twice the magnitude
    assert b[32, -1] / a[32, -1] == pytest.approx(2.0, rel=1e-3)


def test_the_script_writes_a_full_band_model_with_the_same_network(tmp_path):
    narrow = make_model(sample_rate=8000, n_fft=256, hop_length=64, max_bin=64, seed=3)
    with torch.no_grad():
        narrow.input_offset.normal_(0.2, 0.1)
        narrow.input_scale.uniform_(0.5, 1.5)
    narrow.save(tmp_path / "narrow.ckpt")
    for index in range(3):  # a tiny training pool: sung-like tones and chirps
        vocals, accompaniment = synth_stems(16000, 16000 * 3, seed=index)
        write_wav(tmp_path / "data" / "vocals" / f"v{index}.wav", vocals, 16000)
        write_wav(tmp_path / "data" / "accompaniment" / f"a{index}.wav", accompaniment, 22050)
    out = tmp_path / "full.ckpt"
    code = main(
        [str(tmp_path / "narrow.ckpt"), str(out), "--data", str(tmp_path / "data"), "--pairs", "4"]
    )
    assert code == 0
    checkpoint = load_checkpoint(out)
    full = SpectrogramMaskModel.from_checkpoint(checkpoint, out)
    config = full.config
    assert (config.sample_rate, config.stft.n_fft, config.stft.hop_length) == (16000, 512, 128)
    assert config.max_bin == 128 and config.mask_extension == "zeros"
    assert checkpoint.metadata["fullband"]["factor"] == 2
    old_state, new_state = narrow.state_dict(), full.state_dict()
    for key, value in old_state.items():
        if key.startswith("network."):
            assert torch.equal(new_state[key], value), key
    assert new_state["input_offset"].shape == (128, 1)
    assert config.magnitude_gain == 0.5  # twice the FFT at twice the rate: twice the magnitudes
    # the old bins keep their normalisation ...
    assert torch.equal(new_state["input_offset"][:64], old_state["input_offset"])
    assert torch.equal(new_state["input_scale"][:64], old_state["input_scale"])
    # ... because with the gain the network's input there is the old one
    vocals, accompaniment = synth_stems(16000, 16000 * 3, seed=7)
    clip = (vocals + accompaniment)[0]
    old_x = features(clip, 16000, narrow.config, 64)
    new_x = features(clip, 16000, config, 128)
    assert new_x.shape == (128, old_x.shape[1])  # the same frames, twice the bins
    loud = old_x.mean(1) > 0.05  # bins the synthetic song fills
    assert loud.sum() > 10
    inner = slice(2, -2)  # the resamplers differ at the very ends
    np.testing.assert_allclose(new_x[:64][loud, inner], old_x[loud, inner], atol=0.01)
    ungained = features(clip, 16000, replace(config, magnitude_gain=1.0), 128)
    assert np.abs(ungained[:64][loud] - old_x[loud]).max() > 0.2  # which the gain is for
    # the new bins look like the old band's top eighth on the matched audio
    assert np.all(np.isfinite(new_state["input_scale"][64:].numpy()))


def test_the_script_says_what_is_wrong_in_one_line(tmp_path, capsys):
    code = main(["no-such-model", str(tmp_path / "out.ckpt"), "--data", str(tmp_path)])
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fullband.py: error:")
    assert not (tmp_path / "out.ckpt").exists()


def test_band_split_starts_with_the_old_network_on_the_low_half(tmp_path):
    narrow = make_model(
        sample_rate=8000, n_fft=256, hop_length=64, max_bin=64, audio_channels=2, seed=5
    )
    narrow.save(tmp_path / "narrow.ckpt")
    for index in range(2):
        vocals, accompaniment = synth_stems(16000, 16000 * 2, seed=index)
        write_wav(tmp_path / "data" / "vocals" / f"v{index}.wav", vocals, 16000)
        write_wav(tmp_path / "data" / "accompaniment" / f"a{index}.wav", accompaniment, 16000)
    out = tmp_path / "split.ckpt"
    argv = [str(tmp_path / "narrow.ckpt"), str(out), "--band-split", "--pairs", "2"]
    assert main([*argv, "--data", str(tmp_path / "data")]) == 0
    split = SpectrogramMaskModel.from_checkpoint(load_checkpoint(out), out)
    assert split.config.band_split == 2 and split.config.max_bin == 128
    assert split.network_config.in_channels == 4 and split.network_config.out_channels == 4
    low, high = torch.randn(1, 2, 64, 24), torch.randn(1, 2, 64, 24)
    stacked = torch.stack([low, high], dim=2).reshape(1, 4, 64, 24)  # channel c * 2 + s
    with torch.no_grad():
        expected, got = narrow.network(low), split.network(stacked)
    torch.testing.assert_close(got[:, 0::2], expected)  # the low half: the old network
    torch.testing.assert_close(got[:, 1::2], expected)  # the high half starts as its copy
