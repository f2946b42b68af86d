"""Pack a trained checkpoint as a shipped model: weights and config only, plus a card.

    python recipes/synthetic/export.py runs/synthetic/best.ckpt vocalsep/pretrained/NAME.ckpt \
        --metadata card.json

Drops the training state (optimizer moments, schedule), keeps the architecture, STFT, sample
rate, targets and weights, and merges the JSON object in `--metadata` (dev metrics, training
time, command, seed, data and licences) into the checkpoint's metadata. The result loads with
`torch.load(weights_only=True)` like any vocalsep checkpoint.
"""

from __future__ import annotations

import argparse
import json

from vocalsep.core.checkpoint import load_checkpoint, save_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("out")
    parser.add_argument("--metadata", default=None, help="JSON file merged into the metadata")
    args = parser.parse_args()
    checkpoint = load_checkpoint(args.checkpoint)
    checkpoint.training_state = None
    metadata = dict(checkpoint.metadata)
    if args.metadata:
        with open(args.metadata, encoding="utf-8") as file:
            metadata.update(json.load(file))
    checkpoint.metadata = metadata
    path = save_checkpoint(checkpoint, args.out)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
