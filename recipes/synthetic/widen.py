"""Start a wider U-Net from a trained one: every hidden layer gets `--factor` times the channels.

    python recipes/synthetic/widen.py runs/finetune-bus/best.ckpt runs/wide-init.ckpt --factor 1.5
    vocalsep train recipes/synthetic/finetune.toml --out runs/wide \
        --set "trainer.init_from='runs/wide-init.ckpt'" \
        --set "task_config.network.channels=[12, 24, 48, 96, 192, 384]" ...

The widened network computes what the narrow one computes (Net2WiderNet: copied channels,
split outgoing weights; `vocalsep/core/widen.py`) up to `--noise`, which lets the copies drift
apart in training. The output keeps the input's config (STFT, rate, targets) and drops its
training state; it prints the new channel list to pass to `vocalsep train`.
"""

from __future__ import annotations

import argparse
import sys

from vocalsep.core.checkpoint import load_checkpoint, save_checkpoint
from vocalsep.core.errors import VocalsepError
from vocalsep.core.unet import network_config_class
from vocalsep.core.widen import widen_unet


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("out")
    parser.add_argument("--factor", type=float, default=1.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noise", type=float, default=0.01)
    args = parser.parse_args()
    try:
        checkpoint = load_checkpoint(args.checkpoint)
        if checkpoint.architecture != "unet":
            raise VocalsepError(f"{args.checkpoint}: only 'unet' networks can be widened")
        config = network_config_class(checkpoint.architecture).from_dict(checkpoint.model_config)
        state, wider = widen_unet(
            checkpoint.state_dict,
            config,
            args.factor,
            seed=args.seed,
            noise=args.noise,
            prefix="network.",
        )
    except VocalsepError as error:
        print(f"widen.py: error: {error}", file=sys.stderr)
        return 1
    checkpoint.state_dict = state
    checkpoint.model_config = wider.to_dict()
    checkpoint.training_state = None
    checkpoint.metadata = {
        **checkpoint.metadata,
        "widened_from": args.checkpoint,
        "widen": {"factor": args.factor, "seed": args.seed, "noise": args.noise},
    }
    path = save_checkpoint(checkpoint, args.out)
    print(f"wrote {path}: channels {list(wider.channels)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
