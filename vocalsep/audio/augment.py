"""Waveform augmentations for training: `(channels, samples)` float32 in, the same out.

Each function takes an explicit `numpy.random.Generator`, so an example built from a seeded
generator is reproducible. They make a small pool of isolated vocals go further: pitch and tempo
changes (librosa's phase vocoder), a random equaliser, reverb (the vocal *target* includes
it, as in produced music), gain, panning and channel swaps. "Production" effects make clean
studio singing sound like a mixed lead vocal: dynamic-range compression, soft saturation and a
doubled take. Reverb and the compressors are short functions of their own, tested in
tests/audio/test_datasets.py.
"""

from __future__ import annotations

import numpy as np

from ..core.errors import ConfigError
from .io import resample


def time_stretch(audio: np.ndarray, rate: float) -> np.ndarray:
    """Phase-vocoder time stretch (`librosa.effects.time_stretch`, 1024-point frames): `rate`
    > 1 is faster (shorter), pitch unchanged. Returns `(channels, round(samples / rate))`."""
    if abs(rate - 1.0) < 1e-6:
        return audio
    librosa = _librosa()
    stretched = librosa.effects.time_stretch(audio, rate=rate, n_fft=1024, hop_length=256)
    return fit_length(stretched.astype(np.float32), max(1, round(audio.shape[-1] / rate)))


def pitch_shift(audio: np.ndarray, semitones: float, sample_rate: int) -> np.ndarray:
    """Shift pitch by `semitones` keeping the duration (`librosa.effects.pitch_shift`: a time
    stretch, then soxr resampling)."""
    if abs(semitones) < 1e-3:
        return audio
    shifted = _librosa().effects.pitch_shift(
        audio, sr=sample_rate, n_steps=semitones, n_fft=1024, hop_length=256, res_type="soxr_hq"
    )
    return fit_length(shifted.astype(np.float32), audio.shape[-1])


def _librosa():
    """librosa, part of the `train` extra (only training data needs it)."""
    try:
        import librosa
    except ImportError:
        raise ConfigError(
            "pitch and tempo augmentations need librosa: pip install 'vocalsep[train]'"
        ) from None
    return librosa


def change_speed(audio: np.ndarray, factor: float, sample_rate: int) -> np.ndarray:
    """Tape-style speed change (pitch and tempo together) by resampling; length / factor."""
    if abs(factor - 1.0) < 1e-4:
        return audio
    return resample(audio, max(1, round(sample_rate * factor)), sample_rate)


def random_eq(
    audio: np.ndarray, rng: np.random.Generator, sample_rate: int, max_db: float = 9.0
) -> np.ndarray:
    """A smooth random equaliser: gains drawn at log-spaced frequencies, interpolated in
    log-frequency and applied with zero phase. Also a random low-pass or high-pass tilt."""
    if max_db <= 0:
        return audio
    samples = audio.shape[-1]
    spectrum = np.fft.rfft(audio, axis=-1)
    frequencies = np.fft.rfftfreq(samples, 1.0 / sample_rate)
    anchors = np.geomspace(50.0, sample_rate / 2, 8)
    gains_db = rng.uniform(-max_db, max_db, anchors.size)
    if rng.random() < 0.3:  # a telephone / lo-fi band limit now and then
        cutoff = rng.uniform(3000.0, sample_rate / 2)
        gains_db = np.where(anchors > cutoff, gains_db - 24.0, gains_db)
    curve_db = np.interp(np.log(np.maximum(frequencies, 1.0)), np.log(anchors), gains_db)
    filtered = np.fft.irfft(spectrum * 10 ** (curve_db / 20), n=samples, axis=-1)
    return filtered.astype(np.float32)


