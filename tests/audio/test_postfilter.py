"""The multichannel Wiener post-filter."""

from __future__ import annotations

import numpy as np
import torch
from support import make_model, synth

from vocalsep.audio.metrics import signal_to_distortion_ratio
from vocalsep.audio.postfilter import wiener
from vocalsep.audio.separator import Separator
from vocalsep.audio.stft import STFT, STFTConfig

STFT_512 = STFT(STFTConfig(n_fft=512, hop_length=128))


def spatial_sources(samples=32000, seed=0):
    """A 'voice' in the centre and 'music' mostly on the left: (2 sources, 2 channels, n)."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / 16000
    voice = np.sin(2 * np.pi * 300 * t) * (
        1 + np.sin(2 * np.pi * 3 * t)
    ) + 0.3 * rng.standard_normal(samples)
    music = rng.standard_normal(samples) * (0.5 + 0.5 * np.sin(2 * np.pi * 0.7 * t) ** 2)
    sources = np.stack([np.stack([voice, voice]), np.stack([music, 0.2 * music])])
    return sources.astype(np.float32)


def sdr(estimate, reference):
    return signal_to_distortion_ratio(torch.from_numpy(estimate), torch.from_numpy(reference))


def test_zero_iterations_is_the_identity():
    estimates = np.ones((2, 2, 5, 7), np.complex64)
    assert wiener(estimates, estimates.sum(0), 0) is estimates


def test_estimates_sum_to_the_mixture_and_improve():
    sources = spatial_sources()
    spectra = STFT_512(sources)  # (2, 2, bins, frames)
    mixture = spectra.sum(0)
    # A weak initial mask: the oracle ratio mask blended halfway towards 0.5.
    level = np.abs(spectra).mean(1, keepdims=True)
    oracle = level / (level.sum(0) + 1e-8)
    mask = 0.5 * oracle + 0.25
    initial = mask * mixture[None]
    refined = wiener(initial, mixture, iterations=3)
    assert refined.shape == initial.shape and refined.dtype == np.complex64
    error = np.square(np.abs(refined.sum(0) - mixture)).sum() / np.square(np.abs(mixture)).sum()
    assert error < 1e-6  # the gains of all sources sum to the identity
    length = sources.shape[-1]
    before = sdr(STFT_512.inverse(initial, length), sources)
    after = sdr(STFT_512.inverse(refined, length), sources)
    assert (after > before + 2.0).all(), (before, after)  # the spatial model sharpens both


def test_silence_stays_finite():
    zeros = np.zeros((2, 2, 9, 4), np.complex64)
    assert np.isfinite(wiener(zeros, zeros.sum(0), 2)).all()


def test_separator_with_wiener_keeps_shape_and_sum():
    model = make_model(audio_channels=1)
    for channels in (1, 2):
        audio = synth(16000, 20000, channels)
        stems = Separator(model, wiener_iterations=1).separate(audio, 16000)
        plain = Separator(model).separate(audio, 16000)
        assert stems["vocals"].shape == audio.shape
        np.testing.assert_allclose(stems["vocals"] + stems["accompaniment"], audio, atol=1e-5)
        assert not np.allclose(stems["vocals"], plain["vocals"])  # the filter did something


def test_the_covariance_is_local_in_time():
    """A frame's output depends only on frames within `iterations * window` of it."""
    sources = spatial_sources(samples=48000)
    mixture = STFT_512(sources).sum(0)
    initial = 0.5 * np.repeat(mixture[None], 2, axis=0)
    initial[0] *= 1.2
    whole = wiener(initial, mixture, iterations=2, window=10)
    part = wiener(initial[..., 100:300], mixture[..., 100:300], iterations=2, window=10)
    inner = slice(20, 180)  # 2 x 10 frames from either end of the part
    assert np.allclose(part[..., inner], whole[..., 100:300][..., inner], atol=1e-5)
    assert not np.allclose(part[..., :5], whole[..., 100:105], atol=1e-3)  # the edges differ


def test_wiener_output_does_not_depend_on_the_chunk_length():
    """--wiener 1 with 2 s chunks gives the one-pass output (was 0.008 off on a 0.4 peak)."""
    from support import LOCAL_MODEL

    model = make_model(audio_channels=2, seed=5, **LOCAL_MODEL)
    audio = synth(44100, 44100 * 9, 2)
    whole = Separator(model, chunk_seconds=100.0, wiener_iterations=1).separate(audio, 44100)
    chunked = Separator(model, chunk_seconds=2.0, wiener_iterations=1)
    assert chunked._chunk_plan(44100).num_tiles(audio.shape[-1]) >= 4  # really chunked
    stems = chunked.separate(audio, 44100)
    for stem in whole:
        assert np.abs(stems[stem] - whole[stem]).max() < 1e-4
