"""Paired tracks (mixture, vocals, accompaniment) for evaluation and training.

Two sources of tracks, loaded the same way with `load_track`:

- a folder dataset: `ROOT/<track>/{mixture,vocals,accompaniment}.<ext>` in any format
  `vocalsep.audio.io` reads, at any sample rate (`find_folder_tracks`);
- MUSDB18 / MUSDB18-HQ through the optional `musdb` package (`musdb_tracks`), where the
  accompaniment is the sum of the non-vocal stems (drums + bass + other).

`load_track` returns float32 `(channels, samples)` arrays at one sample rate, one channel count
and one length. The channel rule: every signal takes the mixture's channel count (the largest
reference channel count when there is no mixture file); a mono signal is copied to every
channel and a multichannel signal is averaged when the mixture is mono. Other mismatches (e.g.
stereo against 6 channels) are errors. Lengths may differ by up to `LENGTH_TOLERANCE_SECONDS`
(decoder padding, resampling round-off): all signals are cut to the shortest; a larger
difference is an error.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import VocalsepError
from .io import AUDIO_EXTENSIONS, check_audio, load_audio, open_audio, resample

__all__ = [
    "LENGTH_TOLERANCE_SECONDS",
    "MUSDB_SAMPLE_RATE",
    "STEMS",
    "MusdbTrack",
    "Track",
    "TrackError",
    "conform",
    "find_folder_tracks",
    "load_track",
    "musdb_tracks",
    "track_sample_rate",
]

STEMS = ("mixture", "vocals", "accompaniment")
REFERENCES = ("vocals", "accompaniment")
LENGTH_TOLERANCE_SECONDS = 0.05
MUSDB_SAMPLE_RATE = 44100
INSTALL_TRAIN = "pip install 'vocalsep[train]'"


class TrackError(VocalsepError):
    """A dataset or track cannot be used: missing folder, no tracks, missing or mismatched
    files, or an optional dataset package that is not installed."""


@dataclass(frozen=True)
class Track:
    """One track of a folder dataset: its name and stem -> file ("mixture", "vocals",
    "accompaniment"; "mixture" may be absent, it is then the sum of the two references)."""

    name: str
    paths: dict[str, Path]


@dataclass(frozen=True)
class MusdbTrack:
    """One MUSDB18 track, read through the `musdb` package (`track` is its `musdb.MultiTrack`).
    `paths` holds the file the mixture comes from, for messages."""

    name: str
    subset: str
    track: Any = field(repr=False, compare=False)
    rate: int = MUSDB_SAMPLE_RATE

    @property
    def paths(self) -> dict[str, Path]:
        return {"mixture": Path(self.track.path)}


def find_folder_tracks(root: str | os.PathLike) -> list[Track]:
    """Every subfolder of `root` holding `vocals.*` and `accompaniment.*` (and optionally
    `mixture.*`) audio files, sorted by name. Subfolders with none of these files are skipped;
    raises `TrackError` for a missing root, a root without tracks, a track missing a reference
    or holding two files for one stem."""
    root = Path(root)
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        raise TrackError(f"{root} {what}; give the folder that holds the track folders")
    tracks = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        paths = _stem_files(folder)
        if not paths:
            continue
        missing = [stem for stem in REFERENCES if stem not in paths]
        if missing:
            raise TrackError(
                f"{folder} has no {' or '.join(missing)} file; each track folder needs "
                "vocals.* and accompaniment.* (mixture.* is optional)"
            )
        tracks.append(Track(folder.name, paths))
    if not tracks:
        hint = " (it looks like one track: pass its parent folder)" if _stem_files(root) else ""
        raise TrackError(
            f"{root} holds no track folders{hint}; expected {root}/<track>/vocals.* and "
            "accompaniment.* (mixture.* optional) in any audio format"
        )
    return tracks


def _stem_files(folder: Path) -> dict[str, Path]:
    paths: dict[str, Path] = {}
    for file in sorted(folder.iterdir()):
        stem = file.stem.lower()
        if stem not in STEMS or file.suffix.lower() not in AUDIO_EXTENSIONS or not file.is_file():
            continue
        if stem in paths:
            raise TrackError(
                f"{folder} holds two {stem} files ({paths[stem].name}, {file.name}); keep one"
            )
        paths[stem] = file
    return paths


def musdb_tracks(
    root: str | os.PathLike,
    subset: str = "test",
    split: str | None = None,
    is_wav: bool = False,
) -> list[MusdbTrack]:
    """The tracks of MUSDB18 (`.stem.mp4` files) or, with `is_wav`, MUSDB18-HQ (wav folders)
    under `root/<subset>`. `split` ("train" / "valid") picks musdb's validation split of the
    train subset. Needs the optional `musdb` package."""
    try:
        import musdb
    except ImportError:
        raise TrackError(f"reading MUSDB18 needs the musdb package; {INSTALL_TRAIN}") from None
    root = Path(root)
    folder = root / subset
    if not folder.is_dir():
        raise TrackError(
            f"{folder} does not exist; give the MUSDB18 folder, the one holding train/ and test/"
        )
    try:
        database = musdb.DB(root=os.fspath(root), subsets=subset, split=split, is_wav=is_wav)
    except (RuntimeError, OSError, ValueError) as error:
        raise TrackError(f"cannot read MUSDB18 from {root} ({error})") from None
    tracks = [MusdbTrack(track.name, subset, track) for track in database.tracks]
    if not tracks:
        layout = "<track>/mixture.wav folders" if is_wav else "*.stem.mp4 files"
        raise TrackError(f"{folder} holds no MUSDB18 tracks ({layout})")
    return tracks


def track_sample_rate(track: Track | MusdbTrack) -> int:
    """The rate `load_track` uses by default: the mixture's (or, without a mixture file, the
    vocals'), read from the file header; 44100 for MUSDB18."""
    if isinstance(track, MusdbTrack):
        return int(track.rate or MUSDB_SAMPLE_RATE)
    with open_audio(track.paths.get("mixture", track.paths["vocals"])) as reader:
        return reader.info.sample_rate


