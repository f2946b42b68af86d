"""Separating audio files: plan a batch (`plan_jobs`), then read, separate and write each
file in bounded memory (`separate_file`), with the ffmpeg fallback decoder, atomic outputs and
an optional spectrogram picture."""

from __future__ import annotations

import collections
import contextlib
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import OptionError
from ..core.outputs import Job
from ..core.outputs import plan as plan_outputs
from . import plot as audio_plot
from .errors import AudioWriteError, InvalidAudioError
from .io import AUDIO_EXTENSIONS, AudioReader, decode
from .separator import Separator
from .writer import AudioWriter

DEFAULT_FILENAME = "{track}/{stem}.{ext}"
FORMATS = ("wav", "flac")
BIT_DEPTHS = ("16", "24", "32f")
BLOCK_SECONDS = 10.0
PLOT = "spectrogram"  # the output kind (and {stem}) of the --plot picture


def _audio_files(folder: Path, exclude: Path) -> list[Path]:
    """Audio files under `folder`, recursively, skipping the folder `exclude` (the outputs)."""
    files = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if (Path(root) / d).resolve() != exclude)
        files += [
            Path(root) / name
            for name in sorted(names)
            if Path(name).suffix.lower() in AUDIO_EXTENSIONS and not name.startswith(".")
        ]
    return files


def _no_audio(folder: Path) -> str:
    return f"{folder}: folder holds no audio files ({' '.join(sorted(AUDIO_EXTENSIONS))})"


def check_output_options(
    separator: Separator, stems: Sequence[str], format: str, bit_depth: str
) -> None:
    """Raise `OptionError` (before any work) for stems the model does not give, or an output
    format and bit depth that do not go together."""
    unknown = [stem for stem in stems if stem not in separator.stems]
    if unknown or not stems:
        raise OptionError(
            f"unknown stem(s) {', '.join(unknown) or '(none given)'}; this model gives "
            f"{', '.join(separator.stems)}",
            ("stems",),
        )
    if format not in FORMATS or bit_depth not in BIT_DEPTHS:
        raise OptionError(
            f"format must be one of {FORMATS} and bit depth one of {BIT_DEPTHS}",
            ("format", "bit_depth"),
        )
    if format == "flac" and bit_depth == "32f":
        raise OptionError(
            "FLAC stores 16 or 24-bit samples: choose bit depth 16 or 24, or wav",
            ("format", "bit_depth"),
        )


def plan_jobs(
    inputs: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    stems: Sequence[str],
    *,
    filename: str = DEFAULT_FILENAME,
    format: str = "wav",
    overwrite: bool = False,
    skip_existing: bool = False,
    plot: bool = False,
) -> list[Job]:
    """Expand folders (recursively, skipping `out_dir`) and check every input and output before
    any work (see `vocalsep.core.outputs.plan`): each input's `stems` (and, with `plot`, its
    `spectrogram` PNG) go to `out_dir / filename`, confined to `out_dir`. An existing output
    is an error unless `overwrite` (replace it) or `skip_existing` (keep it: `Job.kept`; a
    job whose outputs all exist is `skipped`)."""
    kinds = {stem: format for stem in stems}
    if plot:
        kinds[PLOT] = "png"
    return plan_outputs(
        inputs,
        out_dir,
        kinds,
        template=filename,
        expand=_audio_files,
        empty_folder=_no_audio,
        overwrite=overwrite,
        skip_existing=skip_existing,
        verb="separated",
    )


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
    skip_existing: bool = False,
    plot: bool = False,
    outputs: dict[str, Path] | None = None,
    progress: Callable[[float, float | None], None] | None = None,
    name: str | None = None,
) -> dict[str, Path]:
    """Separate one audio file into stem files and return output kind -> written path.

    Reads, separates and writes in bounded memory (any song length). Outputs are written to
    temporary files and renamed only when everything succeeded; an existing output is an
    `OutputExistsError` unless `overwrite` (replace it) or `skip_existing` (keep it; nothing is
    done when all exist). `plot` also writes a `spectrogram` PNG of the mixture and the stems
    beside them (needs the `plot` extra). `outputs` (kind -> path) skips the planning, as
    `plan_jobs` made it. When libsndfile fails partway through the file and ffmpeg is
    installed, the file is decoded again with ffmpeg (a warning says so).
    `progress(done_seconds, total_seconds or None)` is called as audio is finished. `name`
    names the song in the picture's title (default: the file's name). Raises a
    `VocalsepError` subclass with a one-line message on failure.
    """
    separator = separator or Separator.from_pretrained(model, device=device)
    stems = list(stems or separator.stems)
    check_output_options(separator, stems, format, bit_depth)
    if plot:
        audio_plot.check_plotting()
    if outputs is None:
        (job,) = plan_jobs(
            [path],
            out_dir,
            stems,
            filename=filename,
            format=format,
            overwrite=overwrite,
            skip_existing=skip_existing,
            plot=plot,
        )
        outputs = job.writes()
    if not outputs:
        return {}
    path = Path(path)
    write = [stem for stem in stems if stem in outputs]

    def work(reader: AudioReader) -> None:
        _separate_stream(
            reader,
            separator,
            {stem: outputs[stem] for stem in write},
            outputs.get(PLOT),
            format=format,
            bit_depth=bit_depth,
            overwrite=overwrite,
            progress=progress,
            name=name or path.name,
        )

    decode(path, work)
    # Leaving without an exception committed every writer (temp file -> rename).
    missing = [str(p) for p in outputs.values() if not p.exists()]
    if missing:
        raise AudioWriteError(f"outputs were not written: {', '.join(missing)}")
    return dict(outputs)


