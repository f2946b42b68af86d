"""Source audio for training: the files of a source folder, their groups and train /
validation split, and pools of decoded audio to draw excerpts from.

Decoding is slow, so every source file is decoded and resampled once into a float16 `.npy`
cache on disk (memory-mapped: the page cache is shared by DataLoader workers and RAM stays
bounded), or kept in RAM when no cache folder is given.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.config import Config
from ..core.errors import ConfigError, VocalsepError
from ..core.files import atomic_file
from .io import AUDIO_EXTENSIONS, load_audio, resample


class DatasetError(VocalsepError):
    """A dataset cannot be built (missing folder, no audio, bad split...). `path`: the missing
    folder, where that is the reason (the command line names the recipe's data maker with it)."""

    def __init__(self, message: str, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path


# -- source files, groups and splits ----------------------------------------------------------


@dataclass(frozen=True)
class SourceSpec(Config):
    """A folder of isolated recordings for one role (vocals or accompaniment).

    path:              folder, searched recursively for audio files.
    group_depth:       a file's group (singer, corpus or track) is the first `group_depth`
                       parts of its path below `path`, without extension; train and validation
                       are split by group, never by excerpt of one recording.
    validation_groups: groups held out for validation.
    validation_share:  share of the other groups also held out, picked by a stable hash.
                       A folder with neither is training material only (it adds nothing to
                       the validation mixtures, as long as another folder of its role does).
    weight:            relative probability of drawing from this folder (vs. other specs of the
                       same role); within a folder every second of audio is equally likely.
    """

    path: str = ""
    group_depth: int = 1
    validation_groups: tuple[str, ...] = ()
    validation_share: float = 0.0
    weight: float = 1.0

    def __post_init__(self) -> None:
        if not self.path:
            raise ConfigError("a source needs a path")
        if self.group_depth < 1 or not 0 <= self.validation_share < 1 or self.weight <= 0:
            raise ConfigError(
                f"source {self.path}: need group_depth >= 1, 0 <= validation_share < 1, weight > 0"
            )


def audio_files(folder: str | os.PathLike) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise DatasetError(f"{folder} {what}; check the data path in the config", folder)
    files = sorted(
        path
        for path in folder.rglob("*")
        if path.suffix.lower() in AUDIO_EXTENSIONS and path.is_file()
    )
    if not files:
        raise DatasetError(f"{folder} holds no audio files")
    return files


def group_of(path: Path, root: Path, depth: int) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return "/".join(parts[:depth])


def _hash_share(name: str) -> float:
    return zlib.crc32(name.encode()) / 2**32


def split_files(spec: SourceSpec, split: str) -> list[Path]:
    """The files of `spec` in `split` ("train" or "validation")."""
    root = Path(spec.path)
    files = audio_files(root)
    groups = {path: group_of(path, root, spec.group_depth) for path in files}
    unknown = set(spec.validation_groups) - set(groups.values())
    if unknown:
        raise DatasetError(
            f"{root}: validation group(s) {', '.join(sorted(unknown))} not found "
            f"(groups: {', '.join(sorted(set(groups.values()))[:12])} ...)"
        )

    def held_out(group: str) -> bool:
        return group in spec.validation_groups or _hash_share(group) < spec.validation_share

    chosen = [path for path in files if held_out(groups[path]) == (split == "validation")]
    if not chosen:
        raise DatasetError(f"{root}: no files left for the {split} split; adjust the split")
    return chosen


# -- decoded audio pools -----------------------------------------------------------------------


def _cache_key(path: Path, sample_rate: int) -> str:
    stat = path.stat()
    text = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{sample_rate}|v1"
    return hashlib.sha1(text.encode()).hexdigest()


def cached_array(cache_dir: Path | None, key: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
    """`compute()`, or its copy memory-mapped from `cache_dir/<sha1(key)>.npy`, which is written
    once (atomically: temp file, then rename) when `cache_dir` is given."""
    if cache_dir is None:
        return compute()
    target = cache_dir / f"{hashlib.sha1(key.encode()).hexdigest()}.npy"
    if not target.exists():
        array = compute()
        with atomic_file(target) as temp, open(temp, "wb") as file:
            np.save(file, array)
    return np.load(target, mmap_mode="r")


def decode_cached(path: Path, sample_rate: int, cache_dir: Path | None) -> np.ndarray:
    """`path` decoded at `sample_rate` as float16 `(channels <= 2, samples)`; memory-mapped
    from `cache_dir` when given (the key covers the file's size and modification time)."""

    def decode() -> np.ndarray:
        audio, rate = load_audio(path)
        return resample(np.nan_to_num(audio[:2]), rate, sample_rate).astype(np.float16)

    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{sample_rate}|v1"
    return cached_array(cache_dir, key, decode)


class AudioPool:
    """Decoded recordings of one role, drawn by folder weight, then by length."""

    def __init__(
        self,
        specs: Sequence[SourceSpec],
        split: str,
        sample_rate: int,
        cache_dir: Path | None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        if not specs:
            raise DatasetError("no source folders configured")
        self.sample_rate = sample_rate
        self.groups: list[list[np.ndarray]] = []
        self.names: list[list[str]] = []
        weights = []
        if split == "validation":
            # A folder that holds nothing out (no validation_groups, validation_share 0) is
            # training material only; the other folders make up the validation mixtures.
            specs = [s for s in specs if s.validation_groups or s.validation_share > 0] or specs
        for spec in specs:
            files = split_files(spec, split)
            arrays = []
            for path in files:
                if progress is not None:
                    progress(str(path))
                audio = decode_cached(path, sample_rate, cache_dir)
                if audio.shape[-1] > 0:
                    arrays.append(audio)
            if arrays:
                self.groups.append(arrays)
                self.names.append([str(path) for path in files])
                weights.append(spec.weight)
        if not self.groups:
            raise DatasetError(f"no decodable audio in {', '.join(spec.path for spec in specs)}")
        self.spec_weights = np.asarray(weights) / np.sum(weights)
        self.file_weights = []
        for arrays in self.groups:
            lengths = np.asarray([array.shape[-1] for array in arrays], dtype=np.float64)
            self.file_weights.append(lengths / lengths.sum())

    @property
    def seconds(self) -> float:
        return sum(a.shape[-1] for arrays in self.groups for a in arrays) / self.sample_rate

    def excerpt(self, rng: np.random.Generator, length: int) -> np.ndarray:
        """A random float32 excerpt `(channels, length)`; short files are zero-padded."""
        spec = rng.choice(len(self.groups), p=self.spec_weights)
        arrays = self.groups[spec]
        audio = arrays[rng.choice(len(arrays), p=self.file_weights[spec])]
        total = audio.shape[-1]
        if total <= length:
            start = 0
            piece = np.asarray(audio, dtype=np.float32)
            offset = rng.integers(0, length - total + 1)
            return np.pad(piece, ((0, 0), (offset, length - total - offset)))
        start = int(rng.integers(0, total - length + 1))
        return np.asarray(audio[:, start : start + length], dtype=np.float32)
