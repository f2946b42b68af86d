"""The public Python API of vocalsep (the README's "Python API" section shows it at work).

>>> import vocalsep
>>> separator = vocalsep.Separator.from_pretrained()  # the default model
>>> stems = separator.separate(waveform, 44100)  # (channels, samples), (samples, channels), ...
>>> stems["vocals"].shape == waveform.shape
True
>>> vocalsep.separate_file("song.mp3", "separated", separator=separator)
{'vocals': PosixPath('separated/song/vocals.wav'), 'accompaniment': ...}
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from .audio import plot as audio_plot
from .audio.errors import AudioWriteError, InvalidAudioError
from .audio.io import AUDIO_EXTENSIONS, AudioReader, decode
from .audio.separator import Separator
from .audio.writer import AudioWriter
from .core.config import FieldError
from .core.device import select_device
from .core.errors import ConfigError, VocalsepError
from .core.outputs import Job, OutputError
from .core.outputs import plan as plan_outputs
from .train.config import RunConfig
from .train.trainer import TrainResult

__all__ = [
    "Job",
    "Separator",
    "load_separator",
    "plan_jobs",
    "predict_mask",
    "separate_file",
    "train",
    "dump_examples",
    "evaluate",
    "load_segmentation_model",
    "segment_image",
    "plan_segment_jobs",
    "segment_file",
    "evaluate_segmentation",
]

DEFAULT_FILENAME = "{track}/{stem}.{ext}"
FORMATS = ("wav", "flac")
BIT_DEPTHS = ("16", "24", "32f")
BLOCK_SECONDS = 10.0
PLOT = "spectrogram"  # the output kind (and {stem}) of the --plot picture


def load_separator(
    model: str | os.PathLike | None = None, *, device: str = "auto", **options
) -> Separator:
    """A `Separator` for a shipped model name, a checkpoint path or (None) the default model."""
    return Separator.from_pretrained(model, device=device, **options)


def predict_mask(
    spectrogram: torch.Tensor, model: str | os.PathLike | Separator | None = None
) -> torch.Tensor:
    """Soft masks `(stems, channels, bins, frames)`, one per stem of the model, for a
    spectrogram `(channels, bins, frames)` at the model's STFT: `separator.stft(waveform,
    sample_rate)` or its magnitude (see `Separator.predict_mask`); spectrogram models only (a
    waveform model raises `ConfigError`)."""
    separator = model if isinstance(model, Separator) else load_separator(model, device="cpu")
    return separator.predict_mask(spectrogram)


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


def _planned(job: Job) -> dict[str, Path]:
    """The outputs a planned job writes, or its error raised."""
    if isinstance(job.error, VocalsepError):
        raise job.error
    if job.error:
        raise OutputError(job.error)
    return job.outputs


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
) -> dict[str, Path]:
    """Separate one audio file into stem files and return output kind -> written path.

    Reads, separates and writes in bounded memory (any song length). Outputs are written to
    temporary files and renamed only when everything succeeded; an existing output is an
    `OutputExistsError` unless `overwrite` (replace it) or `skip_existing` (keep it; nothing is
    done when all exist). `plot` also writes a `spectrogram` PNG of the mixture and the stems
    beside them (needs the `plot` extra). `outputs` (kind -> path) skips the planning, as
    `plan_jobs` made it. When libsndfile fails partway through the file and ffmpeg is
    installed, the file is decoded again with ffmpeg (a warning says so).
    `progress(done_seconds, total_seconds or None)` is called as audio is finished. Raises a
    `VocalsepError` subclass with a one-line message on failure.
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
        outputs = _planned(job)
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

        written = 0
        for chunk in separator.separate_blocks(
            mixture_blocks(), rate, total=info.frames, progress=report, source=str(path)
        ):
            for stem, writer in writers.items():
                writer.write(chunk[stem])
            for stem, sketch in sketches.items():
                if stem != "mixture":
                    sketch.add(chunk[stem])
            written += next(iter(chunk.values())).shape[-1]
        if written < shortest:
            raise InvalidAudioError(
                f"{path} is too short to separate ({written} samples, need at least {shortest})"
            )
        if picture is not None:
            title = f"{path.name}: mixture and stems"
            audio_plot.draw(picture, sketches, title=title, overwrite=overwrite)


# -- training ---------------------------------------------------------------------------------


def build_task(run: RunConfig, *, progress: Callable[[str], None] | None = None):
    """The task object a run config names: "separation" or "segmentation"."""
    if run.task == "segmentation":
        from .image.training import SegmentationTask, SegmentationTaskConfig

        return _task(SegmentationTask, SegmentationTaskConfig, run.task_config, progress)
    from .audio.training import SeparationTask, SeparationTaskConfig

    if run.task != "separation":
        raise ConfigError(f"unknown task {run.task!r}; known: separation, segmentation")
    return _task(SeparationTask, SeparationTaskConfig, run.task_config, progress)


def _task(task_class, config_class, data: dict, progress):
    """`task_class(config_class.from_dict(data))`, naming a mistyped field from `task_config`
    down (the network's fields are checked when the task builds its network config)."""
    try:
        return task_class(config_class.from_dict(data), progress=progress)
    except FieldError as error:
        raise error.within("task_config") from None


def train(
    config: str | os.PathLike | RunConfig,
    out_dir: str | os.PathLike,
    *,
    overrides: Sequence[str] = (),
    resume: bool = False,
    progress: bool = True,
    stop_at: int | None = None,
    on_log: Callable[[dict], None] | None = None,
    metadata: dict | None = None,
) -> TrainResult:
    """Train from a TOML run config (or a `RunConfig`) into `out_dir` (`last.ckpt`,
    `best.ckpt`, `log.jsonl`); `resume` continues the run saved there exactly."""
    from .train import Trainer, load_run_config

    run = config if isinstance(config, RunConfig) else load_run_config(config, list(overrides))
    task = build_task(run)
    trainer = Trainer(task, run, out_dir, progress=progress, on_log=on_log, metadata=metadata)
    return trainer.fit(resume=resume, stop_at=stop_at)


def dump_examples(
    config: str | os.PathLike | RunConfig,
    folder: str | os.PathLike,
    *,
    count: int = 8,
    overrides: Sequence[str] = (),
    split: str = "train",
) -> list[Path]:
    """Write `count` training (or validation) examples of a run config as wav files, to listen
    to what the model learns from."""
    from .train import load_run_config

    run = config if isinstance(config, RunConfig) else load_run_config(config, list(overrides))
    return build_task(run).dump_examples(folder, count, run.trainer.seed, split)


# -- evaluation -------------------------------------------------------------------------------


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
    from .audio import evaluation, tracks

    options = {"--model": model, "--baseline": baseline, "--estimates": estimates}
    chosen = [option for option, value in options.items() if value is not None]
    if len(chosen) != 1:
        given = f"got {' and '.join(chosen)}" if chosen else "got none"
        raise evaluation.EvaluationError(
            f"give exactly one of --model, --baseline or --estimates to evaluate ({given})"
        )
    unknown = [target for target in targets if target not in evaluation.TARGETS]
    if unknown or not targets:
        raise evaluation.EvaluationError(
            f"unknown target(s) {', '.join(unknown) or '(none given)'}; "
            f"choose from {', '.join(evaluation.TARGETS)}"
        )
    if baseline is not None and baseline not in evaluation.BASELINES:
        raise evaluation.EvaluationError(
            f"unknown baseline {baseline!r}; choose from {', '.join(evaluation.BASELINES)}"
        )
    if max_tracks is not None and max_tracks < 1:
        raise evaluation.EvaluationError(f"--tracks must be at least 1, got {max_tracks}")

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
            else load_separator(model, device=device, wiener_iterations=wiener)
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


# -- image segmentation -------------------------------------------------------------------------
# The image side is imported inside the functions: separating audio never loads it.

IMAGE_TASK = "image-segmentation"
SEGMENT_FILENAME = "{track}_{stem}.{ext}"
SEGMENT_OUTPUTS = ("labels", "overlay")  # the class-value PNG and the colour overlay


def load_segmentation_model(model=None, *, device: str = "auto"):
    """A `vocalsep.image.models.SegmentationModel` in eval mode on `device`, from a shipped model
    name, a checkpoint path, or (None) the default image model."""
    from . import pretrained
    from .image.models import SegmentationModel, load_model

    if isinstance(model, SegmentationModel):
        return model.eval()
    if model is None and IMAGE_TASK not in pretrained.DEFAULT_MODELS:
        raise pretrained.ModelNotFoundError(
            "no CamVid segmentation model (camvid-unet) is installed in this version of vocalsep "
            "yet; train one (recipes/camvid/README.md) and pass it with --model PATH"
        )
    return load_model(pretrained.resolve(model, IMAGE_TASK)).to(select_device(device)).eval()


def segment_image(image, model=None, *, device: str = "auto", flip: bool = False):
    """Class indices `uint8 (height, width)` of an image: a path, or a `uint8` array
    `(height, width, channels)` with the model's channels (1 grey or 3 RGB). `flip`: average
    the prediction with that of the mirrored image (twice the time; CamVid val mIoU 64.16 ->
    64.82 for camvid-unet)."""
    from .image.io import read_image
    from .image.predict import predict_labels

    network = load_segmentation_model(model, device=device)
    if isinstance(image, (str, os.PathLike)):
        image = read_image(image, network.config.in_channels)
    return predict_labels(network, image, flip=flip)


def plan_segment_jobs(
    inputs: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    filename: str = SEGMENT_FILENAME,
    overwrite: bool = False,
    skip_existing: bool = False,
) -> list[Job]:
    """Like `plan_jobs`, for images: a folder stands for the image files directly inside it;
    each image gets `labels` and `overlay` PNG outputs (`filename` fills {track} with the image
    name, {stem} with the output kind, {ext} with png)."""
    from .image.datasets import image_files
    from .image.io import IMAGE_EXTENSIONS

    def no_images(folder: Path) -> str:
        return f"{folder}: folder holds no image files ({' '.join(sorted(IMAGE_EXTENSIONS))})"

    return plan_outputs(
        inputs,
        out_dir,
        dict.fromkeys(SEGMENT_OUTPUTS, "png"),
        template=filename,
        expand=lambda folder, exclude: image_files(folder),
        empty_folder=no_images,
        overwrite=overwrite,
        skip_existing=skip_existing,
        verb="segmented",
    )


def segment_file(
    path: str | os.PathLike,
    out_dir: str | os.PathLike = "segmented",
    *,
    model=None,
    device: str = "auto",
    filename: str = SEGMENT_FILENAME,
    overwrite: bool = False,
    skip_existing: bool = False,
    outputs: dict[str, Path] | None = None,
    flip: bool = False,
) -> dict[str, Path]:
    """Segment one image file and write `labels` (a palette PNG whose pixel values are the
    classes' label values, as in the training labels) and `overlay` (the image blended with
    the class colours); returns output kind -> written path. They are written to temporary
    files and renamed only when all succeeded; an existing output is an `OutputExistsError`
    unless `overwrite` (replace it) or `skip_existing` (keep it). `flip` as in
    `segment_image`."""
    from .image.io import read_image, write_pngs
    from .image.predict import label_picture, overlay_picture, predict_labels

    network = load_segmentation_model(model, device=device)
    if outputs is None:
        (job,) = plan_segment_jobs(
            [path], out_dir, filename=filename, overwrite=overwrite, skip_existing=skip_existing
        )
        outputs = _planned(job)
    if not outputs:
        return {}
    image = read_image(path, network.config.in_channels)
    labels = predict_labels(network, image, flip=flip)
    pictures = {
        "labels": lambda: label_picture(labels, network.config),
        "overlay": lambda: overlay_picture(image, labels, network.config),
    }
    write_pngs({outputs[kind]: pictures[kind]() for kind in outputs}, overwrite=overwrite)
    return dict(outputs)


def evaluate_segmentation(
    root: str | os.PathLike,
    *,
    model=None,
    names: Sequence[str] = (),
    max_images: int | None = None,
    device: str = "auto",
    flip: bool = False,
    progress: Callable[[int, int, str | None], None] | None = None,
):
    """Score a segmentation model on a dataset folder (`root/images`, `root/labels`, label
    values as the model's) through the same tiled prediction as `segment_file` (`flip` as in
    `segment_image`). `names` keeps
    images whose name contains one of them (case-insensitive), `max_images` the first N.
    Returns `vocalsep.image.metrics.SegmentationScores` (one confusion matrix over all images;
    `.table()` prints per class and overall scores); raises `VocalsepError` subclasses."""
    from .image.datasets import SegmentationFolder, find_pairs
    from .image.errors import DatasetError
    from .image.metrics import SegmentationScores
    from .image.predict import predict_labels

    if max_images is not None and max_images < 1:
        raise DatasetError(f"the number of images must be at least 1, got {max_images}")
    network = load_segmentation_model(model, device=device)
    found = [name for name, _, _ in find_pairs(root)]
    if names:
        wanted = [name.lower() for name in names]
        found = [name for name in found if any(part in name.lower() for part in wanted)]
        if not found:
            raise DatasetError(f"no image of {root} matches {', '.join(names)}")
    found = found[:max_images] if max_images else found
    dataset = SegmentationFolder(root, network.config, names=found, cache=False)
    scores = SegmentationScores(network.config.class_names, network.config.ignore_index)
    for index, name in enumerate(dataset.names):
        if progress:
            progress(index, len(dataset), name)
        image, truth = dataset[index]
        scores.add(truth, predict_labels(network, image, flip=flip))
    if progress:
        progress(len(dataset), len(dataset), None)
    return scores
