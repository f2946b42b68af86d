"""Every registered architecture side by side: size, compute and CPU speed (issue 26).

    python benchmarks/architectures.py [--out benchmarks/architectures.md] [--repeats 3]

For each architecture at its default widths (`vocalsep.core.networks.network_config` with only
the channels set):
- parameters;
- multiply-adds of the network for one second of a 44.1 kHz song, in the shape of the shipped
  separation model (the song at 16 kHz, 1024-point STFT with hop 256, 512 bins, stereo in and
  out: 62.5 frames x 512 bins x 2 channels per second; a 1-D waveform network gets the 44,100
  stereo samples themselves), and for one 480x360 RGB image with 11 class logits (CamVid; not
  for 1-D networks);
- CPU time of the network for that second of audio and for that image (median of `--repeats`
  runs after a warm-up, in eval mode, on the threads torch uses by default).

Quality at an equal training budget is the other half of the issue's table and is not measured
here yet: the table says so in its header. Multiply-adds come from torch's FLOP counter
(`torch.utils.flop_counter`, FLOPs / 2), which counts convolutions and matrix products.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from vocalsep.core.networks import architecture_names, build_network, network_config

AUDIO = {"in_channels": 2, "out_channels": 2, "dims": 2}
AUDIO_INPUT = (1, 2, 512, 64)  # about one second of the shipped model's band (62.5 frames)
IMAGE = {"in_channels": 3, "out_channels": 11, "dims": 2}
IMAGE_INPUT = (1, 3, 360, 480)


def multiply_adds(network: torch.nn.Module, shape: tuple[int, ...]) -> float:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        network(torch.randn(shape))
    return counter.get_total_flops() / 2


def seconds(network: torch.nn.Module, shape: tuple[int, ...], repeats: int) -> float:
    inputs = torch.randn(shape)
    with torch.no_grad():
        network(inputs)  # warm-up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            network(inputs)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(name: str, repeats: int) -> dict[str, float]:
    torch.manual_seed(0)
    if network_config(name, {}).dims == 1:  # a waveform network: one second of 44.1 kHz samples
        fields, shape, covered = {"in_channels": 2, "out_channels": 2}, (1, 2, 44100), 1.0
    else:
        fields, shape, covered = dict(AUDIO), AUDIO_INPUT, AUDIO_INPUT[-1] / 62.5
    audio = build_network(name, network_config(name, fields)).eval()
    row = {
        "params_m": sum(p.numel() for p in audio.parameters()) / 1e6,
        "audio_gmacs": multiply_adds(audio, shape) / covered / 1e9,
        "audio_ms": 1000 * seconds(audio, shape, repeats) / covered,
        "image_gmacs": float("nan"),
        "image_ms": float("nan"),
    }
    if network_config(name, {}).dims == 2:
        image = build_network(name, network_config(name, dict(IMAGE))).eval()
        row["image_gmacs"] = multiply_adds(image, IMAGE_INPUT) / 1e9
        row["image_ms"] = 1000 * seconds(image, IMAGE_INPUT, repeats)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="also write the table as markdown here")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = [(name, measure(name, args.repeats)) for name in architecture_names()]
    header = (
        "| architecture | params (M, audio shape) | GMACs per s of audio | ms per s of audio "
        "| GMACs per 480x360 image | ms per image |"
    )
    lines = [header, "|---|---:|---:|---:|---:|---:|"]
    for name, row in rows:
        lines.append(
            f"| {name} | {row['params_m']:.2f} | {row['audio_gmacs']:.2f} | "
            f"{row['audio_ms']:.1f} | {row['image_gmacs']:.1f} | {row['image_ms']:.0f} |".replace(
                "nan", "-"
            )
        )
    table = "\n".join(lines)
    print(table)
    if args.out:
        machine = f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}"
        text = (
            "# Architectures side by side\n\n"
            f"Written by `python benchmarks/architectures.py --out {args.out}` on "
            f"{datetime.date.today()} ({machine}); defaults of each architecture, untrained "
            "networks (size, compute and speed do not depend on the weights).\n\n"
            "**Not measured yet:** quality at an equal CPU-time training budget (audio: dev "
            "medians; images: CamVid val G / C / mIoU), which the [Seed architectures] issue "
            "asks for; only the columns below are measured.\n\n" + table + "\n"
        )
        Path(args.out).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
