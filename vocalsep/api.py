"""The public Python API of vocalsep.

>>> import vocalsep
>>> separator = vocalsep.Separator.from_pretrained("my_model.ckpt")
>>> stems = separator.separate(waveform, 44100)          # waveform: (channels, samples)
>>> stems["vocals"].shape == waveform.shape
True
>>> vocalsep.separate_file("song.mp3", "separated", separator=separator)
{'vocals': PosixPath('separated/song/vocals.wav'), 'accompaniment': ...}
"""

from __future__ import annotations

import contextlib
import os
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .audio.errors import AudioWriteError, InvalidAudioError
from .audio.io import AUDIO_EXTENSIONS, AudioWriter, open_audio
from .audio.separator import Separator
from .core.errors import VocalsepError

__all__ = [
    "Job",
    "Separator",
    "load_separator",
    "plan_jobs",
    "predict_mask",
    "separate_file",
]

DEFAULT_FILENAME = "{track}/{stem}.{ext}"
FORMATS = ("wav", "flac")
BIT_DEPTHS = ("16", "24", "32f")
BLOCK_SECONDS = 10.0


class OutputError(VocalsepError):
    """Outputs cannot be planned: bad template, clash with an input or with another output."""


def load_separator(
    model: str | os.PathLike | None = None, *, device: str = "auto", **options
) -> Separator:
    """A `Separator` for a shipped model name, a checkpoint path or (None) the default model."""
    return Separator.from_pretrained(model, device=device, **options)


def predict_mask(
    magnitude: torch.Tensor, model: str | os.PathLike | Separator | None = None
) -> torch.Tensor:
    """Soft masks `(targets, channels, bins, frames)` for a magnitude `(channels, bins, frames)`
    computed with the model's STFT (see `Separator.predict_mask`)."""
    separator = model if isinstance(model, Separator) else load_separator(model, device="cpu")
    return separator.predict_mask(magnitude)


def _track_name(path: Path) -> str:
    name = path.name
    for suffix in (".stem.mp4", path.suffix):
        if suffix and name.lower().endswith(suffix):
            return name[: -len(suffix)] or name
    return name


def output_paths(
    path: str | os.PathLike,
    out_dir: str | os.PathLike,
    stems: Sequence[str],
    *,
    filename: str = DEFAULT_FILENAME,
    format: str = "wav",
) -> dict[str, Path]:
    """Where each stem of `path` goes: `out_dir / filename` with {track}, {stem}, {ext} and
    {parent} (the input's folder name) filled in."""
    path = Path(path)
    fields = {name for _, name, _, _ in string.Formatter().parse(filename) if name is not None}
    unknown = fields - {"track", "stem", "ext", "parent"}
    if unknown:
        raise OutputError(
            f"--filename {filename!r} uses unknown field(s) {', '.join(sorted(unknown))}; "
            "use {track}, {stem}, {ext} and {parent}"
        )
    if "stem" not in fields and len(stems) > 1:
        raise OutputError(f"--filename {filename!r} must contain {{stem}} to keep stems apart")
    values = {"track": _track_name(path), "ext": format, "parent": path.resolve().parent.name}
    return {stem: Path(out_dir) / filename.format(**values, stem=stem) for stem in stems}


@dataclass
class Job:
    """One input file and where its stems go; `error` is set when it cannot be processed."""

    input: Path
    outputs: dict[str, Path] = field(default_factory=dict)
    error: str | None = None


def _expand(path: Path, exclude: Path) -> list[Path]:
    files = []
    for root, dirs, names in os.walk(path):
        dirs[:] = sorted(d for d in dirs if (Path(root) / d).resolve() != exclude)
        files += [
            Path(root) / name
            for name in sorted(names)
            if Path(name).suffix.lower() in AUDIO_EXTENSIONS and not name.startswith(".")
        ]
    return files


