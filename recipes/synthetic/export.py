"""Pack trained checkpoints as a shipped model: weights and config only, plus a card.

    python recipes/synthetic/export.py runs/synthetic/best.ckpt vocalsep/pretrained/NAME.ckpt \
        --metadata card.json
    python recipes/synthetic/export.py A.ckpt B.ckpt OUT.ckpt [--weights 1,1] --metadata card.json

A checkpoint may also be named as a shipped model ("vocalsep-small").

Drops the training state (optimizer moments, schedule), keeps the architecture, STFT, sample
rate, targets and weights, and merges the JSON object in `--metadata` (dev metrics, training
time, command, seed, data and licences) into the checkpoint's metadata. Two or more
spectrogram checkpoints become one `SpectrogramEnsemble` file (their masks are averaged with
`--weights`, equal by default; the first one's STFT is the output STFT). The result loads with
`torch.load(weights_only=True)` like any vocalsep checkpoint.
"""

from __future__ import annotations

import argparse
import json
import sys

from vocalsep.audio.models import TASK, SpectrogramEnsemble, load_model
from vocalsep.core.checkpoint import load_checkpoint, save_checkpoint
from vocalsep.core.errors import VocalsepError
from vocalsep.pretrained import resolve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", help="one checkpoint, or the members")
    parser.add_argument("out")
    parser.add_argument("--metadata", default=None, help="JSON file merged into the metadata")
    parser.add_argument("--weights", default=None, help="ensemble weights, e.g. 1,1")
    args = parser.parse_args(argv)
    try:
        if len(args.checkpoints) == 1:
            checkpoint = load_checkpoint(resolve(args.checkpoints[0], TASK))
            checkpoint.training_state = None
        else:
            weights = None
            if args.weights:
                weights = [float(value) for value in args.weights.split(",")]
            members = [load_model(resolve(path, TASK)) for path in args.checkpoints]
            checkpoint = SpectrogramEnsemble(members, weights).to_checkpoint(
                {"members": [str(path) for path in args.checkpoints]}
            )
        metadata = dict(checkpoint.metadata)
        if args.metadata:
            with open(args.metadata, encoding="utf-8") as file:
                metadata.update(json.load(file))
        checkpoint.metadata = metadata
        path = save_checkpoint(checkpoint, args.out)
    except (VocalsepError, OSError, ValueError) as error:
        print(f"export: {error}", file=sys.stderr)
        return 1
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
