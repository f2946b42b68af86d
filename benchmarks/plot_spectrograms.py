"""Spectrogram picture of a separation: mixture / vocals / accompaniment, one PNG.

    python benchmarks/plot_spectrograms.py SONG --model NAME|PATH --out spectrograms.png
        [--seconds 20] [--start 0] [--wiener N] [--reference-dir DIR]

Separates the excerpt with the model and writes three (or, with `--reference-dir` holding
`vocals.*` and `accompaniment.*`, five) stacked panels, top to bottom: mixture, estimated
vocals, estimated accompaniment[, reference vocals, reference accompaniment]. Each panel is a
log-magnitude STFT (2048/512, 80 dB range, 0 Hz at the bottom, the full band up to Nyquist),
time running left to right. No plotting library is needed: the PNG is written directly.
"""

from __future__ import annotations

import argparse
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from vocalsep import api
from vocalsep.audio.io import load_audio
from vocalsep.audio.stft import STFT, STFTConfig

_STFT = STFT(STFTConfig(n_fft=2048, hop_length=512))
# A perceptually ordered dark-to-bright colour map (black, purple, red, orange, light yellow).
_ANCHORS = np.array(
    [[0, 0, 4], [59, 15, 112], [140, 41, 129], [222, 73, 104], [254, 159, 109], [252, 253, 191]],
    dtype=np.float64,
)


def colour(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] -> uint8 RGB."""
    positions = np.clip(values, 0, 1) * (len(_ANCHORS) - 1)
    low = np.floor(positions).astype(int).clip(0, len(_ANCHORS) - 2)
    weight = (positions - low)[..., None]
    return ((1 - weight) * _ANCHORS[low] + weight * _ANCHORS[low + 1]).astype(np.uint8)


def panel(audio: np.ndarray, reference_db: float, height: int) -> np.ndarray:
    """`(channels, samples)` -> RGB image `(height, frames, 3)` of the channel-mean magnitude."""
    magnitude = _STFT(torch.from_numpy(audio.mean(axis=0))).abs().numpy()
    db = 20 * np.log10(magnitude + 1e-9)
    image = (db - (reference_db - 80)) / 80
    rows = np.linspace(0, image.shape[0] - 1, height).round().astype(int)
    return colour(image[rows][::-1])  # low frequencies at the bottom


def write_png(path: Path, rgb: np.ndarray) -> None:
    height, width, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[row].tobytes() for row in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9))
    path.write_bytes(png + chunk(b"IEND", b""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("song")
    parser.add_argument("--model", default=None)
    parser.add_argument("--out", default="spectrograms.png")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--start", type=float, default=0.0)
    parser.add_argument("--wiener", type=int, default=0)
    parser.add_argument("--reference-dir", default=None)
    parser.add_argument("--height", type=int, default=256, help="pixels per panel")
    args = parser.parse_args()

    audio, rate = load_audio(args.song)
    start, stop = int(args.start * rate), int((args.start + args.seconds) * rate)
    if start >= audio.shape[-1]:
        duration = audio.shape[-1] / rate
        raise SystemExit(
            f"--start {args.start} s is past the end of {args.song} ({duration:.1f} s)"
        )
    audio = audio[:, start:stop]
    separator = api.load_separator(args.model, device="cpu", wiener_iterations=args.wiener)
    stems = separator.separate(audio, rate)
    rows = [("mixture", audio), ("vocals", stems["vocals"])]
    rows.append(("accompaniment", stems["accompaniment"]))
    if args.reference_dir:
        for name in ("vocals", "accompaniment"):
            path = next(Path(args.reference_dir).glob(f"{name}.*"))
            reference, reference_rate = load_audio(path)
            assert reference_rate == rate, "reference must have the song's sample rate"
            rows.append((f"reference {name}", reference[:, start:stop]))
    peak = 20 * np.log10(_STFT(torch.from_numpy(audio.mean(0))).abs().max().item() + 1e-9)
    gap = np.full((4, 1, 3), 255, np.uint8)
    panels = []
    for _, signal in rows:
        image = panel(signal, peak, args.height)
        panels += [image, np.repeat(gap, image.shape[1], axis=1)]
    write_png(Path(args.out), np.concatenate(panels[:-1], axis=0))
    print(f"wrote {args.out}: panels top to bottom: {', '.join(name for name, _ in rows)}")
    print(f"{audio.shape[-1] / rate:.1f} s at {rate} Hz, 0-{rate // 2} Hz bottom to top")


if __name__ == "__main__":
    main()
