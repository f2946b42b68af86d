"""Average the vocals of several models on a folder of tracks, for `vocalsep evaluate`.

    python recipes/synthetic/ensemble.py vocalsep-small runs/single-stage-ft/best.ckpt \
        --root ../shared/data/audio/dev --out runs/ensemble-dev
    vocalsep evaluate --root ../shared/data/audio/dev --estimates runs/ensemble-dev

For each ROOT/<track>/mixture.* every model separates the mixture, the vocal waveforms are
averaged and written with accompaniment = mixture - vocals (32-bit float WAV), so the models
may differ in STFT, band and architecture. A diagnostic of what combining models would buy:
it costs the sum of the models' time.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from vocalsep.audio.io import load_audio
from vocalsep.audio.separator import Separator
from vocalsep.core.errors import VocalsepError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="shipped model names or checkpoint paths")
    parser.add_argument("--root", required=True, help="folder of <track>/mixture.* folders")
    parser.add_argument("--out", required=True, help="new folder for <track>/{vocals,...}.wav")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if out.exists():
        print(f"ensemble: {out} exists; choose a new folder", file=sys.stderr)
        return 1
    try:
        separators = [Separator.from_pretrained(model) for model in args.models]
        mixtures = sorted(Path(args.root).glob("*/mixture.*"))
        if not mixtures:
            raise VocalsepError(f"no <track>/mixture.* under {args.root}")
        for path in mixtures:
            mixture, rate = load_audio(path)  # (channels, samples)
            vocals = np.mean([s.separate(mixture, rate)["vocals"] for s in separators], axis=0)
            folder = out / path.parent.name
            folder.mkdir(parents=True)
            for stem, audio in (("vocals", vocals), ("accompaniment", mixture - vocals)):
                sf.write(folder / f"{stem}.wav", audio.T, rate, subtype="FLOAT")
            print(f"{path.parent.name}: {len(separators)} models", flush=True)
    except VocalsepError as error:
        print(f"ensemble: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
