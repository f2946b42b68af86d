"""Start a full-band spectrogram model from a trained narrow-band one on the same grid.

    python recipes/synthetic/fullband.py vocalsep-small runs/fullband-init.ckpt
    vocalsep train recipes/synthetic/fullband.toml --out runs/fullband

vocalsep-small works at 16 kHz with a 1024-point STFT and hop 256: bins of 15.6 Hz, frames of
16 ms, and the network sees 0-8 kHz (512 bins). At 32 kHz a 2048-point STFT with hop 512 has
exactly that grid (bin k is the same frequency, frame t the same time), and 1024 bins reach
16 kHz. A U-Net is convolutional over frequency, so the trained network runs unchanged on the
taller input: only its per-bin input normalisation (`input_offset`, `input_scale`) has one
entry per bin and must grow. The STFT is not normalised: twice the FFT length at twice the
rate gives twice the magnitudes, so the new model multiplies its magnitudes by 1 / factor
(`magnitude_gain`) and the old bins keep their normalisation: their input is the old one, to
the resampler's and the window's precision.

The new bins get a normalisation such that the network's input there has, bin by bin, the
statistics (mean and standard deviation over frames) of the old band's top eighth on the same
audio (the new band starts out looking like the highest band the network knows). The
statistics come from `--pairs` sums of a vocal and an accompaniment recording from the training
pools (the dev set is never read). Everything else (weights, targets, channels, compression,
tiling) is copied; the training state is dropped.

`--band-split` keeps the network's height instead: the old band and the new one above it are
stacked as channels (`band_split`), the first layer reads the low half with the old weights and
starts blind to the high half, and the output layer writes both halves' masks with the old
weights; the low half's masks are then the old model's.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from vocalsep.audio.io import load_audio, resample
from vocalsep.audio.modelconfig import TASK, SpectrogramModelConfig
from vocalsep.audio.models import SpectrogramMaskModel
from vocalsep.audio.pools import audio_files
from vocalsep.audio.stft import STFT, STFTConfig
from vocalsep.core.checkpoint import load_checkpoint, save_checkpoint
from vocalsep.core.errors import ConfigError, VocalsepError
from vocalsep.pretrained import resolve

DATA = Path("../shared/data/audio")


def features(audio: np.ndarray, rate: int, config: SpectrogramModelConfig, bins: int) -> np.ndarray:
    """The network's compressed input before normalisation, `(bins, frames)`: `audio` (mono,
    at `rate`) resampled to the model's rate, its STFT magnitude's first `bins` bins."""
    if config.compression != "log1p":
        raise ConfigError(f"only log1p compression is supported, got {config.compression!r}")
    signal = resample(audio, rate, config.sample_rate)
    magnitude = np.abs(STFT(config.stft)(signal))[:bins]
    return np.log1p(magnitude * config.magnitude_gain)


def statistics(
    clips: list[tuple[np.ndarray, int]], config: SpectrogramModelConfig, bins: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-bin mean and standard deviation of `features` over all frames of `clips`."""
    stacked = np.concatenate([features(a, r, config, bins) for a, r in clips], axis=1)
    return stacked.mean(axis=1), stacked.std(axis=1)


