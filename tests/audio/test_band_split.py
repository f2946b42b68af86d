"""A band-split spectrogram model: its band cut into sub-bands stacked as the network's
channels (sub-band s of audio channel c is channel c * split + s, for the input and the masks)."""

import numpy as np
import pytest
import torch
from support import assert_chunks_give_one_pass, make_model, synth

from vocalsep.audio.modelconfig import SpectrogramModelConfig
from vocalsep.audio.models import load_model
from vocalsep.audio.stft import STFTConfig
from vocalsep.core.errors import ConfigError


class Recorder(torch.nn.Module):
    """Stands in for the network: its mask of each channel is the sigmoid of that channel's
    input at the same place, and it records what it was given."""

    def forward(self, features):
        self.seen = features.detach().clone()
        return features


def test_each_bin_gets_the_mask_of_its_own_place_in_the_stack():
    model = make_model(audio_channels=2, max_bin=64, band_split=2, channels=(4, 8)).eval()
    assert model.config.network_channels == (4, 4)
    model.network = Recorder()
    model.to_mask = torch.nn.Identity()
    magnitude = torch.rand(3, 2, 64, 10) * 4
    with torch.no_grad():
        masks = model(magnitude)
        features = (model.compress(magnitude) - model.input_offset) * model.input_scale
    seen = model.network.seen
    assert seen.shape == (3, 4, 32, 10)  # half the bins, twice the channels
    for channel in range(2):
        for sub in range(2):
            band = features[:, channel, sub * 32 : (sub + 1) * 32]
            torch.testing.assert_close(seen[:, channel * 2 + sub], band)
    # the masks come back on the bins they were computed from
    torch.testing.assert_close(masks[:, 0], features)


def test_the_split_must_divide_the_band():
    stft = STFTConfig(n_fft=256, hop_length=64)
    with pytest.raises(ConfigError, match="band_split"):
        SpectrogramModelConfig(stft=stft, max_bin=65, band_split=2)
    with pytest.raises(ConfigError, match="band_split"):
        SpectrogramModelConfig(stft=stft, max_bin=64, band_split=0)
    assert SpectrogramModelConfig(stft=stft, max_bin=64, band_split=4).network_channels == (4, 4)


def test_a_band_split_model_separates_in_chunks_as_in_one_pass_and_reloads(tmp_path):
    model = make_model(
        audio_channels=2, max_bin=96, band_split=3, channels=(4, 8), tile_frames=40
    ).eval()
    mixture = synth(16000, 16000 * 6, 2)
    whole = assert_chunks_give_one_pass(model, mixture, 16000, 2.0, 0.5, tiles=3)
    assert np.abs(whole["vocals"]).max() > 0.01
    model.save(tmp_path / "split.ckpt")
    again = load_model(tmp_path / "split.ckpt")
    assert again.config.band_split == 3
    x = torch.rand(1, 2, 96, 40)
    with torch.no_grad():
        torch.testing.assert_close(again(x), model(x))


def test_magnitude_gain_scales_what_the_network_sees():
    gained = make_model(max_bin=64, magnitude_gain=0.5, seed=2).eval()
    plain = make_model(max_bin=64, seed=2).eval()  # the same weights
    magnitude = torch.rand(2, 1, 64, 12) * 6
    with torch.no_grad():
        torch.testing.assert_close(gained(magnitude), plain(magnitude * 0.5))
        assert not torch.allclose(gained(magnitude), plain(magnitude))
    with pytest.raises(ConfigError, match="magnitude_gain"):
        SpectrogramModelConfig(stft=STFTConfig(n_fft=256, hop_length=64), magnitude_gain=0.0)
