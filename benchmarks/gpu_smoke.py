"""The CUDA paths on a GPU machine: training with and without AMP, resume, and separation.

    python benchmarks/gpu_smoke.py [--workdir /tmp/vocalsep-gpu] [--steps 150]
        [--models default,PATH] [--skip-training]

Prints measured numbers; run it where `torch.cuda.is_available()`. It trains the tiny recipe
(toy audio written by the recipe's own generator) on the GPU in float32 and with autocast
(bfloat16 where supported), resumes one of the runs, then separates a 3-minute stereo
44.1 kHz signal with the shipped default model (or `--models`) on the GPU and on the CPU and
compares the two, and separates it on the GPU in 7 s chunks and in one chunk (tile joins).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from vocalsep import api
from vocalsep.audio.separator import Separator
from vocalsep.audio.toy import write_toy_sources
from vocalsep.train import load_run_config

ROOT = Path(__file__).resolve().parents[1]


def validations(run_dir: Path) -> list[dict]:
    lines = (run_dir / "log.jsonl").read_text().splitlines()
    return [row for row in map(json.loads, lines) if row.get("event") == "validation"]


def train(
    workdir: Path, toy: Path, name: str, steps: int, device: str, *extra: str, resume=False
) -> Path:
    vocals = f'{{path="{toy / "vocals"}", validation_groups=["singer1"]}}'
    music = f'{{path="{toy / "accompaniment"}", validation_groups=["track1"]}}'
    overrides = [
        f"task_config.data.synthesized.vocals=[{vocals}]",
        f"task_config.data.synthesized.accompaniment=[{music}]",
        f"task_config.data.cache_dir={str(workdir / 'cache')!r}",
        f"trainer.device={device!r}",
        "trainer.validate_at_start=true",
        f"trainer.steps={steps}",
        *extra,
    ]
    run = load_run_config(ROOT / "recipes" / "tiny" / "config.toml", overrides)
    out = workdir / name
    start = time.perf_counter()
    result = api.train(run, out, progress=False, resume=resume)
    seconds = time.perf_counter() - start
    first, last = validations(out)[0], validations(out)[-1]
    print(
        f"{name}: {result.step} steps in {seconds:.1f} s; validation loss "
        f"{first['loss']:.3f} -> {last['loss']:.3f} ({1 - last['loss'] / first['loss']:.0%} "
        f"lower), vocals SDR {first['sdr_vocals']:.2f} -> {last['sdr_vocals']:.2f} dB"
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="/tmp/vocalsep-gpu")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--device", default="cuda", help="cpu only to try the script itself")
    parser.add_argument(
        "--models",
        default="default",
        help="comma-separated shipped names or checkpoints to separate with (default: the "
        "default model)",
    )
    parser.add_argument("--skip-training", action="store_true", help="only the separation part")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device here: run this on a GPU machine")
    if args.device == "cuda":
        print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    workdir = Path(args.workdir)
    shutil.rmtree(workdir, ignore_errors=True)
    toy = write_toy_sources(workdir / "toy")

    if not args.skip_training:
        train(workdir, toy, "fp32", args.steps, args.device, "trainer.amp=false")
        train(workdir, toy, "amp", args.steps, args.device, "trainer.amp=true")
        train(workdir, toy, "amp", args.steps + 50, args.device, "trainer.amp=true", resume=True)

    rng = np.random.default_rng(0)
    rate, seconds = 44100, 180
    t = np.arange(rate * seconds) / rate
    song = 0.1 * rng.standard_normal((2, t.size)).astype(np.float32)
    song += (0.3 * np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 0.5 * t) > 0)).astype(
        np.float32
    )
    for model in args.models.split(","):
        name = None if model == "default" else model
        print(f"model {model}:")
        outputs = {}
        for device in (args.device, "cpu"):
            separator = Separator.from_pretrained(name, device=device)
            separator.separate(song[:, : rate * 5], rate)  # warm-up (cuDNN autotuning, threads)
            start = time.perf_counter()
            outputs[device] = separator.separate(song, rate)
            elapsed = time.perf_counter() - start
            print(
                f"  separate 3 min stereo 44.1 kHz on {device}: {elapsed:.2f} s "
                f"({seconds / elapsed:.0f}x real time)"
            )
        # Chunks must join on the GPU too: 7 s chunks against one 200 s chunk.
        chunked = Separator.from_pretrained(name, device=args.device, chunk_seconds=7.0)
        whole = Separator.from_pretrained(name, device=args.device, chunk_seconds=200.0)
        joined, single = chunked.separate(song, rate), whole.separate(song, rate)
        for stem in outputs["cpu"]:
            difference = np.max(np.abs(outputs[args.device][stem] - outputs["cpu"][stem]))
            seams = np.max(np.abs(joined[stem] - single[stem]))
            print(
                f"  {stem}: max |{args.device} - cpu| = {difference:.2e}; on {args.device}, max "
                f"|7 s chunks - one chunk| = {seams:.2e} (peak {np.max(np.abs(single[stem])):.2f})"
            )


if __name__ == "__main__":
    main()
