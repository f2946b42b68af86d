"""Test helpers: tiny models and synthesized audio (sines, chirps, noise). No real data."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import soundfile as sf
import torch

from vocalsep.audio.models import (
    SpectrogramMaskModel,
    SpectrogramModelConfig,
    WaveformModel,
    WaveformModelConfig,
)
from vocalsep.audio.stft import STFTConfig
from vocalsep.core.unet import EncoderDecoderConfig, preset


def make_model(
    *,
    sample_rate: int = 16000,
    n_fft: int = 256,
    hop_length: int = 64,
    channels: tuple[int, ...] = (4, 8),
    kernel_size: int = 5,
    audio_channels: int = 1,
    targets: tuple[str, ...] = ("vocals",),
    seed: int = 0,
    **options,
) -> SpectrogramMaskModel:
    """A tiny, randomly initialised (but deterministic) spectrogram masking model."""
    torch.manual_seed(seed)
    config = SpectrogramModelConfig(
        sample_rate=sample_rate,
        stft=STFTConfig(n_fft=n_fft, hop_length=hop_length),
        targets=targets,
        audio_channels=audio_channels,
        **options,
    )
    in_channels, out_channels = config.network_channels
    network = EncoderDecoderConfig(
        dims=2,
        in_channels=in_channels,
        out_channels=out_channels,
        channels=channels,
        kernel_size=kernel_size,
        decoder_dropout=(0.5,),
    )
    return randomise_norm_statistics(SpectrogramMaskModel(config, "unet", network))


@torch.no_grad()
def randomise_norm_statistics(model: torch.nn.Module) -> torch.nn.Module:
    """Random, non-trivial BatchNorm statistics so that eval mode is not the identity; returns
    the model in eval mode."""
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return model.eval()


# Fully convolutional with a receptive field of a few frames (3x3 kernels, one level), covered
# by a frame context of 4, and frame tiles that step by 32 (a multiple of the net's stride):
# chunked separation then gives exactly the one-pass result.
LOCAL_MODEL = dict(channels=(6,), kernel_size=3, tile_frames=40, tile_overlap=8, tile_context=4)


def assert_chunks_give_one_pass(
    model, mixture: np.ndarray, rate: int, chunk_seconds: float, overlap_seconds: float, tiles: int
) -> dict[str, np.ndarray]:
    """Separate `mixture` with `model` in one pass and in chunks of `chunk_seconds` (at least
    `tiles` of them); the stems must agree to 1e-4. Returns the one-pass stems."""
    from vocalsep.audio.separator import Separator

    whole = Separator(model, chunk_seconds=100.0).separate(mixture, rate)
    chunked = Separator(model, chunk_seconds=chunk_seconds, overlap_seconds=overlap_seconds)
    assert chunked._chunk_plan(rate).num_tiles(mixture.shape[-1]) >= tiles  # really chunked
    stems = chunked.separate(mixture, rate)
    for stem in whole:
        assert np.abs(whole[stem] - stems[stem]).max() < 1e-4
    return whole


def synth(sample_rate: int, samples: int, channels: int = 2, seed: int = 0) -> np.ndarray:
    """A 'song': a sung-like vibrato tone, a chirp and a little noise, `(channels, samples)`."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / sample_rate
    voice = 0.3 * np.sin(2 * np.pi * (440 * t + 3 * np.sin(2 * np.pi * 5 * t)))
    chirp = 0.2 * np.sin(2 * np.pi * (100 * t + 400 * t**2))
    audio = []
    for channel in range(channels):
        pan = 0.5 + 0.4 * (channel % 2)
        audio.append(pan * voice + (1 - pan) * chirp + 0.01 * rng.standard_normal(samples))
    return np.asarray(audio, dtype=np.float32)


def write_wav(path: Path, audio: np.ndarray, sample_rate: int, subtype: str = "FLOAT") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio.T, sample_rate, subtype=subtype)
    return path


def call(capsys, *args) -> tuple[int, str, list[str]]:
    """The command line's `main()` in-process (fast): (exit code, stdout, non-empty stderr
    lines)."""
    from vocalsep.cli import main

    code = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return code, captured.out, [line for line in captured.err.splitlines() if line.strip()]


def files_under(folder: Path) -> list[str]:
    """Every file below `folder`, as sorted relative paths."""
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*") if p.is_file())


def digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def synth_stems(
    sample_rate: int, samples: int, channels: int = 1, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """A (vocals, accompaniment) pair of `(channels, samples)` float32: a vibrato tone whose
    pitch depends on `seed`, and a chirp with a little noise. Neither is silent anywhere."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / sample_rate
    pitch = 300 + 40 * seed
    voice = 0.3 * np.sin(2 * np.pi * (pitch * t + 3 * np.sin(2 * np.pi * 5 * t)))
    voice *= 0.6 + 0.4 * np.sin(2 * np.pi * 1.5 * t) ** 2  # syllable-like swell
    chirp = 0.2 * np.sin(2 * np.pi * (80 * t + 300 * t**2))
    vocals, accompaniment = [], []
    for channel in range(channels):
        pan = 0.6 + 0.3 * (channel % 2)
        vocals.append(pan * voice)
        accompaniment.append((1.2 - pan) * chirp + 0.02 * rng.standard_normal(samples))
    return np.asarray(vocals, np.float32), np.asarray(accompaniment, np.float32)


def write_track(
    folder: Path,
    vocals: np.ndarray,
    accompaniment: np.ndarray,
    sample_rate: int,
    *,
    mixture: bool = True,
    ext: str = "wav",
) -> Path:
    """A paired track folder: {mixture,vocals,accompaniment}.<ext> (float WAV keeps samples)."""
    subtype = "FLOAT" if ext == "wav" else "PCM_16"
    write_wav(folder / f"vocals.{ext}", vocals, sample_rate, subtype)
    write_wav(folder / f"accompaniment.{ext}", accompaniment, sample_rate, subtype)
    if mixture:
        write_wav(folder / f"mixture.{ext}", vocals + accompaniment, sample_rate, subtype)
    return folder


def make_musdb_hq(root, names=("Artist - One", "Artist - Two"), seconds=1.0):
    """A tiny MUSDB18-HQ layout: root/test/<track>/{mixture,vocals,drums,bass,other}.wav."""
    rate = 44100
    samples = int(seconds * rate)
    for seed, name in enumerate(names):
        vocals, accompaniment = synth_stems(rate, samples, channels=2, seed=seed)
        stems = {"vocals": vocals, "drums": 0.5 * accompaniment, "bass": 0.3 * accompaniment}
        stems["other"] = 0.2 * accompaniment
        stems["mixture"] = sum(stems.values())
        for stem, value in stems.items():
            write_wav(root / "test" / name / f"{stem}.wav", value, rate, "PCM_16")
    return root


def make_musdb_stems(root, names=("Artist - One", "Artist - Two"), seconds=1.0):
    """A tiny MUSDB18 layout as distributed: root/test/<track>.stem.mp4, five AAC streams in
    the stems order (mixture, drums, bass, other, vocals), encoded with ffmpeg from the wav
    stems of `make_musdb_hq` (which it writes to root/wav and returns as the second value)."""
    import subprocess

    wav = make_musdb_hq(Path(root) / "wav", names, seconds)
    (Path(root) / "test").mkdir(parents=True, exist_ok=True)
    for name in names:
        order = ["mixture", "drums", "bass", "other", "vocals"]
        command = ["ffmpeg", "-v", "error", "-y"]
        for stem in order:
            command += ["-i", str(wav / "test" / name / f"{stem}.wav")]
        for index in range(len(order)):
            command += ["-map", str(index)]
        command += ["-c:a", "aac", "-b:a", "256k", str(Path(root) / "test" / f"{name}.stem.mp4")]
        subprocess.run(command, check=True, capture_output=True)
    return Path(root), wav


def write_musdb_wav(root, names, rate=44100, seconds=2.0):
    """A MUSDB18-HQ-shaped folder (decoded-wav layout) of synthesized stems."""
    for index, name in enumerate(names):
        folder = root / "train" / name
        folder.mkdir(parents=True)
        stems = {
            stem: synth(rate, int(seconds * rate), 2, seed=10 * index + k) * 0.5
            for k, stem in enumerate(["vocals", "drums", "bass", "other"])
        }
        for stem, audio in stems.items():
            sf.write(folder / f"{stem}.wav", audio.T, rate, subtype="PCM_16")
        sf.write(folder / "mixture.wav", sum(stems.values()).T, rate, subtype="PCM_16")
    return root


# musdb's own validation split names this track (musdb/configs/mus.yaml); the others train.
MUSDB_VALID = ["Actions - One Minute Smile"]
MUSDB_TRAIN = ["A Classic Education - NightOwl", "ANiMAL - Clinic A"]


def write_damaged_mp3(path: Path, audio: np.ndarray, sample_rate: int) -> Path:
    """`audio` `(channels, samples)` as an MP3 that still decodes, with 12 runs of 30 random
    bytes written over its middle third (damaged frames the decoder skips with messages).
    Skips the calling test where libsndfile cannot write MP3."""
    import pytest

    if "MP3" not in sf.available_formats():
        pytest.skip("this libsndfile cannot write MP3")
    path = Path(path)
    sf.write(path, audio.T, sample_rate, format="MP3")
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(0)
    for position in rng.integers(len(data) // 3, 2 * len(data) // 3, 12):
        data[position : position + 30] = rng.integers(0, 256, 30, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    return path


def make_waveform_model(
    *, audio_channels: int = 2, output: str = "difference", seed: int = 0, **options
) -> WaveformModel:
    """A tiny, randomly initialised Wave-U-Net at 16 kHz: 4 levels (shift 16 samples), a
    receptive field of 262 samples; tiles of 1000 samples so that seconds of audio span many."""
    torch.manual_seed(seed)
    config = WaveformModelConfig(
        sample_rate=16000,
        audio_channels=audio_channels,
        output=output,
        **{"tile_samples": 1000, "tile_overlap": 40, **options},
    )
    network = preset(
        "waveunet",
        in_channels=audio_channels,
        out_channels=config.network_channels[1],
        channels=(4, 8, 12, 16),
        bottleneck_channels=20,
    )
    model = WaveformModel(config, "unet", network)
    with torch.no_grad():  # away from linear interpolation, so that the learned weights matter
        for module in model.network.upsamplers:
            module.logits.uniform_(-2, 2)
    return model.eval()


def load_benchmark(name: str) -> ModuleType:
    """The script `benchmarks/<name>.py` as a module (the folder is not a package)."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"{name}_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