def reverb(
    audio: np.ndarray,
    rng: np.random.Generator,
    sample_rate: int,
    rt60: tuple[float, float] = (0.2, 1.8),
    wet: tuple[float, float] = (0.05, 0.5),
) -> np.ndarray:
    """Convolve with a synthetic room: exponentially decaying noise (per-channel decorrelated)
    with a random RT60 and pre-delay, mixed with the dry signal. Length is kept."""
    channels, samples = audio.shape
    decay_time = rng.uniform(*rt60)
    ir_length = min(int(decay_time * sample_rate), 4 * sample_rate)
    if ir_length < 2:
        return audio
    t = np.arange(ir_length) / sample_rate
    envelope = np.exp(-6.9 * t / decay_time)  # -60 dB at rt60
    predelay = int(rng.uniform(0.0, 0.03) * sample_rate)
    wet_gain = rng.uniform(*wet)
    out = np.empty_like(audio)
    size = samples + ir_length + predelay
    n_fft = 1 << (size - 1).bit_length()
    for channel in range(channels):
        ir = rng.standard_normal(ir_length) * envelope
        ir = np.concatenate([np.zeros(predelay), ir])
        ir /= np.sqrt(np.sum(ir**2)) + 1e-12
        tail = np.fft.irfft(np.fft.rfft(audio[channel], n_fft) * np.fft.rfft(ir, n_fft), n_fft)[
            :samples
        ]
        out[channel] = (1 - wet_gain) * audio[channel] + wet_gain * tail
    return out.astype(np.float32)


