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

Quality at an equal training budget comes from `recipes/architectures/compare.py`, which trains
every architecture for the same CPU time and writes `recipes/architectures/results/*.json`;
this script turns those files into tables (audio: dev medians; images: CamVid val G / C /
mIoU; the dense CRF with and without), with the command of every row.

Multiply-adds come from torch's FLOP counter (`torch.utils.flop_counter`, FLOPs / 2), which
counts convolutions and matrix products.
"""

from __future__ import annotations

import argparse
import datetime
import json
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


RESULTS = Path(__file__).resolve().parent.parent / "recipes" / "architectures" / "results"
LESSONS = "## What the tables teach"


def _cell(value, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _width(row: dict) -> str:
    factor = row.get("width", {}).get("factor", "")
    return f"x{factor}" if isinstance(factor, (int, float)) else str(factor or "recipe")


def _speed_rule(row: dict) -> str:
    """The real-time factor of the untrained model that chose the width, and how it was timed."""
    width = row.get("width", {})
    if "real_time" not in width:
        return "-"
    how = {"in-process": "30 s in process", "end-to-end": "3 min end to end"}
    return f"{width['real_time']:.1f} ({how.get(width.get('criterion'), '?')})"


def audio_table(rows: dict) -> list[str]:
    lines = [
        "| architecture | width | params (M) | x real time that chose the width (untrained) "
        "| x real time, 3-min song end to end | CPU s per step | steps | CPU-min used "
        "| val SDR (dB) | dev vocals SDR | dev accomp. SDR |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    ranked = sorted(rows.values(), key=lambda r: -r["dev"]["vocals_sdr"])
    for row in ranked:
        name = row["architecture"]
        lines.append(
            f"| {name} | {_width(row)} | {row['params_m']:.2f} | {_speed_rule(row)} "
            f"| {_cell(row.get('real_time_180s'), 1)} | {row['step_cpu_s']:.2f} "
            f"| {row['steps']} | {_used(row)} | {row['validation']['sdr']:.2f} "
            f"| {row['dev']['vocals_sdr']:.2f} | {row['dev']['accompaniment_sdr']:.2f} |"
        )
    return lines


def _used(row: dict) -> str:
    """CPU-minutes the run used; "~" where it was estimated from the calibration (runs before
    a log record was written every step, too short to measure)."""
    return ("~" if row.get("cpu_estimated") else "") + f"{row['cpu_min_used']:.2f}"


def image_table(rows: dict) -> list[str]:
    lines = [
        "| architecture | params (M) | ms per 480x360 image (trained model, tiled path) "
        "| CPU s per step "
        "| steps | CPU-min used | G (%) | C (%) | mIoU (%) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in sorted(rows.values(), key=lambda r: -r["validation"]["miou"]):
        v, name = row["validation"], row["architecture"]
        lines.append(
            f"| {name} | {row['params_m']:.2f} | {_cell(row.get('image_ms'), 0)} "
            f"| {row['step_cpu_s']:.2f} | {row['steps']} | {_used(row)} "
            f"| {100 * v['global_acc']:.2f} | {100 * v['class_acc']:.2f} | {100 * v['miou']:.2f} |"
        )
    return lines


def crf_table(rows: dict) -> list[str]:
    lines = [
        "| camvid-unet on CamVid val | G (%) | C (%) | mIoU (%) | s for the images | images |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, row in rows.items():
        lines.append(
            f"| {label} | {100 * row['global_acc']:.2f} | {100 * row['class_acc']:.2f} "
            f"| {100 * row['miou']:.2f} | {row['seconds']:.1f} | {row['images']} |"
        )
    return lines


def _load(name: str) -> dict:
    path = RESULTS / name
    return json.loads(path.read_text()) if path.exists() else {}


def quality_sections() -> list[str]:
    """The equal-budget tables from recipes/architectures/results (absent ones are said so)."""
    sections, commands = [], []
    runs = sorted(
        RESULTS.glob("*min.json"),
        key=lambda p: (p.name.split("-")[0], float(p.name.split("-")[1][: -len("min.json")])),
    )
    for path in runs:
        rows = json.loads(path.read_text())
        task, budget = path.name.split("-")[0], path.name.split("-")[1][: -len("min.json")]
        seeds = sorted({row["seed"] for row in rows.values()})
        title = f"## {'Audio' if task == 'audio' else 'Images (CamVid)'} at {budget} CPU-minutes"
        text = (
            f"{len(rows)} architectures, seed {', '.join(map(str, seeds))}, each trained for "
            f"{budget} CPU-minutes of the training process (one thread; see "
            "`recipes/architectures/compare.py`). "
            + (
                "Ranked by the median over the 6 dev tracks of BSSEval v4 SDR (museval); "
                "val SDR is the recipe's fast global SDR on its 96 synthesized validation "
                "mixtures. Both speed columns are `vocalsep separate --backend torch` on a "
                "3-minute song: the width's on the untrained model when `compare.py widths` "
                "chose it (2026-12-04/05, before the separation pipeline moved to numpy), the "
                "next on the trained checkpoint (`compare.py speed`, with the pipeline of the "
                "date above)."
                if task == "audio"
                else "Scored on CamVid val (101 images) by the final validation; ranked by mIoU."
            )
        )
        table = audio_table(rows) if task == "audio" else image_table(rows)
        sections += [title, "", text, "", *table, ""]
        for row in sorted(rows.values(), key=lambda r: r["architecture"]):
            commands.append(f"- {task} {budget} min, {row['architecture']}: `{row['command']}`")
    if not runs:
        sections += ["**Quality at an equal CPU-time budget: not measured yet.**", ""]
    crf = _load("image-crf.json")
    if crf:
        sections += ["## Dense CRF (`--crf`), with and without", "", *crf_table(crf), ""]
        commands += [f"- CRF, {label}: `{row['command']}`" for label, row in crf.items()]
    if commands:
        sections += ["## Commands of every row", "", *commands, ""]
    return sections


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="also write the tables as markdown here")
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
    sections = quality_sections()
    print("\n".join(sections))
    if args.out:
        out = Path(args.out)
        machine = f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}"
        old = out.read_text(encoding="utf-8") if out.exists() else ""
        lessons = old[old.index(LESSONS) :] if LESSONS in old else ""
        text = (
            "# Architectures side by side\n\n"
            f"Written by `python benchmarks/architectures.py --out {args.out}` on "
            f"{datetime.date.today()} ({machine}) from the results that "
            "`recipes/architectures/compare.py` wrote to `recipes/architectures/results/` "
            "(commands at the end). The section after the tables is written by hand and kept "
            "when the tables are rewritten.\n\n"
            "## Size, compute and speed\n\n"
            "Defaults of each architecture, untrained networks (size, compute and speed do not "
            "depend on the weights); network only, 2 threads.\n\n"
            + table
            + "\n\n"
            + "\n".join(sections)
            + ("\n" + lessons if lessons else "")
        )
        out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
