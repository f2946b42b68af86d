"""BSSEval v4 evaluation as in SiSEC 2018 and the MUSDB18 papers, plus floor/ceiling baselines.

Scores come from `museval` (BSSEval v4: time-invariant distortion filters over the whole track,
metrics on 1 s windows with a 1 s hop). For each track, vocals and accompaniment are scored
together (each is the other's interference, as `museval.eval_mus_track` does for the
vocals/accompaniment task); a track's score is the median over its windows, and a dataset's
score the median over tracks ("median of medians").

Windows that cannot be scored are NaN and left out of both medians, as museval and SiSEC do:
museval marks every window in which a reference or an estimate is digital silence (its channel
sum is zero at every sample). A reference or estimate that is silent for the whole track
(museval refuses those outright) gets all-NaN windows by the same rule. A track with no scored
window is left out of the median over tracks. Medians are taken of the values
`museval.evaluate` returns; its JSON writer additionally rounds to 1e-5 dB and stores an
infinite ratio (an exact estimate) as NaN, which only an exact estimate can tell apart.

Estimates are brought to their reference's shape first: a mono estimate is copied to every
channel (averaged when the reference is mono) and lengths may differ by at most
`tracks.LENGTH_TOLERANCE_SECONDS` (cut or zero-padded, as museval pads).

Baselines run through the same code: "mixture" (the mixture as every estimate, the floor) and
"irm" (oracle ideal ratio mask, the ceiling of mask-based separation: sigsep's IRM1,
`|S_target| / sum |S_sources|` on the project STFT with n_fft 4096 and hop 1024 at the track's
own sample rate). Per-track JSON follows museval's schema (`museval.TrackStore`), so
`museval.EvalStore().add_eval_dir(OUTPUT)` and the other sigsep tools read it.

For quick validation during training use `vocalsep.audio.metrics` instead: its SDR is global,
not windowed, and not comparable with these numbers.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.errors import OutputExistsError, VocalsepError
from ..core.files import atomic_file
from .io import AUDIO_EXTENSIONS, check_audio, load_audio, resample
from .separator import Separator
from .stft import STFT, STFTConfig
from .tracks import INSTALL_TRAIN, MusdbTrack, Track, conform, load_track, track_sample_rate

__all__ = [
    "BASELINES",
    "METRICS",
    "TARGETS",
    "EstimatesFolder",
    "EvaluationError",
    "EvaluationResult",
    "TrackResult",
    "bss_eval",
    "evaluate_tracks",
    "irm_estimates",
    "mixture_estimates",
    "score_track",
    "separator_estimator",
]

TARGETS = ("vocals", "accompaniment")
METRICS = ("SDR", "SIR", "SAR", "ISR")
BASELINES = ("irm", "mixture")
IRM_STFT = STFTConfig(n_fft=4096, hop_length=1024)
WINDOW_SECONDS = 1.0
HOP_SECONDS = 1.0
MUSDB_TEST_TRACKS = 50

# (track name, loaded track audio, sample rate) -> target -> (channels, samples) estimate
Estimator = Callable[[str, dict[str, np.ndarray], int], dict[str, np.ndarray]]
ProgressFn = Callable[[int, int, "str | None"], None]


class EvaluationError(VocalsepError):
    """Evaluation cannot run: bad options, missing estimates, museval missing, unwritable output."""


def _museval() -> Any:
    try:
        import museval
    except ImportError:
        raise EvaluationError(
            f"BSSEval v4 scores need the museval package; {INSTALL_TRAIN}"
        ) from None
    return museval


# -- scoring ---------------------------------------------------------------------------------


def _silent(source: np.ndarray) -> bool:
    """museval's test for a silent source `(channels, samples)`: zero channel sum everywhere."""
    return bool(np.all(source.sum(axis=0) == 0))


def _num_windows(length: int, window: int, hop: int) -> int:
    """museval's framing: full windows only, or one window when the signal is shorter."""
    return (length - window + hop) // hop if window < length else 1


