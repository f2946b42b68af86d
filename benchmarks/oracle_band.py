"""How much can the band above 8 kHz give? A model's SDR with an oracle in one band.

    python benchmarks/oracle_band.py [--model default] [--dev ../shared/data/audio/dev]
        [--split 8000] [--above MODEL] [--json OUT.json]

For every dev track with stems, BSSEval v4 (museval, as `vocalsep evaluate` scores: median over
1 s windows) of four vocals estimates, each with `accompaniment = mixture - vocals` as the
product makes it:
- model: the model's vocals as `vocalsep separate` gives them;
- model + oracle above: the model's vocals below `--split` Hz, the ideal ratio mask's above
  (|V| / (|V| + |A|) of the true stems on the mixture): the most that a network hearing the
  band above the split could add to this model, its band below left as it is;
- oracle below + model: the other way round, the headroom below the split;
- oracle: the ideal ratio mask everywhere (the ceiling of any mask on this STFT);
- with `--above MODEL`, also "model + above": the model below the split, MODEL's vocals above
  (what a design that keeps this model's band and adds another network's above would give),
  and the probes of `benchmarks/probes.py` (bleed, karaoke residue) of the model and of that
  combination.
Bands are combined on one STFT of the input (4096 / 1024, as the IRM baseline of `vocalsep
evaluate`): the model's vocals are taken into it, the bands swapped, and back. Per track, then
the median and the mean of the produced SiSEC tracks (the tracks whose name starts "sisec").
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from vocalsep import api
from vocalsep.audio.evaluation import IRM_STFT, score_track
from vocalsep.audio.stft import STFT
from vocalsep.audio.tracks import load_track, track_sample_rate

sys.path.insert(0, str(Path(__file__).resolve().parent))  # as when run: probes.py is beside it
from probes import COLUMNS, cells, load_separator, parse_dev_arguments, probe  # noqa: E402

METHODS = ("model", "model + oracle above", "oracle below + model", "oracle")
TARGETS = ("vocals", "accompaniment")


def _above_split(stft: STFT, rate: int, split_hz: float) -> np.ndarray:
    """`(bins, 1)`: which bins of `stft` at `rate` lie at or above `split_hz`."""
    return (np.arange(stft.n_bins) * rate / stft.fft_length >= split_hz)[:, None]


def band_estimates(
    separate: Callable[[np.ndarray, int], np.ndarray],
    audio: dict[str, np.ndarray],
    rate: int,
    split_hz: float,
    above: Callable[[np.ndarray, int], np.ndarray] | None = None,
) -> dict[str, dict[str, np.ndarray]]:
    """method -> target -> `(channels, samples)`: the estimates above for one track.
    `separate(mixture, rate)` gives the model's vocals, `above(mixture, rate)` the other
    model's."""
    stft = STFT(IRM_STFT)
    mixture = audio["mixture"]
    spectrum = stft(mixture.astype(np.float64))
    true = {target: np.abs(stft(audio[target].astype(np.float64))) for target in TARGETS}
    oracle = spectrum * true["vocals"] / (true["vocals"] + true["accompaniment"] + 1e-12)
    model = stft(separate(mixture, rate).astype(np.float64))
    above_split = _above_split(stft, rate, split_hz)
    vocals = {
        "model": model,
        "model + oracle above": np.where(above_split, oracle, model),
        "oracle below + model": np.where(above_split, model, oracle),
        "oracle": oracle,
    }
    if above is not None:
        high = stft(above(mixture, rate).astype(np.float64))
        vocals["model + above"] = np.where(above_split, high, model)
    return {method: _stems(stft, value, mixture) for method, value in vocals.items()}


def _stems(stft: STFT, vocals: np.ndarray, mixture: np.ndarray) -> dict[str, np.ndarray]:
    """The vocals spectrogram back in time, and the accompaniment as the rest of `mixture`."""
    voice = stft.inverse(vocals, mixture.shape[-1]).astype(np.float32)
    return {"vocals": voice, "accompaniment": mixture - voice}


