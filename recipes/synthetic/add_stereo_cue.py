"""Give a trained stereo spectrogram U-Net the stereo cue as one more input, at zero weight.

    python recipes/synthetic/add_stereo_cue.py vocalsep/pretrained/vocalsep-small.ckpt \\
        runs/cue-init.ckpt
    vocalsep train recipes/synthetic/finetune.toml --out runs/finetune-cue \\
        --set "trainer.init_from='runs/cue-init.ckpt'" --set task_config.model.stereo_cue=true ...

The cue (`vocalsep.audio.models.stereo_cue`: `|L - R| / (|L| + |R|)` per bin) enters the first
convolution as a third channel whose weights start at zero, so the new model computes exactly
what the old one computes until training gives the cue weight. The output keeps the input's
config (STFT, rate, targets), sets `stereo_cue`, and drops the training state.
"""

from __future__ import annotations

import argparse
import sys

import torch

from vocalsep.core.checkpoint import load_checkpoint, save_checkpoint
from vocalsep.core.errors import VocalsepError

FIRST_CONV = "network.encoder.0.0.weight"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("out")
    args = parser.parse_args()
    try:
        checkpoint = load_checkpoint(args.checkpoint, task="audio-separation")
        model = dict(checkpoint.task_config)
        if model.get("model_type", "spectrogram-mask") != "spectrogram-mask":
            raise VocalsepError(f"{args.checkpoint}: not a spectrogram masking model")
        if model.get("audio_channels") != 2 or model.get("stereo_cue"):
            raise VocalsepError(f"{args.checkpoint}: needs a stereo network without the cue")
        weight = checkpoint.state_dict.get(FIRST_CONV)
        if weight is None or weight.dim() != 4 or weight.shape[1] != 2:
            raise VocalsepError(f"{args.checkpoint}: no first convolution with 2 inputs")
    except VocalsepError as error:
        print(f"add_stereo_cue.py: error: {error}", file=sys.stderr)
        return 1
    zeros = weight.new_zeros((weight.shape[0], 1, *weight.shape[2:]))
    checkpoint.state_dict = {**checkpoint.state_dict, FIRST_CONV: torch.cat([weight, zeros], 1)}
    checkpoint.model_config = {**checkpoint.model_config, "in_channels": 3}
    checkpoint.task_config = {**model, "stereo_cue": True}
    checkpoint.training_state = None
    checkpoint.metadata = {**checkpoint.metadata, "stereo_cue_added_to": args.checkpoint}
    path = save_checkpoint(checkpoint, args.out)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