def plan_jobs(
    inputs: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    stems: Sequence[str],
    *,
    filename: str = DEFAULT_FILENAME,
    format: str = "wav",
    overwrite: bool = False,
) -> list[Job]:
    """Expand folders (recursively, skipping `out_dir`) and check every input before any work:
    missing paths, folders without audio, the same file twice, outputs that would replace an
    input, collide with another input's outputs, or exist already (unless `overwrite`)."""
    exclude = Path(out_dir).resolve()
    jobs: list[Job] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = _expand(path, exclude)
            if not found:
                extensions = " ".join(sorted(AUDIO_EXTENSIONS))
                jobs.append(Job(path, error=f"{path}: folder holds no audio files ({extensions})"))
            jobs += [Job(file) for file in found]
        elif path.exists():
            jobs.append(Job(path))
        else:
            jobs.append(Job(path, error=f"{path} does not exist; check the path"))

    seen_inputs: dict[Path, Path] = {}
    for job in jobs:
        if job.error:
            continue
        real = job.input.resolve()
        if real in seen_inputs:
            job.error = f"{job.input} was given more than once; it is separated only once"
        else:
            seen_inputs[real] = job.input

    claimed: dict[Path, Path] = {}  # output -> the input that writes it
    for job in jobs:
        if job.error:
            continue
        job.outputs = output_paths(job.input, out_dir, stems, filename=filename, format=format)
        for output in job.outputs.values():
            target = output.resolve()
            if target in seen_inputs:
                job.error = (
                    f"{job.input}: output {output} would replace an input; choose another -o"
                )
            elif target in claimed:
                job.error = (
                    f"{job.input}: output {output} is also the output of {claimed[target]}; "
                    'add "{parent}" to --filename or separate them into different -o folders'
                )
            elif output.exists() and not overwrite:
                job.error = f"{output} exists; pass --overwrite to replace it"
            if job.error:
                break
        if not job.error:
            claimed.update((output.resolve(), job.input) for output in job.outputs.values())
    return jobs


def separate_file(
    path: str | os.PathLike,
    out_dir: str | os.PathLike = "separated",
    *,
    separator: Separator | None = None,
    model: str | os.PathLike | None = None,
    device: str = "auto",
    stems: Sequence[str] | None = None,
    format: str = "wav",
    bit_depth: str = "16",
    filename: str = DEFAULT_FILENAME,
    overwrite: bool = False,
    outputs: dict[str, Path] | None = None,
    progress: Callable[[float, float | None], None] | None = None,
) -> dict[str, Path]:
    """Separate one audio file into stem files and return stem -> written path.

    Reads, separates and writes in bounded memory (any song length). Outputs are written to
    temporary files and renamed only when everything succeeded; an existing output is kept
    unless `overwrite`. `progress(done_seconds, total_seconds or None)` is called as audio is
    finished. Raises a `VocalsepError` subclass with a one-line message on failure.
    """
    separator = separator or load_separator(model, device=device)
    stems = list(stems or separator.stems)
    unknown = [stem for stem in stems if stem not in separator.stems]
    if unknown:
        raise OutputError(
            f"unknown stem(s) {', '.join(unknown)}; this model gives {', '.join(separator.stems)}"
        )
    if format not in FORMATS or bit_depth not in BIT_DEPTHS:
        raise OutputError(f"format must be one of {FORMATS} and bit depth one of {BIT_DEPTHS}")
    if outputs is None:
        (job,) = plan_jobs(
            [path], out_dir, stems, filename=filename, format=format, overwrite=overwrite
        )
        if job.error:
            raise OutputError(job.error)
        outputs = job.outputs
    path = Path(path)
    with open_audio(path) as reader, contextlib.ExitStack() as stack:
        info = reader.info
        shortest = separator.min_samples(info.sample_rate)
        if info.frames == 0:
            raise InvalidAudioError(f"{path} contains no audio samples")
        if info.frames is not None and info.frames < shortest:
            raise InvalidAudioError(
                f"{path} is too short to separate ({info.frames} samples, need at least "
                f"{shortest}: one STFT frame); use a longer file"
            )
        writers = {
            stem: stack.enter_context(
                AudioWriter(
                    outputs[stem],
                    info.sample_rate,
                    info.channels,
                    format=format,
                    bit_depth=bit_depth,
                    overwrite=overwrite,
                )
            )
            for stem in stems
        }
        block = max(1, round(BLOCK_SECONDS * info.sample_rate))
        rate = info.sample_rate

        def report(done: int, total: int | None) -> None:
            if progress:
                progress(done / rate, total / rate if total else None)

        written = 0
        for chunk in separator.separate_blocks(
            reader.blocks(block),
            info.sample_rate,
            total=info.frames,
            progress=report,
            source=str(path),
        ):
            for stem, writer in writers.items():
                writer.write(chunk[stem])
            written += chunk[stems[0]].shape[-1]
        if written < shortest:
            raise InvalidAudioError(
                f"{path} is too short to separate ({written} samples, need at least {shortest})"
            )
    # Leaving the ExitStack without an exception committed every writer (temp file -> rename).
    missing = [str(p) for p in outputs.values() if not p.exists()]
    if missing:
        raise AudioWriteError(f"outputs were not written: {', '.join(missing)}")
    return {stem: outputs[stem] for stem in stems}
