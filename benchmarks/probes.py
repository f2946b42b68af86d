"""What a karaoke user hears, probed on the dev tracks' own stems: bleed and karaoke residue.

    python benchmarks/probes.py [--models default,PATH...] [--dev ../shared/data/audio/dev]
        [--json OUT.json]

For every dev track with `vocals.*` and `accompaniment.*` stems, and every model:
- bleed: the accompaniment stem alone goes in; the energy of the vocals output relative to
  the input's, below and above 8 kHz (dB; the higher the band's line, the more cymbals and
  hi-hats in the a-cappella). Above 8 kHz only where the input has content there (above -60 dB
  of its total energy: the MIR-1K clips are 16 kHz recordings, nothing above 8 kHz).
- karaoke residue: the vocals stem alone goes in; the energy of the accompaniment output
  relative to the input's, full band (dB; the original singer left under the karaoke track),
  and the part of it above 8 kHz (relative to the same full-band input energy).
Per track, then the median of each column per model. Energies are sums over the whole clip of
the squared spectrum (Parseval), both channels. Lower is better everywhere.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

import numpy as np

from vocalsep import api
from vocalsep.audio.tracks import TrackError, find_folder_tracks, load_track, track_sample_rate
from vocalsep.core.errors import VocalsepError

SPLIT_HZ = 8000.0
PRESENT_DB = -60.0  # a band "has content" above this, relative to the input's total energy


class Spectrum:
    """The power spectrum of `(channels, n)` audio (one FFT), summed over bands on request."""

    def __init__(self, audio: np.ndarray, rate: int) -> None:
        self.power = (np.abs(np.fft.rfft(audio, axis=-1)) ** 2).sum(axis=0)
        self.freqs = np.fft.rfftfreq(audio.shape[-1], 1.0 / rate)

    def energy(self, low: float, high: float | None = None) -> float:
        """Energy between `low` and `high` Hz (default: up to and including Nyquist)."""
        top = self.freqs < high if high is not None else True
        return float(self.power[(self.freqs >= low) & top].sum())


# what `probe` measures, in the order of the table
COLUMNS = ("bleed_below_8k_db", "bleed_above_8k_db", "karaoke_residue_db", "residue_above_8k_db")


def db(ratio: float) -> float:
    return 10 * math.log10(ratio) if ratio > 0 else -math.inf


def probe(separator, vocals: np.ndarray, accompaniment: np.ndarray, rate: int) -> dict:
    source = Spectrum(accompaniment, rate)
    bleed = Spectrum(separator.separate(accompaniment, rate)["vocals"], rate)
    result = {"bleed_below_8k_db": db(bleed.energy(0, SPLIT_HZ) / source.energy(0, SPLIT_HZ))}
    high_in, total_in = source.energy(SPLIT_HZ), source.energy(0)
    has_high = rate / 2 > SPLIT_HZ and total_in > 0 and db(high_in / total_in) > PRESENT_DB
    result["bleed_above_8k_db"] = db(bleed.energy(SPLIT_HZ) / high_in) if has_high else None
    residue = Spectrum(separator.separate(vocals, rate)["accompaniment"], rate)
    voice = Spectrum(vocals, rate).energy(0)
    result["karaoke_residue_db"] = db(residue.energy(0) / voice)
    result["residue_above_8k_db"] = db(residue.energy(SPLIT_HZ) / voice) if has_high else None
    return result


def cells(row: dict, columns: tuple[str, ...]) -> str:
    widths = (10, 10, 9, 12)
    return " ".join(
        f"{row[c]:>{w}.1f}" if row[c] is not None else f"{'-':>{w}}"
        for c, w in zip(columns, widths, strict=True)
    )


def parse_dev_arguments(parser: argparse.ArgumentParser) -> tuple[argparse.Namespace, list]:
    """Add --dev and --json to `parser`, parse the command line and find the dev tracks (or
    exit with the reason in one line). Shared with `oracle_band.py`."""
    parser.add_argument("--dev", default="../shared/data/audio/dev", help="dev tracks' folder")
    parser.add_argument("--json", default=None, help="also write the numbers here")
    args = parser.parse_args()
    try:
        return args, find_folder_tracks(args.dev)
    except TrackError as error:
        sys.exit(str(error))


def load_separator(name: str) -> api.Separator:
    """A shipped model's name ("default" for the default model) or a path, or exit with the
    reason in one line. Shared with `oracle_band.py`."""
    try:
        return api.Separator.from_pretrained(None if name == "default" else name)
    except VocalsepError as error:
        sys.exit(str(error))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="default", help="comma-separated names or paths")
    args, tracks = parse_dev_arguments(parser)
    results: dict[str, dict[str, dict]] = {}
    print(
        f"{'model':<24} {'track':<30} {'bleed <8k':>10} {'bleed >8k':>10} {'residue':>9} "
        f"{'of it >8k':>12}"
    )
    for model in (name.strip() for name in args.models.split(",") if name.strip()):
        separator = load_separator(model)
        results[model] = {}
        for track in tracks:
            rate = track_sample_rate(track)
            audio = load_track(track, rate)  # one rate, channel count and length
            row = probe(separator, audio["vocals"], audio["accompaniment"], rate)
            results[model][track.name] = row
            print(f"{model:<24} {track.name:<30} {cells(row, COLUMNS)}")
        medians = {
            column: statistics.median(values)
            if (values := [r[column] for r in results[model].values() if r[column] is not None])
            else None
            for column in COLUMNS
        }
        results[model]["median"] = medians
        print(f"{model:<24} {'median':<30} {cells(medians, COLUMNS)}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
