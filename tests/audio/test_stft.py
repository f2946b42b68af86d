import subprocess
import sys

import numpy as np
import pytest
import torch

from vocalsep.audio.stft import STFT, STFTConfig, fast_fft_length
from vocalsep.core.errors import ConfigError


@pytest.mark.parametrize("kind", ["torch", "numpy"])
@pytest.mark.parametrize("n_fft,hop", [(4096, 1024), (2048, 512), (256, 64), (743, 186), (8, 4)])
@pytest.mark.parametrize("length", [1, 2, 7, 300, 372, 4097, 44100])
def test_round_trip_error_below_1e5(n_fft, hop, length, kind):
    stft = STFT(STFTConfig(n_fft=n_fft, hop_length=hop))
    waveform = torch.randn(2, 3, length)
    if kind == "numpy":
        waveform = waveform.numpy()
    spectrum = stft(waveform)
    assert type(spectrum) is type(waveform)
    assert spectrum.shape == (2, 3, n_fft // 2 + 1, stft.config.num_frames(length))
    assert spectrum.dtype in (torch.complex64, np.complex64)
    restored = stft.inverse(spectrum, length)
    assert type(restored) is type(waveform) and restored.dtype == waveform.dtype
    assert restored.shape == waveform.shape
    assert abs(restored - waveform).max() < 1e-5


# (n_fft, hop, fft_length): hops that divide n_fft and hops that do not, odd n_fft, longer FFTs.
CONFIGS = [
    (4096, 1024, None),
    (743, 186, None),
    (256, 100, None),
    (9, 4, None),
    (8, 4, None),
    (2822, 705, 2880),
    (14, 4, 20),
]


@pytest.mark.parametrize("n_fft,hop,fft_length", CONFIGS)
@pytest.mark.parametrize("length", [1, 2, 7, 300, 372, 4097])
@pytest.mark.parametrize(
    "dtype,lead", [(np.float32, (2, 3)), (np.float32, (2, 1, 2)), (np.float64, ())]
)
def test_numpy_equals_torch(n_fft, hop, fft_length, length, dtype, lead):
    stft = STFT(STFTConfig(n_fft=n_fft, hop_length=hop), fft_length)
    waveform = np.random.default_rng(length).standard_normal((*lead, length)).astype(dtype)
    spectrum = stft(waveform)
    expected = stft(torch.from_numpy(waveform)).numpy()
    assert isinstance(spectrum, np.ndarray)
    assert spectrum.shape == expected.shape and spectrum.dtype == expected.dtype
    # Unit-variance noise: a bin sums n_fft windowed samples, so it is of scale sqrt(n_fft).
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(spectrum, expected, rtol=0, atol=tolerance * np.sqrt(n_fft))
    restored = stft.inverse(expected, length)
    assert restored.dtype == dtype and restored.shape == waveform.shape
    torch_restored = stft.inverse(torch.from_numpy(expected), length).numpy()
    np.testing.assert_allclose(restored, torch_restored, rtol=0, atol=tolerance)


def test_the_window_is_torchs_hann_centred_in_the_longer_frame():
    window = STFT(STFTConfig(n_fft=14, hop_length=4), 20).window()
    np.testing.assert_allclose(window[3:17], torch.hann_window(14, dtype=torch.float64), atol=1e-15)
    assert not window[:3].any() and not window[17:].any()


@pytest.mark.parametrize("n_fft,hop,fft_length", [(16, 4, None), (14, 4, 20), (2822, 705, 2880)])
def test_inverse_to_a_shorter_or_longer_length(n_fft, hop, fft_length):
    stft = STFT(STFTConfig(n_fft=n_fft, hop_length=hop), fft_length)
    waveform = np.random.default_rng(0).standard_normal((2, 5000))
    spectrum = stft(waveform)
    full = stft.inverse(spectrum, 5000)
    for length in (1, 123, 4999):  # a shorter length is a prefix
        np.testing.assert_allclose(stft.inverse(spectrum, length), full[:, :length], atol=1e-12)
    longer = stft.inverse(spectrum, 20000)
    assert longer.shape == (2, 20000)
    np.testing.assert_allclose(longer[:, :5000], waveform, atol=1e-9)
    # Past the signal the frames hold its zero padding, and past the frames there is nothing.
    assert np.abs(longer[:, 5000:]).max() < 1e-8
    assert not longer[:, -10000:].any()
    # torch.istft agrees for every length it accepts (it refuses lengths past the frames).
    for length in (1, 4999, 5000 + hop // 2):
        torch_restored = stft.inverse(torch.from_numpy(spectrum), length).numpy()
        np.testing.assert_allclose(stft.inverse(spectrum, length), torch_restored, atol=1e-12)


def test_the_numpy_path_does_not_import_torch():
    code = (
        "import sys\n"
        "import numpy as np\n"
        "from vocalsep.audio.stft import STFT, STFTConfig\n"
        "stft = STFT(STFTConfig(n_fft=64, hop_length=16), 80)\n"
        "waveform = np.random.default_rng(0).standard_normal((2, 1000)).astype(np.float32)\n"
        "restored = stft.inverse(stft(waveform), 1000)\n"
        "assert np.abs(restored - waveform).max() < 1e-5, 'no round trip'\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("kind", ["torch", "numpy"])
def test_sine_lands_in_its_bin(kind):
    stft = STFT(STFTConfig(n_fft=1024, hop_length=256))
    rate, bin_index = 16000, 64
    t = torch.arange(rate) / rate
    sine = torch.sin(2 * torch.pi * bin_index * rate / 1024 * t)
    spectrum = stft(sine if kind == "torch" else sine.numpy())
    assert abs(spectrum)[:, 10].argmax() == bin_index


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


@pytest.mark.parametrize("mask_lead", [(2, 1), (3,), (4, 2, 1)])
def test_inverse_of_a_masked_spectrum(mask_lead):
    """`inverse(spectrum, length, mask)` multiplies block by block: the same as the product's
    inverse, broadcast as numpy broadcasts, on both paths."""
    stft = STFT(STFTConfig(n_fft=64, hop_length=16), 72)
    rng = np.random.default_rng(1)
    waveform = rng.standard_normal((2, 3, 5000)).astype(np.float32)
    spectrum = stft(waveform)
    mask = rng.uniform(size=(*mask_lead, *spectrum.shape[-2:])).astype(np.float32)
    expected = stft.inverse(mask * spectrum, 5000)
    restored = stft.inverse(spectrum, 5000, mask)
    assert restored.shape == expected.shape and restored.dtype == np.float32
    np.testing.assert_allclose(restored, expected, rtol=0, atol=1e-6)
    torch_restored = stft.inverse(torch.from_numpy(spectrum), 5000, torch.from_numpy(mask))
    np.testing.assert_allclose(torch_restored.numpy(), expected, rtol=0, atol=1e-5)