def matched_normalisation(
    old_offset: np.ndarray,
    old_scale: np.ndarray,
    old_stats: tuple[np.ndarray, np.ndarray],
    new_stats: tuple[np.ndarray, np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """`(offset, scale)` for the new bins such that `(x - offset) * scale` has, per bin, the mean
    and spread that `(x_old - old_offset) * old_scale` had: bin k takes old bin k below the old
    band's top and the mean over the old band's top eighth above it.

    old_offset, old_scale: `(old_bins,)`; old_stats, new_stats: per-bin (mean, std) of the
    unnormalised inputs, `(old_bins,)` and `(new_bins,)`."""
    old_mean, old_std = old_stats
    new_mean, new_std = new_stats
    old_bins, new_bins = len(old_offset), len(new_mean)
    if new_bins < old_bins:
        raise ConfigError(f"the new band ({new_bins} bins) is narrower than the old ({old_bins})")
    # What the trained network saw: mean and spread of its normalised input, per old bin.
    target_mean = (old_mean - old_offset) * old_scale
    target_std = old_std * np.abs(old_scale)
    top = max(1, old_bins // 8)
    sign = np.sign(old_scale)
    sign[sign == 0] = 1.0

    def extend(values: np.ndarray) -> np.ndarray:
        return np.concatenate([values, np.full(new_bins - old_bins, values[-top:].mean())])

    target_mean, target_std = extend(target_mean), extend(target_std)
    sign = np.concatenate([sign, np.full(new_bins - old_bins, np.sign(sign[-top:].sum()) or 1)])
    scale = sign * target_std / np.maximum(new_std, 1e-6)
    offset = new_mean - target_mean / scale
    return offset, scale


def split_network(
    state: dict[str, torch.Tensor], audio_channels: int, targets: int, split: int, depth: int
) -> dict[str, torch.Tensor]:
    """The weights of a U-Net (keys `network.encoder.0.0.weight`, ...) that reads `split`
    sub-bands stacked as channels (channel c * split + s) where it read one band: its first
    layer reads the lowest sub-band as it read the band and starts blind to the others (zero
    weights), and its output layer writes every sub-band's masks as it wrote the band's (so the
    network computes, on the lowest sub-band, exactly what it computed on the old band)."""
    state = dict(state)
    first = state["network.encoder.0.0.weight"]  # (out, in, ...)
    if first.shape[1] != audio_channels:
        raise ConfigError(f"the first layer reads {first.shape[1]} channels, not {audio_channels}")
    wider = first.new_zeros(first.shape[0], audio_channels * split, *first.shape[2:])
    wider[:, ::split] = first
    state["network.encoder.0.0.weight"] = wider
    last = f"network.decoder.{depth - 1}"
    outputs = targets * audio_channels
    weight = state[f"{last}.weight"]  # transposed conv: (in, out, ...)
    if weight.shape[1] != outputs:
        raise ConfigError(f"the output layer writes {weight.shape[1]} channels, not {outputs}")
    state[f"{last}.weight"] = weight.repeat_interleave(split, dim=1)
    if f"{last}.bias" in state:
        state[f"{last}.bias"] = state[f"{last}.bias"].repeat_interleave(split)
    return state


def training_clips(
    data: Path, pairs: int, seconds: float, seed: int
) -> list[tuple[np.ndarray, int]]:
    """`pairs` mono sums of a vocal and an accompaniment excerpt from the training pools under
    `data` (its `vocals/` and `accompaniment/`), at the vocal's rate (the accompaniment is
    resampled to it)."""
    vocals = audio_files(data / "vocals")
    accompaniment = audio_files(data / "accompaniment")
    rng = np.random.default_rng(seed)
    clips = []
    for _ in range(pairs):
        voice, voice_rate = load_audio(vocals[rng.integers(len(vocals))])
        music, music_rate = load_audio(accompaniment[rng.integers(len(accompaniment))])
        voice = voice.mean(0)
        music = resample(music.mean(0), music_rate, voice_rate)
        length = min(len(voice), len(music), int(seconds * voice_rate))
        start_v = rng.integers(0, len(voice) - length + 1)
        start_m = rng.integers(0, len(music) - length + 1)
        clips.append(
            (voice[start_v : start_v + length] + music[start_m : start_m + length], voice_rate)
        )
    return clips


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a narrow-band checkpoint or shipped model name")
    parser.add_argument("out")
    parser.add_argument("--factor", type=int, default=2, help="rate and FFT multiplier")
    parser.add_argument("--mask-extension", default="zeros", help="the mask above the new band")
    parser.add_argument(
        "--band-split",
        action="store_true",
        help="stack the old band and the new one above it as channels (the network keeps its "
        "height and reads twice the channels) instead of running it on a taller input",
    )
    parser.add_argument("--data", type=Path, default=DATA, help="holds vocals/, accompaniment/")
    parser.add_argument("--pairs", type=int, default=24)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        source = resolve(args.checkpoint, TASK)
        checkpoint = load_checkpoint(source, task=TASK)
        trained = SpectrogramMaskModel.from_checkpoint(checkpoint, source)
        old = trained.config
        stft = STFTConfig(
            n_fft=old.stft.n_fft * args.factor, hop_length=old.stft.hop_length * args.factor
        )
        new = replace(
            old,
            sample_rate=old.sample_rate * args.factor,
            stft=stft,
            max_bin=old.band_bins * args.factor,
            mask_extension=args.mask_extension,
            band_split=args.factor if args.band_split else 1,
            magnitude_gain=old.magnitude_gain / args.factor,
        )
        clips = training_clips(args.data, args.pairs, args.seconds, args.seed)
        state = trained.state_dict()
        old_offset = state["input_offset"].numpy()[:, 0].astype(np.float64)
        old_scale = state["input_scale"].numpy()[:, 0].astype(np.float64)
        offset, scale = matched_normalisation(
            old_offset,
            old_scale,
            statistics(clips, old, old.band_bins),
            statistics(clips, new, new.band_bins),
        )
        # The old bins keep their normalisation: with the magnitude gain their input is the
        # same (to the resampler's and the window's precision); only the new bins are matched.
        offset[: old.band_bins], scale[: old.band_bins] = old_offset, old_scale
    except (VocalsepError, OSError) as error:
        print(f"fullband.py: error: {error}", file=sys.stderr)
        return 1
    state["input_offset"] = torch.from_numpy(offset[:, None].astype(np.float32))
    state["input_scale"] = torch.from_numpy(scale[:, None].astype(np.float32))
    network = trained.network_config
    if new.band_split > 1:
        if trained.architecture != "unet" or old.band_split != 1:
            print("fullband.py: error: --band-split needs a one-band U-Net", file=sys.stderr)
            return 1
        state = split_network(
            state, old.audio_channels, len(old.targets), new.band_split, len(network.channels)
        )
        inputs, outputs = new.network_channels
        network = replace(network, in_channels=inputs, out_channels=outputs)
    model = SpectrogramMaskModel(new, trained.architecture, network)
    model.load_state_dict(state)
    metadata = {
        **checkpoint.metadata,
        "fullband_from": str(args.checkpoint),
        "fullband": {
            "factor": args.factor,
            "band_split": new.band_split,
            "pairs": args.pairs,
            "seed": args.seed,
        },
    }
    path = save_checkpoint(model.to_checkpoint(metadata), args.out)
    print(
        f"wrote {path}: {new.sample_rate} Hz, STFT {stft.n_fft}/{stft.hop_length}, "
        f"{new.band_bins} bins (0-{new.band_bins * new.sample_rate / stft.n_fft / 1000:.1f} kHz)"
        + (f" in {new.band_split} sub-bands as channels" if new.band_split > 1 else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
