"""Which stem makes a track hard? Mix every track's vocals with every track's accompaniment.

    python recipes/synthetic/cross_mix.py --root ../shared/data/audio/dev --filter sisec
    python recipes/synthetic/cross_mix.py --root ../shared/data/audio/dev --filter sisec \
        --accompaniment runs/band-probe/band/*.flac --model runs/x/best.ckpt

Tracks are read from ROOT/<track>/{vocals,accompaniment}.* at 44.1 kHz stereo (mono is
copied). Each pair is cut to the shortest of the chosen tracks (or `--seconds`), the vocals are
scaled to `--level-db` against the accompaniment, the mixture is scaled to peak 0.9 and
separated with `--model`. The table gives the global vocal SDR (dB, channels and samples
pooled) per pair: rows are the vocals, columns the accompaniments. A low column with good rows
elsewhere says the accompaniment is what the model fails on, not the voice. `--accompaniment`
adds other accompaniment files (e.g. rendered band songs) as extra columns; the table then ends
with each row's mean over those files.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

from vocalsep.audio.augment import rms
from vocalsep.audio.io import load_audio, resample
from vocalsep.audio.metrics import signal_to_distortion_ratio
from vocalsep.audio.separator import Separator
from vocalsep.audio.tracks import conform, find_folder_tracks, load_track
from vocalsep.core.errors import VocalsepError

RATE = 44100
SILENT_RMS = 1e-5  # -100 dBFS


def _excerpt(audio: np.ndarray, length: int) -> np.ndarray:
    """`length` samples from the middle third onwards (or the start, for short audio)."""
    start = min(audio.shape[-1] // 3, max(0, audio.shape[-1] - length))
    return audio[:, start : start + length]


def pair_sdr(
    separator: Separator, vocals: np.ndarray, accompaniment: np.ndarray, level_db: float
) -> float:
    """Global vocal SDR of `separator` on `vocals` mixed `level_db` below/above
    `accompaniment` (both `(2, samples)` at 44.1 kHz)."""
    vocals = vocals * (rms(accompaniment) / rms(vocals) * 10 ** (level_db / 20))
    mixture = vocals + accompaniment
    gain = 0.9 / max(float(np.max(np.abs(mixture))), 1e-9)
    estimate = separator.separate(mixture * gain, RATE)["vocals"] / gain
    reference = np.ascontiguousarray(vocals, dtype=np.float32)
    return float(
        signal_to_distortion_ratio(torch.from_numpy(estimate), torch.from_numpy(reference))
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--root", required=True, help="folder of track folders with vocals.* and accompaniment.*"
    )
    parser.add_argument("--model", default=None, help="shipped name or checkpoint (default model)")
    parser.add_argument("--filter", default="", help="only tracks whose name contains this")
    parser.add_argument("--level-db", type=float, default=-7.5, help="vocals against accompaniment")
    parser.add_argument("--seconds", type=float, default=0.0, help="excerpt length (0: shortest)")
    parser.add_argument("--accompaniment", nargs="*", default=[], help="extra accompaniment files")
    args = parser.parse_args()
    try:
        tracks = [t for t in find_folder_tracks(args.root) if args.filter in t.name]
        if not tracks:
            raise VocalsepError(f"no track in {args.root} matches --filter {args.filter!r}")
        stems = {
            t.name: {k: conform(v, 2, None, RATE, t.name) for k, v in load_track(t, RATE).items()}
            for t in tracks
        }
        extra = {}
        for path in args.accompaniment:
            audio, rate = load_audio(path)
            extra[path] = conform(resample(audio, rate, RATE), 2, None, RATE, path)
        shortest = min(s["vocals"].shape[-1] for s in stems.values())
        length = round(args.seconds * RATE) if args.seconds > 0 else shortest
        if length > shortest:
            raise VocalsepError(f"--seconds {args.seconds} is longer than the shortest track")
        short = [p for p, a in extra.items() if a.shape[-1] < length]
        if short:
            raise VocalsepError(f"{short[0]} is shorter than the {length / RATE:.1f} s excerpt")
        columns = {name: _excerpt(s["accompaniment"], length) for name, s in stems.items()}
        columns.update({path: _excerpt(a, length) for path, a in extra.items()})
        excerpts = {name: _excerpt(s["vocals"], length) for name, s in stems.items()}
        for kind, audio in [("vocals", excerpts), ("accompaniment", columns)]:
            silent = [name for name, a in audio.items() if rms(a) < SILENT_RMS]
            if silent:  # no level to mix at: the SDR would be -inf or nan
                raise VocalsepError(
                    f"the {kind} of {silent[0]} are silent in the {length / RATE:.1f} s "
                    "excerpt (choose other tracks or --seconds)"
                )
        separator = Separator.from_pretrained(args.model)
    except VocalsepError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    width = max(len(name) for name in stems)
    print(
        f"vocal SDR (dB) at {args.level_db:+.1f} dB, {length / RATE:.1f} s; model "
        f"{args.model or 'default'}; rows: vocals of, columns: accompaniment of"
    )
    for k, name in enumerate(columns):
        print(f"  [{k}] {name}")
    header = "".join(f"{f'[{k}]':>8}" for k in range(len(columns)))
    print(f"{'':{width}}{header}" + (f"{'extra':>8}" if extra else ""))
    for name in stems:
        row = [pair_sdr(separator, excerpts[name], acc, args.level_db) for acc in columns.values()]
        cells = "".join(f"{value:8.2f}" for value in row)
        tail = f"{np.mean(row[len(stems) :]):8.2f}" if extra else ""
        print(f"{name:{width}}{cells}{tail}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