def bss_eval(
    references: dict[str, np.ndarray],
    estimates: dict[str, np.ndarray],
    sample_rate: int,
    *,
    window_seconds: float = WINDOW_SECONDS,
    hop_seconds: float = HOP_SECONDS,
) -> dict[str, dict[str, np.ndarray]]:
    """BSSEval v4 per window: target -> metric -> `(windows,)` float64 (NaN: not scored).

    references, estimates: target -> `(channels, samples)`, one shape for all. All targets
    are scored together (each one is interference for the others), as `museval.evaluate`.
    """
    museval = _museval()
    targets = list(references)
    shapes = {value.shape for value in (*references.values(), *estimates.values())}
    if len(shapes) != 1 or set(estimates) != set(targets):
        raise EvaluationError(
            f"references and estimates must share targets and one (channels, samples) shape, "
            f"got {sorted(shapes)}"
        )
    window = max(1, round(window_seconds * sample_rate))
    hop = max(1, round(hop_seconds * sample_rate))
    length = next(iter(shapes))[-1]
    if any(_silent(references[t]) or _silent(estimates[t]) for t in targets):
        empty = np.full(_num_windows(length, window, hop), np.nan)
        return {target: {metric: empty.copy() for metric in METRICS} for target in targets}
    # museval wants (sources, samples, channels)
    stacked_references = np.stack([references[t].T for t in targets]).astype(np.float64)
    stacked_estimates = np.stack([estimates[t].T for t in targets]).astype(np.float64)
    sdr, isr, sir, sar = museval.evaluate(
        stacked_references, stacked_estimates, win=window, hop=hop
    )
    values = {"SDR": sdr, "SIR": sir, "SAR": sar, "ISR": isr}
    return {
        target: {metric: np.asarray(values[metric][i], np.float64) for metric in METRICS}
        for i, target in enumerate(targets)
    }


@dataclass(frozen=True, eq=False)
class TrackResult:
    """The scores of one track: per-window values as `museval.evaluate` returns them, and
    museval's JSON of the kept targets."""

    name: str
    sample_rate: int
    frames: dict[str, dict[str, np.ndarray]]  # target -> metric -> (windows,), NaN: skipped
    json: str  # museval's own JSON for this track (museval.TrackStore)

    @property
    def windows(self) -> int:
        return len(next(iter(next(iter(self.frames.values())).values())))

    def scored_windows(self, target: str) -> int:
        return int((~np.isnan(self.frames[target]["SDR"])).sum())

    @property
    def medians(self) -> dict[str, dict[str, float]]:
        """target -> metric -> median over scored windows (NaN when none was scored)."""
        return {
            target: {metric: _nanmedian(values) for metric, values in metrics.items()}
            for target, metrics in self.frames.items()
        }


def _nanmedian(values: np.ndarray | Sequence[float]) -> float:
    """Median without the NaN values (+inf, an exact estimate, counts); NaN if none is left."""
    values = np.asarray(values, np.float64)
    values = values[~np.isnan(values)]
    return float(np.median(values)) if values.size else math.nan


def score_track(
    name: str,
    references: dict[str, np.ndarray],
    estimates: dict[str, np.ndarray],
    sample_rate: int,
    *,
    targets: Sequence[str] = TARGETS,
) -> TrackResult:
    """Score one track with `bss_eval`; `targets` are kept, with museval's JSON.

    `frames` holds museval's values as computed; the JSON holds them as museval stores them
    (rounded to 1e-5 dB, and an infinite ratio, i.e. an exact estimate, stored as NaN)."""
    museval = _museval()
    scores = bss_eval(references, estimates, sample_rate)
    store = museval.TrackStore(track_name=name, win=WINDOW_SECONDS, hop=HOP_SECONDS)
    for target in targets:
        store.add_target(
            target_name=target,
            values={metric: scores[target][metric].tolist() for metric in METRICS},
        )
    store.validate()  # museval's JSON schema
    return TrackResult(
        name, sample_rate, {target: scores[target] for target in targets}, store.json
    )


