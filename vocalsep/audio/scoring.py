"""What `vocalsep evaluate` scores: a model, a baseline or stems on disk, on which tracks of
which dataset (the BSSEval v4 scoring itself is in `evaluation`)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from ..core.errors import OptionError
from . import evaluation, tracks
from .separator import Separator


def evaluate(
    root: str | os.PathLike,
    *,
    dataset: str = "folder",
    subset: str = "test",
    model: str | os.PathLike | Separator | None = None,
    baseline: str | None = None,
    estimates: str | os.PathLike | None = None,
    targets: Sequence[str] = ("vocals", "accompaniment"),
    names: Sequence[str] = (),
    max_tracks: int | None = None,
    output_dir: str | os.PathLike | None = None,
    csv: str | os.PathLike | None = None,
    overwrite: bool = False,
    device: str = "auto",
    wiener: int = 0,
    progress: Callable[[int, int, str | None], None] | None = None,
):
    """BSSEval v4 scores (museval; SDR, SIR, SAR, ISR on 1 s windows, median over windows then
    over tracks) of exactly one of: a `model` (shipped name, checkpoint path or `Separator`),
    a `baseline` ("irm" oracle ratio mask or "mixture"), or `estimates` already on disk
    (`estimates/<track>/{vocals,accompaniment}.*`, or museval's `estimates/<subset>/<track>/`).

    `dataset` "folder": `root/<track>/{mixture,vocals,accompaniment}.*`; "musdb18": MUSDB18
    (or MUSDB18-HQ wav folders) `root/<subset>`. `names` keeps tracks whose name contains one
    of them (case-insensitive), `max_tracks` the first N. Per-track museval JSON goes to
    `output_dir/<subset>/<track>.json`, the table to `csv`. Returns an
    `audio.evaluation.EvaluationResult`; raises `VocalsepError` subclasses with one-line
    messages.
    """

    options = {"model": model, "baseline": baseline, "estimates": estimates}
    chosen = [option for option, value in options.items() if value is not None]
    if len(chosen) != 1:
        given = f"got {' and '.join(chosen)}" if chosen else "got none"
        raise OptionError(
            f"give exactly one of model, baseline or estimates to score ({given})",
            ("model", "baseline", "estimates"),
        )
    unknown = [target for target in targets if target not in evaluation.TARGETS]
    if unknown or not targets:
        raise OptionError(
            f"unknown target(s) {', '.join(unknown) or '(none given)'}; "
            f"choose from {', '.join(evaluation.TARGETS)}",
            ("targets",),
        )
    if baseline is not None and baseline not in evaluation.BASELINES:
        raise OptionError(
            f"unknown baseline {baseline!r}; choose from {', '.join(evaluation.BASELINES)}",
            ("baseline",),
        )
    if max_tracks is not None and max_tracks < 1:
        raise OptionError(f"the number of tracks must be at least 1, got {max_tracks}", ("tracks",))

    if dataset == "folder":
        found = tracks.find_folder_tracks(root)
        label = f"folder {root}"
    elif dataset == "musdb18":
        is_wav = not any((Path(root) / subset).glob("*.stem.mp4"))
        found = tracks.musdb_tracks(root, subset=subset, is_wav=is_wav)
        label = f"MUSDB18{'-HQ' if is_wav else ''} {subset} ({root})"
    else:
        raise evaluation.EvaluationError(f"unknown dataset {dataset!r}; use folder or musdb18")
    total = len(found)
    if names:
        wanted = [name.lower() for name in names]
        found = [track for track in found if any(name in track.name.lower() for name in wanted)]
        if not found:
            raise evaluation.EvaluationError(
                f"no track of {root} matches {', '.join(names)}; check the track names"
            )
    found = found[:max_tracks] if max_tracks else found
    if len(found) < total:
        label += f", {len(found)} of {total} tracks"
    comparable = (
        dataset == "musdb18" and subset == "test" and len(found) == evaluation.MUSDB_TEST_TRACKS
    )

    if model is not None:
        separator = (
            model
            if isinstance(model, Separator)
            else Separator.from_pretrained(model, device=device, wiener_iterations=wiener)
        )
        estimate = evaluation.separator_estimator(separator)
        method = f"model {model if not isinstance(model, Separator) else 'Separator'}"
    elif baseline == "irm":
        estimate = lambda name, audio, rate: evaluation.irm_estimates(audio)  # noqa: E731
        method = "baseline irm (oracle ratio mask, STFT 4096/1024)"
    elif baseline == "mixture":
        estimate = lambda name, audio, rate: evaluation.mixture_estimates(audio)  # noqa: E731
        method = "baseline mixture"
    else:
        folder = evaluation.EstimatesFolder(estimates, subset)
        for track in found:  # fail before the slow part, not after an hour of scoring
            folder.paths(track.name)
        estimate = folder
        method = f"estimates {estimates}"
    return evaluation.evaluate_tracks(
        found,
        estimate,
        method=method,
        dataset=label,
        targets=targets,
        output_dir=output_dir,
        subset=subset,
        csv_path=csv,
        overwrite=overwrite,
        comparable_to_musdb_test=comparable,
        progress=progress,
    )