def _separate_stream(
    reader: AudioReader,
    separator: Separator,
    targets: dict[str, Path],
    picture: Path | None,
    *,
    format: str,
    bit_depth: str,
    overwrite: bool,
    progress: Callable[[float, float | None], None] | None,
    name: str,
) -> None:
    """Separate what `reader` decodes into the stem files `targets` (and the `picture`), all
    or nothing: an exception leaves no output behind, so the work can start again."""
    path, info = reader.path, reader.info
    shortest = separator.min_samples(info.sample_rate)
    if info.frames == 0:
        raise InvalidAudioError(f"{path} contains no audio samples")
    if info.frames is not None and info.frames < shortest:
        raise InvalidAudioError(
            f"{path} is too short to separate ({info.frames} samples, need at least "
            f"{shortest}: one STFT frame); use a longer file"
        )
    sketches = {}
    if picture is not None:
        names = ["mixture", *separator.stems]
        sketches = {name: audio_plot.Sketch(info.sample_rate) for name in names}
    with contextlib.ExitStack() as stack:
        writers = {
            stem: stack.enter_context(
                AudioWriter(target, info.sample_rate, info.channels, format, bit_depth, overwrite)
            )
            for stem, target in targets.items()
        }
        rate = info.sample_rate

        def report(done: int, total: int | None) -> None:
            if progress:
                progress(done / rate, total / rate if total else None)

        def mixture_blocks():
            for block in reader.blocks(max(1, round(BLOCK_SECONDS * rate))):
                if sketches:
                    sketches["mixture"].add(block)
                yield block

        def write(chunk: dict[str, np.ndarray]) -> None:
            for stem, writer in writers.items():
                writer.write(chunk[stem])

        # Encoding and writing a chunk overlaps the separation of the next one (libsndfile
        # leaves the GIL free); entered last, so it is drained before any writer closes.
        background = stack.enter_context(_InOrder())
        written = 0
        for chunk in separator.separate_blocks(
            mixture_blocks(), rate, total=info.frames, progress=report, source=str(path)
        ):
            background.submit(write, chunk)
            for stem, sketch in sketches.items():
                if stem != "mixture":
                    sketch.add(chunk[stem])
            written += next(iter(chunk.values())).shape[-1]
        background.wait()
        if written < shortest:
            raise InvalidAudioError(
                f"{path} is too short to separate ({written} samples, need at least {shortest})"
            )
        if picture is not None:
            title = f"{name}: mixture and stems"
            audio_plot.draw(picture, sketches, title=title, overwrite=overwrite)


class _InOrder:
    """Calls run one after another on one background thread, at most `depth` of them not yet
    finished; after a call fails the later ones are skipped, and its exception is raised in
    the caller by a later `submit` or by `wait`. Leaving the context waits for the thread
    (calls not yet started are dropped when leaving on an exception)."""

    def __init__(self, depth: int = 2) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="vocalsep-write")
        self._pending: collections.deque[Future[Any]] = collections.deque()
        self._depth = depth
        self._failed = False

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        while len(self._pending) >= self._depth:
            self._pending.popleft().result()
        self._pending.append(self._pool.submit(self._call, fn, *args))

    def _call(self, fn: Callable[..., Any], *args: Any) -> None:
        if self._failed:
            return
        try:
            fn(*args)
        except BaseException:
            self._failed = True
            raise

    def wait(self) -> None:
        while self._pending:
            self._pending.popleft().result()

    def __enter__(self) -> _InOrder:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=kind is not None)