# -- results ---------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class EvaluationResult:
    """Scores of every track and the median over tracks of the per-track medians."""

    method: str  # e.g. "model model.ckpt", "baseline irm", "estimates DIR"
    dataset: str  # e.g. "folder ../data/dev", "MUSDB18 test (ROOT)"
    targets: tuple[str, ...]
    tracks: tuple[TrackResult, ...]
    comparable_to_musdb_test: bool = False  # all 50 MUSDB18 test tracks were scored

    @property
    def summary(self) -> dict[str, dict[str, float]]:
        """target -> metric -> median over tracks of the track medians (tracks without a
        scored window left out, as pandas / museval.EvalStore do)."""
        return {
            target: {
                metric: _nanmedian([track.medians[target][metric] for track in self.tracks])
                for metric in METRICS
            }
            for target in self.targets
        }

    def scored_tracks(self, target: str) -> int:
        return sum(track.scored_windows(target) > 0 for track in self.tracks)

    def table(self) -> str:
        """A plain-text table: one row per track and target, then the median of medians."""
        label = f"median of {len(self.tracks)} tracks"
        width = min(max([len(label)] + [len(track.name) for track in self.tracks]), 48)
        target_width = max(len(target) for target in self.targets)
        header = f"{'track':<{width}}  {'target':<{target_width}}"
        header += "".join(f"{metric:>8}" for metric in METRICS) + "  windows"
        lines = [header, "-" * len(header)]
        for track in self.tracks:
            medians = track.medians
            for i, target in enumerate(self.targets):
                name = _clip(track.name, width) if i == 0 else ""
                row = f"{name:<{width}}  {target:<{target_width}}"
                row += "".join(_cell(medians[target][metric]) for metric in METRICS)
                row += f"  {track.scored_windows(target)}/{track.windows}"
                lines.append(row)
        lines.append("-" * len(header))
        summary = self.summary
        for i, target in enumerate(self.targets):
            name = label if i == 0 else ""
            row = f"{name:<{width}}  {target:<{target_width}}"
            row += "".join(_cell(summary[target][metric]) for metric in METRICS)
            row += f"  {self.scored_tracks(target)}/{len(self.tracks)} tracks"
            lines.append(row)
        return "\n".join(lines)

    def describe(self) -> str:
        """One line saying what was measured and how."""
        return (
            f"BSSEval v4 (museval), {WINDOW_SECONDS:g} s windows, median over windows then "
            f"over tracks, in dB; {self.method} on {self.dataset}"
        )

    def comparison(self) -> str:
        """This result next to published MUSDB18 numbers (see `published.format_comparison`)."""
        from .published import format_comparison

        return format_comparison(self)

    def to_csv(self) -> str:
        """CSV text: a "track" row per track and target, then "overall" rows (medians)."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["scope", "track", "target", *METRICS, "scored_windows", "windows"])
        for track in self.tracks:
            medians = track.medians
            for target in self.targets:
                values = [_csv_number(medians[target][metric]) for metric in METRICS]
                scored = track.scored_windows(target)
                writer.writerow(["track", track.name, target, *values, scored, track.windows])
        summary = self.summary
        for target in self.targets:
            values = [_csv_number(summary[target][metric]) for metric in METRICS]
            writer.writerow(["overall", "", target, *values, "", ""])
        return buffer.getvalue()


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _cell(value: float) -> str:
    return f"{'-':>8}" if math.isnan(value) else f"{value:8.2f}"


def _csv_number(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.4f}"


# -- estimates -------------------------------------------------------------------------------


def mixture_estimates(audio: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The floor: the mixture `(channels, samples)` as the estimate of every target."""
    return {target: audio["mixture"].copy() for target in TARGETS}


def irm_estimates(
    audio: dict[str, np.ndarray], *, power: float = 1.0, stft: STFTConfig = IRM_STFT
) -> dict[str, np.ndarray]:
    """The oracle ideal ratio mask: `|S_t|^p / sum_s |S_s|^p` from the true sources, applied to
    the mixture's STFT (`power` 1: sigsep's IRM1, 2: IRM2 / Wiener-like). `audio` holds
    "mixture", "vocals" and "accompaniment" as `(channels, samples)`; channels are processed
    one at a time (to bound memory on full songs). Returns target -> `(channels, samples)`."""
    transform = STFT(stft)
    length = audio["mixture"].shape[-1]
    eps = float(np.finfo(np.float32).eps)
    estimates: dict[str, list[np.ndarray]] = {target: [] for target in TARGETS}
    for channel in range(audio["mixture"].shape[0]):
        mixture = transform(torch.from_numpy(np.ascontiguousarray(audio["mixture"][channel])))
        models = {
            target: transform(torch.from_numpy(np.ascontiguousarray(audio[target][channel])))
            .abs()
            .pow(power)
            for target in TARGETS
        }
        total = sum(models.values()) + eps
        for target in TARGETS:
            estimate = transform.inverse(mixture * (models[target] / total), length)
            estimates[target].append(estimate.numpy())
    return {target: np.stack(values).astype(np.float32) for target, values in estimates.items()}


def separator_estimator(separator: Separator) -> Estimator:
    """Estimates from a model: the Separator's vocals and accompaniment for the mixture."""
    if "vocals" not in separator.stems:
        raise EvaluationError(
            f"this model separates {', '.join(separator.stems)}, not vocals; "
            "evaluation needs a vocals model"
        )

    def estimate(name: str, audio: dict[str, np.ndarray], sample_rate: int):
        stems = separator.separate(audio["mixture"], sample_rate)
        return {target: stems[target] for target in TARGETS}

    return estimate


