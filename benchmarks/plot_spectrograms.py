"""Spectrogram picture of a separation against the references, one PNG.

    python benchmarks/plot_spectrograms.py SONG --out spectrograms.png [--model NAME|PATH]
        [--seconds 20] [--start 0] [--wiener N] [--reference-dir DIR] [--overwrite]

`vocalsep separate --plot` draws mixture, vocals and accompaniment for a whole song; this
script draws an excerpt and, with `--reference-dir` holding `vocals.*` and `accompaniment.*`
(a dev track's folder), the true stems under the estimates, on the same picture (the same
drawing code: `vocalsep.audio.plot`, needs the plot extra).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vocalsep import api
from vocalsep.audio.io import load_audio
from vocalsep.audio.plot import Sketch, draw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("song")
    parser.add_argument("--model", default=None, help="model name or path (default: the default)")
    parser.add_argument("--out", default="spectrograms.png")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--start", type=float, default=0.0)
    parser.add_argument("--wiener", type=int, default=0)
    parser.add_argument("--reference-dir", default=None)
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args()

    audio, rate = load_audio(args.song)
    start, stop = int(args.start * rate), int((args.start + args.seconds) * rate)
    if start >= audio.shape[-1]:
        duration = audio.shape[-1] / rate
        raise SystemExit(
            f"--start {args.start} s is past the end of {args.song} ({duration:.1f} s)"
        )
    audio = audio[:, start:stop]
    separator = api.load_separator(args.model, device="cpu", wiener_iterations=args.wiener)
    stems = separator.separate(audio, rate)
    signals = {"mixture": audio, **{f"estimated {name}": stems[name] for name in stems}}
    if args.reference_dir:
        for name in stems:
            path = next(Path(args.reference_dir).glob(f"{name}.*"))
            reference, reference_rate = load_audio(path)
            if reference_rate != rate:
                raise SystemExit(f"{path} is at {reference_rate} Hz, the song at {rate} Hz")
            signals[f"reference {name}"] = reference[:, start:stop]
    sketches = {}
    for name, signal in signals.items():
        sketches[name] = Sketch(rate)
        sketches[name].add(signal)
    title = f"{Path(args.song).name}, {args.start:g}-{args.start + audio.shape[-1] / rate:g} s"
    draw(args.out, sketches, title=title, overwrite=args.overwrite)
    print(f"wrote {args.out}: panels top to bottom: {', '.join(signals)}")


if __name__ == "__main__":
    main()
