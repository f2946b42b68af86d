"""Training and validation examples from paired folders `root/<track>/{mixture,vocals,
accompaniment}.*` (e.g. `../shared/data/audio/dev`), read through `tracks.py`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .augment import fit_length
from .datasets import Example, ExampleSource, ExcerptSpec, FolderConfig, _salted_rng
from .pools import DatasetError, _hash_share
from .tracks import conform, find_folder_tracks, load_track


def _example(stems: dict[str, np.ndarray], channels: int) -> Example:
    """Mono is copied to every channel; stereo is averaged to mono when one channel is asked."""
    vocals = conform(stems["vocals"], channels, None, 1, "vocals")
    accompaniment = conform(stems["accompaniment"], channels, None, 1, "accompaniment")
    # Training needs mixture == vocals + accompaniment exactly (the residual stem relies on it).
    return {"mixture": vocals + accompaniment, "vocals": vocals, "accompaniment": accompaniment}


def full_tracks(
    root: str | Path, *, sample_rate: int, channels: int, max_seconds: float = 0.0
) -> list[Example]:
    """Every track of a paired folder at `sample_rate` with `channels` channels; with
    `max_seconds`, the middle `max_seconds` of each."""
    examples = []
    for track in find_folder_tracks(root):
        example = _example(load_track(track, sample_rate), channels)
        length = example["mixture"].shape[-1]
        if max_seconds > 0 and length > max_seconds * sample_rate:
            keep = round(max_seconds * sample_rate)
            start = (length - keep) // 2
            example = {key: value[:, start : start + keep] for key, value in example.items()}
        examples.append(example)
    return examples


class PairedExcerpts(ExampleSource):
    """Index -> a random excerpt of a random track (training: random gain and channel swap)."""

    def __init__(self, config: FolderConfig, spec: ExcerptSpec) -> None:
        super().__init__(spec)
        split = spec.split
        if not config.root:
            raise DatasetError("data.folder.root is not set; point it at a folder of tracks")
        tracks = find_folder_tracks(config.root)
        names = {track.name for track in tracks}
        unknown = set(config.validation_tracks) - names
        if unknown:
            raise DatasetError(f"validation track(s) not found: {', '.join(sorted(unknown))}")

        def held_out(name: str) -> bool:
            return name in config.validation_tracks or _hash_share(name) < config.validation_share

        chosen = [track for track in tracks if held_out(track.name) == (split == "validation")]
        if not chosen:
            raise DatasetError(f"{config.root}: no tracks left for the {split} split")
        self.names = [track.name for track in chosen]
        self.tracks = []
        for track in chosen:
            if spec.progress is not None:
                spec.progress(track.name)
            example = _example(load_track(track, spec.sample_rate), spec.channels)
            self.tracks.append({key: value.astype(np.float16) for key, value in example.items()})

    def __getitem__(self, index: int) -> Example:
        rng = _salted_rng(self.seed, f"folder-{self.split}", int(index))
        track = self.tracks[int(rng.integers(len(self.tracks)))]
        total = track["vocals"].shape[-1]
        start = int(rng.integers(0, max(1, total - self.length + 1)))
        stems = {
            key: fit_length(track[key][:, start : start + self.length], self.length)
            for key in ("vocals", "accompaniment")
        }
        if self.split == "train":
            for key in stems:
                stems[key] = stems[key] * np.float32(rng.uniform(0.5, 1.2))
            if stems["vocals"].shape[0] == 2 and rng.random() < 0.5:
                stems = {key: np.ascontiguousarray(value[::-1]) for key, value in stems.items()}
        return _example(stems, stems["vocals"].shape[0])
