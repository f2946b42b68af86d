"""Training throughput of a recipe on this machine: examples/s and seconds of audio per second.

    python benchmarks/train_speed.py                       # recipes/synthetic, 60 steps
    python benchmarks/train_speed.py --steps 100 --set trainer.num_workers=0

Runs the real trainer (data pipeline with augmentations, DataLoader workers, forward,
backward, optimizer) for `--steps` steps and reports the throughput of the steps after the
first logging window (start-up, cache building and worker spin-up excluded; they are printed
separately). Run from the repository root (the recipe's data paths are relative to it).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from vocalsep import api
from vocalsep.train import load_run_config

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "recipes" / "synthetic" / "config.toml"))
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--window", type=int, default=10, help="steps per measurement window")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()

    overrides = [
        f"trainer.steps={args.steps}",
        "trainer.validate_every=0",
        f"trainer.log_every={args.window}",
        f"trainer.checkpoint_every={args.steps}",
        *args.overrides,
    ]
    config = load_run_config(args.config, overrides)
    # The end-of-run validation is not part of training throughput: make it tiny.
    data = dict(config.task_config["data"])
    data["validation_examples"] = 1
    config = config.replace(task_config={**config.task_config, "data": data})
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        api.train(config, Path(folder) / "run", progress=False)
        total = time.perf_counter() - started
        records = [
            json.loads(line)
            for line in (Path(folder) / "run" / "log.jsonl").read_text().splitlines()
        ]
    windows = [r for r in records if r["event"] == "train"][1:]  # skip the warm-up window
    if not windows:
        raise SystemExit("need more steps than one window")
    rate = sum(r["examples_per_s"] for r in windows) / len(windows)
    segment = float(config.task_config["data"]["segment_seconds"])
    first_step_done = [r for r in records if r["event"] == "train"][0]["time"]
    print(f"config              {args.config}")
    print(f"torch threads       {torch.get_num_threads()}  workers {config.trainer.num_workers}")
    print(f"batch size          {config.trainer.batch_size} x {segment:g} s excerpts")
    print(f"steps measured      {len(windows) * args.window} (of {args.steps})")
    print(f"examples/s          {rate:.2f}")
    print(f"audio s/s           {rate * segment:.1f}  (seconds of training audio per second)")
    print(f"steps/hour          {3600 * rate / config.trainer.batch_size:.0f}")
    print(f"wall incl. startup  {total:.1f} s (first window ends at {first_step_done:.1f} s)")


if __name__ == "__main__":
    main()
