"""Toy source recordings for the `recipes/tiny` smoke-test recipe and the tests.

"Vocals" are sung-like notes (harmonic, vibrato, glides, syllable envelopes, a formant bump);
"accompaniment" is sustained chords, a bass line and noise/kick percussion. Both are written as
files in the layout the synthesized-mixture dataset reads (`vocals/<singer>/*.wav`,
`accompaniment/<track>.wav`), so the recipe exercises the real decode -> cache -> mix path.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .writer import write_audio


def _note(rng: np.random.Generator, sample_rate: int, seconds: float, f0: float) -> np.ndarray:
    n = max(1, int(seconds * sample_rate))
    t = np.arange(n) / sample_rate
    glide = f0 * 2 ** (rng.uniform(-0.5, 0.5) * np.minimum(t / 0.1, 1) / 12)
    vibrato = 1 + 0.01 * np.sin(2 * np.pi * rng.uniform(4.5, 6.5) * t)
    phase = 2 * np.pi * np.cumsum(glide * vibrato) / sample_rate
    formant = rng.uniform(500, 1200)
    voice = np.zeros(n)
    for harmonic in range(1, 12):
        frequency = f0 * harmonic
        if frequency > sample_rate / 2 - 200:
            break
        weight = 1 / harmonic + np.exp(-(((frequency - formant) / 300) ** 2))
        voice += weight * np.sin(harmonic * phase)
    attack = np.minimum(t / 0.04, 1) * np.minimum((t[-1] - t) / 0.06 + 1e-3, 1)
    return voice * attack


def toy_vocals(
    rng: np.random.Generator, sample_rate: int, seconds: float, low: float
) -> np.ndarray:
    """Mono sung-like phrase `(1, samples)`: notes in one singer's range with short rests."""
    pieces, total = [], 0.0
    while total < seconds:
        duration = rng.uniform(0.2, 0.7)
        if rng.random() < 0.15:
            pieces.append(np.zeros(int(duration * sample_rate)))
        else:
            f0 = low * 2 ** (rng.integers(0, 12) / 12)
            pieces.append(_note(rng, sample_rate, duration, f0))
        total += duration
    voice = np.concatenate(pieces)[: int(seconds * sample_rate)]
    return (0.3 * voice / (np.abs(voice).max() + 1e-9))[None].astype(np.float32)


def toy_accompaniment(rng: np.random.Generator, sample_rate: int, seconds: float) -> np.ndarray:
    """Stereo band-like loop `(2, samples)`: chords, bass and percussion on a beat."""
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    beat = rng.uniform(0.3, 0.6)
    root = 110 * 2 ** (rng.integers(0, 12) / 12)
    chord = sum(
        np.sign(np.sin(2 * np.pi * root * 2 ** (step / 12) * 2 * t)) * 0.3
        + np.sin(2 * np.pi * root * 2 ** (step / 12) * 4 * t)
        for step in (0, 4, 7)
    )
    bass = np.sin(2 * np.pi * root / 2 * t) * (0.6 + 0.4 * np.cos(2 * np.pi * t / beat))
    since_beat = t % beat
    kick = np.sin(2 * np.pi * 60 * t) * np.exp(-since_beat / 0.05)
    hats = rng.standard_normal(n) * np.exp(-((t + beat / 2) % beat) / 0.02)
    left = 0.2 * chord + 0.5 * bass + 0.6 * kick + 0.15 * hats
    right = 0.25 * chord + 0.5 * bass + 0.6 * kick + 0.1 * np.roll(hats, 40)
    music = np.stack([left, right])
    return (0.4 * music / (np.abs(music).max() + 1e-9)).astype(np.float32)


def write_toy_sources(
    folder: str | Path,
    *,
    sample_rate: int = 8000,
    singers: int = 6,
    tracks: int = 8,
    seconds: float = 16.0,
    seed: int = 0,
) -> Path:
    """Write `folder/vocals/singer<k>/phrase<j>.wav` and `folder/accompaniment/track<k>.wav`."""
    folder = Path(folder)
    rng = np.random.default_rng(seed)
    for singer in range(singers):
        for phrase in range(3):  # every singer covers the whole range, as real singers overlap
            low = 110 * 2 ** rng.uniform(0, 1.2)
            audio = toy_vocals(rng, sample_rate, seconds / 2, low)
            path = folder / "vocals" / f"singer{singer}" / f"phrase{phrase}.wav"
            write_audio(path, audio, sample_rate, "wav", "16", overwrite=True)
    for track in range(tracks):
        audio = toy_accompaniment(rng, sample_rate, seconds)
        path = folder / "accompaniment" / f"track{track}.wav"
        write_audio(path, audio, sample_rate, "wav", "16", overwrite=True)
    return folder
