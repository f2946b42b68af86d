"""Separation speed and peak memory of `vocalsep separate`, end to end.

Synthesizes stereo 44.1 kHz 16-bit WAV songs of the given durations (streamed to disk, so
even 60 minutes costs no memory here), then runs the real command line on each one in a
fresh process under `/usr/bin/time -v` and prints, per file: audio duration, wall time,
real-time factor (audio seconds per wall second, including start-up, decoding and writing
both stems) and peak resident memory of the whole process.

    python benchmarks/separate_speed.py                      # 30 s, 3 min, 60 min; onnx, torch
    python benchmarks/separate_speed.py --durations 30,180 --model my.ckpt --backend torch
    python benchmarks/separate_speed.py --durations 180 --config recipes/synthetic/waveunet.toml

Without --model or --config it measures the default model that `vocalsep separate` uses (the
one shipped in the package). `--model` takes a checkpoint or a shipped model's name. `--config`
builds an untrained model of a run config instead: speed does not depend on the weights.
`--backend` lists the backends to time (default: onnx,torch), each song on each backend in
turn, so that they share the machine's state, for `--repeat` rounds (default 3; a shared
machine varies by +-20% from run to run): the table gives the median wall time of the rounds
(all are listed) and the highest peak. A checkpoint is exported to ONNX first (`vocalsep
export`) for the onnx backend. The last lines give the onnx / torch ratios of the medians.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 44100


def synthesize(path: Path, seconds: float, seed: int = 0) -> None:
    """A stereo 'song' (vibrato voice, chords, noise bursts) written block by block."""
    rng = np.random.default_rng(seed)
    block = RATE * 10
    total = round(seconds * RATE)
    with sf.SoundFile(path, "w", RATE, 2, subtype="PCM_16") as file:
        for start in range(0, total, block):
            t = np.arange(start, min(start + block, total)) / RATE
            voice = 0.2 * np.sin(2 * np.pi * (330 * t + 4 * np.sin(2 * np.pi * 5.5 * t)))
            chords = sum(0.08 * np.sin(2 * np.pi * f * t) for f in (110, 138.6, 164.8, 220))
            noise = 0.05 * rng.standard_normal(t.size) * (np.sin(2 * np.pi * 2 * t) > 0.9)
            file.write(np.stack([voice + chords + noise, 0.7 * voice + chords - noise], axis=1))


def build_model(path: Path, run_config: str) -> None:
    from vocalsep.api import build_task
    from vocalsep.train import load_run_config

    model = build_task(load_run_config(run_config)).build_model()
    model.save(path, metadata={"note": "untrained, for speed benchmarks only"})


def measure(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one command in a fresh process."""
    timer = shutil.which("time") or "/usr/bin/time"
    start = time.perf_counter()
    if os.path.exists(timer):
        result = subprocess.run([timer, "-v", *command], capture_output=True, text=True)
        wall = time.perf_counter() - start
        match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr)
        peak = int(match.group(1)) / 1024 if match else float("nan")
    else:  # fall back on the kernel's accounting of finished children
        import resource

        result = subprocess.run(command, capture_output=True, text=True)
        wall = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if result.returncode != 0:
        sys.exit(f"command failed: {' '.join(command)}\n{result.stderr[-2000:]}")
    return wall, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--durations", default="30,180,3600", help="seconds, comma-separated")
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--model", default=None, help="checkpoint or shipped name (default: the default model)"
    )
    which.add_argument(
        "--config", default=None, help="instead of --model: an untrained model of this run config"
    )
    parser.add_argument("--workdir", default=None, help="where to put the test files")
    parser.add_argument("--backend", default="onnx,torch", help="backends, comma-separated")
    parser.add_argument("--threads", type=int, default=None, help="network threads (default: all)")
    parser.add_argument(
        "--repeat", type=int, default=3, help="rounds per song (median wall, highest peak)"
    )
    args = parser.parse_args()
    backends = [name.strip() for name in args.backend.split(",") if name.strip()]

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="vocalsep-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    if args.config:
        model = workdir / "bench_model.ckpt"
        build_model(model, args.config)
    else:
        model = args.model or "default"
    models = {name: str(model) for name in backends}
    if "onnx" in backends and str(model).endswith(".ckpt"):  # not shipped with an ONNX file
        models["onnx"] = str(workdir / "bench_model.onnx")
        export = [sys.executable, "-m", "vocalsep", "export", str(model), models["onnx"]]
        subprocess.run([*export, "--overwrite"], check=True, capture_output=True)
    print(f"model: {model}   cpus: {os.cpu_count()}   python: {sys.version.split()[0]}")
    print(f"{'audio':>8} {'backend':>8} {'wall s':>8} {'x real time':>12} {'peak RSS MB':>12}")
    results: dict[tuple[float, str], tuple[float, float]] = {}
    try:
        for seconds in (float(value) for value in args.durations.split(",")):
            song = workdir / f"song_{seconds:g}s.wav"
            if not song.exists():
                synthesize(song, seconds)
            rounds: dict[str, list[tuple[float, float]]] = {name: [] for name in backends}
            for _round, backend in itertools.product(range(max(1, args.repeat)), backends):
                command = [
                    *(sys.executable, "-m", "vocalsep", "separate", str(song)),
                    *("--model", models[backend], "--backend", backend),
                    *(["--threads", str(args.threads)] if args.threads else []),
                    *("-o", str(workdir / "out"), "--overwrite", "--no-progress"),
                ]
                rounds[backend].append(measure(command))
            for backend in backends:
                wall = statistics.median(wall for wall, _ in rounds[backend])
                peak = max(peak for _, peak in rounds[backend])
                results[seconds, backend] = wall, peak
                print(
                    f"{seconds:>7g}s {backend:>8} {wall:>8.1f} {seconds / wall:>12.1f} "
                    f"{peak:>12.0f}   (walls {', '.join(f'{w:.2f}' for w, _ in rounds[backend])})",
                    flush=True,
                )
        if {"onnx", "torch"} <= set(backends):
            for seconds in sorted({key[0] for key in results}):
                (onnx_wall, onnx_peak), (torch_wall, torch_peak) = (
                    results[seconds, "onnx"],
                    results[seconds, "torch"],
                )
                print(
                    f"{seconds:>7g}s onnx / torch: wall {onnx_wall / torch_wall:.2f}x, "
                    f"peak RSS {onnx_peak / torch_peak:.2f}x"
                )
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