def compressor_gain(
    audio: np.ndarray,
    rng: np.random.Generator,
    sample_rate: int,
    ratio: tuple[float, float] = (2.0, 8.0),
    depth_db: tuple[float, float] = (6.0, 20.0),
) -> np.ndarray:
    """The gain curve `(samples,)` of a feed-forward RMS compressor listening to the channel
    sum of `audio`: the threshold sits `depth_db` below the loudest 10 ms block, levels above
    it are divided by `ratio`, with a 5-30 ms attack and 50-300 ms release."""
    channels, samples = audio.shape
    block = max(1, sample_rate // 100)
    blocks = -(-samples // block)
    padded = np.pad(audio.mean(axis=0), (0, blocks * block - samples))
    level = 10 * np.log10(np.mean(padded.reshape(blocks, block) ** 2, axis=1) + 1e-10)
    threshold = level.max() - rng.uniform(*depth_db)
    slope = 1 - 1 / rng.uniform(*ratio)
    wanted = -np.maximum(level - threshold, 0.0) * slope  # gain in dB per block (<= 0)
    attack = np.exp(-0.01 / rng.uniform(0.005, 0.03))
    release = np.exp(-0.01 / rng.uniform(0.05, 0.3))
    gain = np.empty(blocks)
    current = 0.0
    for index, target in enumerate(wanted):  # ~100 blocks per second: cheap
        coefficient = attack if target < current else release
        current = coefficient * current + (1 - coefficient) * target
        gain[index] = current
    centres = (np.arange(blocks) + 0.5) * block
    return (10 ** (np.interp(np.arange(samples), centres, gain) / 20)).astype(np.float32)


def compress(
    audio: np.ndarray,
    rng: np.random.Generator,
    sample_rate: int,
    ratio: tuple[float, float] = (2.0, 8.0),
    depth_db: tuple[float, float] = (6.0, 20.0),
) -> np.ndarray:
    """`audio` through the compressor of `compressor_gain`; make-up gain restores the input
    RMS."""
    out = audio * compressor_gain(audio, rng, sample_rate, ratio, depth_db)[None]
    return (out * (rms(audio) / rms(out))).astype(np.float32)


def bus_compress(
    sources: list[np.ndarray],
    rng: np.random.Generator,
    sample_rate: int,
    ratio: tuple[float, float] = (2.0, 6.0),
    depth_db: tuple[float, float] = (4.0, 14.0),
) -> list[np.ndarray]:
    """Mix-bus ("mastering") compression: one gain curve, computed from the mixture (the sum
    of `sources`), applied to every source, as a compressor on a finished mix acts on all of
    it. The sources still sum to the compressed mixture, whose RMS is that of the input mix;
    loud passages (drum hits, a full chorus) duck the vocals with them."""
    mixture = np.sum(sources, axis=0)
    curve = compressor_gain(mixture, rng, sample_rate, ratio, depth_db)[None]
    scale = rms(mixture) / max(rms(mixture * curve), 1e-12)
    return [(source * curve * scale).astype(np.float32) for source in sources]


def overdrive(audio: np.ndarray, drive_db: float) -> np.ndarray:
    """Soft clipping (tanh) with `drive_db` of gain over the peak: the harmonics of an
    overdriven preamp or tape. The RMS is kept; silence is returned as it is."""
    peak = float(np.max(np.abs(audio)))
    if peak < 1e-8:
        return audio
    out = np.tanh(audio * (10 ** (drive_db / 20) / peak))
    return (out * (rms(audio) / rms(out))).astype(np.float32)


def saturate(
    audio: np.ndarray, rng: np.random.Generator, drive_db: tuple[float, float] = (0.0, 12.0)
) -> np.ndarray:
    """`overdrive` with a drive uniform in `drive_db` (nothing is drawn for silence)."""
    if float(np.max(np.abs(audio))) < 1e-8:
        return audio
    return overdrive(audio, rng.uniform(*drive_db))


def double(
    audio: np.ndarray,
    rng: np.random.Generator,
    sample_rate: int,
    gain: tuple[float, float] = (0.3, 0.7),
) -> np.ndarray:
    """A doubled take: a copy 10-40 ms late, slightly detuned (up to 15 cents) and quieter,
    added to the original; on stereo it sits on the other side. Length is kept."""
    detuned = change_speed(audio, 2 ** (rng.uniform(-15, 15) / 1200), sample_rate)
    copy = _late_on_other_side(detuned, int(rng.uniform(0.01, 0.04) * sample_rate), audio)
    return (audio + rng.uniform(*gain) * copy).astype(np.float32)


def _late_on_other_side(copy: np.ndarray, delay: int, original: np.ndarray) -> np.ndarray:
    """`copy` `delay` samples late, cut to the length of `original`, channels swapped on
    stereo (the second voice of `double` sits opposite the first)."""
    copy = fit_length(np.pad(copy, ((0, 0), (delay, 0))), original.shape[-1])
    return copy[::-1] if original.shape[0] == 2 else copy


def to_channels(
    audio: np.ndarray, channels: int, rng: np.random.Generator, max_pan: float = 0.5
) -> np.ndarray:
    """Place `audio` on `channels` channels: a mono source is panned with a constant-power law
    (pan in [-max_pan, max_pan]); stereo is kept (channels randomly swapped) or downmixed."""
    if channels == 1:
        return audio.mean(axis=0, keepdims=True) if audio.shape[0] > 1 else audio
    if audio.shape[0] == 1:
        pan = rng.uniform(-max_pan, max_pan)
        angle = (pan + 1) * np.pi / 4
        gains = np.array([np.cos(angle), np.sin(angle)], dtype=np.float32) * np.sqrt(2)
        placed = gains[:, None] * audio
        return np.resize(placed, (channels, audio.shape[-1])) if channels > 2 else placed
    placed = (
        audio[:channels]
        if audio.shape[0] >= channels
        else np.resize(audio, (channels, audio.shape[-1]))
    )
    if rng.random() < 0.5:
        placed = placed[::-1]
    return np.ascontiguousarray(placed)


def rms(audio: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)) + 1e-12))


def fit_length(audio: np.ndarray, length: int) -> np.ndarray:
    """Cut `(channels, n)` to `length` samples or zero-pad it at the end (float32)."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.shape[-1] >= length:
        return audio[..., :length]
    return np.pad(audio, ((0, 0), (0, length - audio.shape[-1])))