class EstimatesFolder:
    """Stems already on disk: `root/<track>/{vocals,accompaniment}.<ext>` (or museval's
    `root/<subset>/<track>/...`), any audio format and sample rate (resampled to the track's
    rate, channels and length conformed)."""

    def __init__(self, root: str | os.PathLike, subset: str | None = None) -> None:
        self.root = Path(root)
        self.subset = subset
        if not self.root.is_dir():
            raise EvaluationError(f"{self.root} does not exist; check --estimates")

    def paths(self, name: str) -> dict[str, Path]:
        """target -> estimate file of track `name`; raises `EvaluationError` when one is
        missing or ambiguous."""
        folder = self.root / name
        if not folder.is_dir() and self.subset and (self.root / self.subset / name).is_dir():
            folder = self.root / self.subset / name
        found: dict[str, list[Path]] = {target: [] for target in TARGETS}
        if folder.is_dir():
            for file in sorted(folder.iterdir()):
                if file.stem.lower() in found and file.suffix.lower() in AUDIO_EXTENSIONS:
                    found[file.stem.lower()].append(file)
        for target, files in found.items():
            if not files:
                raise EvaluationError(
                    f"no {target} estimate for track {name}: expected {folder}/{target}.wav "
                    "(or another audio format)"
                )
            if len(files) > 1:
                raise EvaluationError(
                    f"{folder} holds {len(files)} {target} estimates "
                    f"({', '.join(f.name for f in files)}); keep one"
                )
        return {target: files[0] for target, files in found.items()}

    def __call__(self, name: str, audio: dict[str, np.ndarray], sample_rate: int):
        estimates = {}
        for target, path in self.paths(name).items():
            value, rate = load_audio(path)
            check_audio(value, path)
            estimates[target] = resample(value, rate, sample_rate)
        return estimates


# -- running -----------------------------------------------------------------------------------


def evaluate_tracks(
    tracks: Sequence[Track | MusdbTrack],
    estimate: Estimator,
    *,
    method: str,
    dataset: str,
    targets: Sequence[str] = TARGETS,
    output_dir: str | os.PathLike | None = None,
    subset: str = "test",
    csv_path: str | os.PathLike | None = None,
    overwrite: bool = False,
    comparable_to_musdb_test: bool = False,
    progress: ProgressFn | None = None,
) -> EvaluationResult:
    """Load, estimate and score every track at its own sample rate.

    With `output_dir`, each track's museval JSON is written as soon as it is scored to
    `output_dir/<subset>/<track>.json` (museval's layout); with `csv_path` the table is written
    at the end. Files are written atomically and never replaced unless `overwrite` (checked
    before any work). `progress(done, total, current track or None)` reports progress."""
    targets = tuple(targets)
    json_paths = {
        track.name: Path(output_dir) / subset / f"{track.name}.json"
        for track in tracks
        if output_dir is not None
    }
    for path in [*json_paths.values(), *([Path(csv_path)] if csv_path else [])]:
        if path.is_dir():
            raise EvaluationError(f"{path} is a directory; choose another output name")
        if path.exists() and not overwrite:
            raise OutputExistsError(path)
    results = []
    for done, track in enumerate(tracks):
        if progress:
            progress(done, len(tracks), track.name)
        sample_rate = track_sample_rate(track)
        audio = load_track(track, sample_rate)
        references = {target: audio[target] for target in TARGETS}
        shape = references["vocals"].shape
        estimates = {
            target: conform(
                value, shape[0], shape[1], sample_rate, f"{target} estimate of track {track.name}"
            )
            for target, value in estimate(track.name, audio, sample_rate).items()
        }
        result = score_track(track.name, references, estimates, sample_rate, targets=targets)
        if track.name in json_paths:
            write_atomic(json_paths[track.name], result.json)
        results.append(result)
    if progress:
        progress(len(tracks), len(tracks), None)
    evaluation = EvaluationResult(
        method, dataset, targets, tuple(results), comparable_to_musdb_test
    )
    if csv_path:
        write_atomic(Path(csv_path), evaluation.to_csv())
    return evaluation


def write_atomic(path: Path, text: str) -> Path:
    """Write `text` to a temporary file beside `path` and rename it onto `path`."""
    try:
        with atomic_file(path) as temp:
            temp.write_text(text, encoding="utf-8")
    except OSError as error:
        raise EvaluationError(
            f"cannot write {path} ({error.strerror or error}); choose another output location"
        ) from None
    return path