class Combined:
    """A separator whose vocals are `low`'s below `split_hz` and `high`'s above, combined on
    the STFT of `band_estimates` (for the probes); the accompaniment is the rest."""

    def __init__(self, low: api.Separator, high: api.Separator, split_hz: float) -> None:
        self.low, self.high, self.split_hz = low, high, split_hz

    def separate(self, mixture: np.ndarray, rate: int) -> dict[str, np.ndarray]:
        stft = STFT(IRM_STFT)
        low, high = (
            stft(model.separate(mixture, rate)["vocals"].astype(np.float64))
            for model in (self.low, self.high)
        )
        return _stems(stft, np.where(_above_split(stft, rate, self.split_hz), high, low), mixture)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default", help="a shipped name or a path")
    parser.add_argument("--split", type=float, default=8000.0, help="band edge in Hz")
    parser.add_argument("--above", default=None, help="a model for the band above the split")
    args, tracks = parse_dev_arguments(parser)
    separator = load_separator(args.model)

    def separate(mixture: np.ndarray, rate: int) -> np.ndarray:
        return separator.separate(mixture, rate)["vocals"]

    above = None
    methods = METHODS
    probed = {}  # with --above, the separators that `probes.py`'s probes run on
    if args.above:
        other = load_separator(args.above)
        methods = (*METHODS, "model + above")
        probed = {"model": separator, "model + above": Combined(separator, other, args.split)}

        def above(mixture: np.ndarray, rate: int) -> np.ndarray:
            return other.separate(mixture, rate)["vocals"]

    scores: dict[str, dict[str, dict[str, float]]] = {method: {} for method in methods}
    rows: dict[str, dict[str, dict]] = {method: {} for method in probed}  # -> track -> probes
    print(f"model: {args.model}   split: {args.split:.0f} Hz   SDR in dB, vocals / accompaniment")
    print(f"{'track':<30}" + "".join(f"{method:>24}" for method in methods))
    for track in tracks:
        rate = track_sample_rate(track)
        audio = load_track(track, rate)
        references = {target: audio[target] for target in TARGETS}
        estimates = band_estimates(separate, audio, rate, args.split, above)
        row = f"{track.name:<30}"
        for method in methods:
            result = score_track(track.name, references, estimates[method], rate)
            sdr = {target: result.medians[target]["SDR"] for target in TARGETS}
            scores[method][track.name] = sdr
            row += f"{sdr['vocals']:>15.2f} / {sdr['accompaniment']:>5.2f}"
        print(row)
        for method, probed_separator in probed.items():
            stems = audio["vocals"], audio["accompaniment"]
            rows[method][track.name] = probe(probed_separator, *stems, rate)
    produced = [track.name for track in tracks if track.name.lower().startswith("sisec")]
    for label, names, summary in [
        ("median", [track.name for track in tracks], statistics.median),
        ("SiSEC mean", produced, statistics.fmean),
    ]:
        if not names:
            continue
        row = f"{label:<30}"
        for method in methods:
            values = {t: summary([scores[method][n][t] for n in names]) for t in TARGETS}
            scores[method][label] = values
            row += f"{values['vocals']:>15.2f} / {values['accompaniment']:>5.2f}"
        print(row)
    if probed:
        print(f"\nprobes (dB): {'  '.join(COLUMNS)}")
    for method, by_track in rows.items():
        for name, values in by_track.items():
            print(f"{method:<14} {name:<30} {cells(values, COLUMNS)}")
        residue = statistics.median(values["karaoke_residue_db"] for values in by_track.values())
        print(f"{method:<14} {'median residue':<30} {residue:>10.1f}")
        scores[method]["probes"] = by_track
    if args.json:
        Path(args.json).write_text(json.dumps(scores, indent=1) + "\n")


if __name__ == "__main__":
    main()
