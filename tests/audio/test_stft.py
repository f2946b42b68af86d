import pytest
import torch

from vocalsep.audio.stft import STFT, STFTConfig, fast_fft_length
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


@pytest.mark.parametrize("n_fft,hop", [(2822, 706), (1412, 353), (742, 186), (14, 4)])
def test_a_longer_fft_is_the_same_analysis_on_a_finer_grid(n_fft, hop):
    config = STFTConfig(n_fft=n_fft, hop_length=hop)
    plain, padded = STFT(config), STFT(config, fast_fft_length(n_fft))
    waveform = torch.randn(2, 9000, dtype=torch.float64)
    spectrum = padded(waveform)
    assert spectrum.shape == (2, padded.n_bins, config.num_frames(9000))
    assert (padded.inverse(spectrum, 9000) - waveform).abs().max() < 1e-9
    # Each frame is the same windowed frame, zero-padded: back in time, the longer FFT's
    # frames hold the plain frames, centred, with zeros around them.
    fine = padded.fft_length
    frames_plain = torch.fft.irfft(plain(waveform), n=n_fft, dim=-2)
    frames_padded = torch.fft.irfft(spectrum, n=fine, dim=-2)
    lead = (fine - n_fft) // 2
    assert torch.allclose(frames_padded[:, lead : lead + n_fft], frames_plain, atol=1e-9)
    assert frames_padded[:, :lead].abs().max() < 1e-9
    assert frames_padded[:, lead + n_fft :].abs().max() < 1e-9
    # A longer FFT by an odd number of samples would move the frames by half a sample.
    with pytest.raises(ConfigError, match="even"):
        STFT(config, n_fft + 1)


def _smooth(m: int) -> bool:
    for prime in (2, 3, 5):
        while m % prime == 0:
            m //= prime
    return m == 1


def test_fast_fft_length_is_the_next_even_2_3_5_smooth_length():
    assert [fast_fft_length(n) for n in (2, 3, 1024, 1412, 2822)] == [2, 4, 1024, 1440, 2880]
    for n in range(2, 600):
        length = fast_fft_length(n)
        assert length >= n and length % 2 == 0 and _smooth(length)
        assert not any(m % 2 == 0 and _smooth(m) for m in range(n, length))


def test_fft_shorter_than_the_window_is_refused():
    with pytest.raises(ConfigError, match="shorter"):
        STFT(STFTConfig(n_fft=1024, hop_length=256), 512)


@pytest.mark.parametrize(
    "n_fft,hop,window", [(1, 1, "hann"), (64, 33, "hann"), (64, 0, "hann"), (64, 16, "boxcar")]
)
def test_invalid_configs(n_fft, hop, window):
    with pytest.raises(ConfigError):
        STFTConfig(n_fft=n_fft, hop_length=hop, window=window)
