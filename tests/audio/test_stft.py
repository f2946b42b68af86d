import pytest
import torch

from vocalsep.audio.stft import STFT, STFTConfig
from vocalsep.core.errors import ConfigError


@pytest.mark.parametrize("n_fft,hop", [(4096, 1024), (2048, 512), (256, 64), (743, 186), (8, 4)])
@pytest.mark.parametrize("length", [1, 2, 7, 300, 4097, 44100])
def test_round_trip_error_below_1e5(n_fft, hop, length):
    stft = STFT(STFTConfig(n_fft=n_fft, hop_length=hop))
    waveform = torch.randn(2, 3, length)
    spectrum = stft(waveform)
    assert spectrum.shape == (2, 3, n_fft // 2 + 1, stft.config.num_frames(length))
    assert spectrum.is_complex()
    restored = stft.inverse(spectrum, length)
    assert restored.shape == waveform.shape
    assert (restored - waveform).abs().max() < 1e-5


def test_sine_lands_in_its_bin():
    stft = STFT(STFTConfig(n_fft=1024, hop_length=256))
    rate, bin_index = 16000, 64
    t = torch.arange(rate) / rate
    spectrum = stft(torch.sin(2 * torch.pi * bin_index * rate / 1024 * t))
    assert spectrum.abs()[:, 10].argmax() == bin_index


def test_scaled_keeps_durations():
    config = STFTConfig(n_fft=1024, hop_length=256).scaled(44100 / 16000)
    assert config.n_fft == 2822 and config.hop_length == 706


@pytest.mark.parametrize(
    "n_fft,hop,window", [(1, 1, "hann"), (64, 33, "hann"), (64, 0, "hann"), (64, 16, "boxcar")]
)
def test_invalid_configs(n_fft, hop, window):
    with pytest.raises(ConfigError):
        STFTConfig(n_fft=n_fft, hop_length=hop, window=window)