def load_track(track: Track | MusdbTrack, sample_rate: int | None = None) -> dict[str, np.ndarray]:
    """Read a track: stem -> float32 `(channels, samples)` for "mixture", "vocals" and
    "accompaniment", all at `sample_rate` (default: `track_sample_rate(track)`), with one
    channel count and length (see the module docstring for the rules). Raises `TrackError`
    (or `AudioDecodeError` / `InvalidAudioError` for unreadable files)."""
    if isinstance(track, MusdbTrack):
        audio, rate = _load_musdb(track), int(track.rate or MUSDB_SAMPLE_RATE)
        audio = {stem: resample(value, rate, sample_rate or rate) for stem, value in audio.items()}
        return audio
    loaded = {stem: load_audio(path) for stem, path in track.paths.items() if stem in STEMS}
    for stem, (value, _) in loaded.items():
        check_audio(value, track.paths[stem])
    rate = sample_rate or loaded["mixture" if "mixture" in loaded else "vocals"][1]
    audio = {stem: resample(value, file_rate, rate) for stem, (value, file_rate) in loaded.items()}
    if "mixture" in audio:
        channels = audio["mixture"].shape[0]
    else:
        channels = max(audio[stem].shape[0] for stem in REFERENCES)
    audio = {
        stem: conform(value, channels, None, rate, f"{track.paths[stem]}")
        for stem, value in audio.items()
    }
    length = min(value.shape[-1] for value in audio.values())
    longest = max(audio, key=lambda stem: audio[stem].shape[-1])
    shortest = min(audio, key=lambda stem: audio[stem].shape[-1])
    if audio[longest].shape[-1] - length > LENGTH_TOLERANCE_SECONDS * rate:
        raise TrackError(
            f"track {track.name}: {longest} is {audio[longest].shape[-1] / rate:.2f} s long but "
            f"{shortest} only {length / rate:.2f} s; the files of a track must have one length"
        )
    audio = {stem: value[:, :length] for stem, value in audio.items()}
    if "mixture" not in audio:
        audio["mixture"] = audio["vocals"] + audio["accompaniment"]
    return {stem: np.ascontiguousarray(audio[stem], dtype=np.float32) for stem in STEMS}


def conform(
    audio: np.ndarray,
    channels: int,
    length: int | None,
    sample_rate: int,
    source: str,
) -> np.ndarray:
    """Bring `(channels', samples')` audio to `channels` (mono is copied to every channel; any
    channel count is averaged to mono) and, when `length` is given, to `length` samples (cut or
    zero-padded, if within `LENGTH_TOLERANCE_SECONDS`). Raises `TrackError` naming `source`."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[None]
    if audio.shape[0] != channels:
        if audio.shape[0] == 1:
            audio = np.repeat(audio, channels, axis=0)
        elif channels == 1:
            audio = audio.mean(axis=0, keepdims=True)
        else:
            raise TrackError(
                f"{source} has {audio.shape[0]} channels but its track has {channels}; only "
                "mono is converted to (or from) another channel count"
            )
    if length is not None and audio.shape[-1] != length:
        if abs(audio.shape[-1] - length) > LENGTH_TOLERANCE_SECONDS * sample_rate:
            raise TrackError(
                f"{source} is {audio.shape[-1] / sample_rate:.2f} s long but the reference is "
                f"{length / sample_rate:.2f} s; estimates must match their track's length"
            )
        if audio.shape[-1] > length:
            audio = audio[:, :length]
        else:
            audio = np.pad(audio, [(0, 0), (0, length - audio.shape[-1])])
    return audio


def _load_musdb(track: MusdbTrack) -> dict[str, np.ndarray]:
    """musdb arrays are `(samples, channels)` float64; decoding goes through stempeg/ffmpeg."""
    try:
        audio = {
            "mixture": track.track.audio,
            "vocals": track.track.targets["vocals"].audio,
            "accompaniment": track.track.targets["accompaniment"].audio,
        }
    except KeyError as error:
        raise TrackError(f"MUSDB18 track {track.name} has no {error} stem") from None
    except (RuntimeError, OSError, ValueError) as error:
        reason = " ".join(str(error).split())[:200]
        raise TrackError(f"cannot decode MUSDB18 track {track.name} ({reason})") from None
    for stem, value in audio.items():
        check_audio(value, f"{track.paths['mixture']} ({stem})")
    return {
        stem: np.ascontiguousarray(np.asarray(value).T, dtype=np.float32)
        for stem, value in audio.items()
    }
