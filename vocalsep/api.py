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
from .core.config import FieldError
from .core.errors import ConfigError, VocalsepError
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
    computed with the model's STFT, or the complex spectrogram, which a model with a stereo cue
    needs for a stereo input (see `Separator.predict_mask`); spectrogram models only (a
    waveform model raises `ConfigError`)."""
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
    verb: str = "separated",
) -> list[Job]:
    """Expand folders (recursively, skipping `out_dir`) and check every input before any work:
    missing paths, folders without audio, the same file twice, outputs that would replace an
    input, collide with another input's outputs, or exist already (unless `overwrite`).
    `verb` says what is done to an input in messages ("separated", "segmented")."""
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
            job.error = f"{job.input} was given more than once; it is {verb} only once"
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


def _torch_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("CUDA is not available on this machine; use --device cpu")
    return torch.device(name)


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
    return load_model(pretrained.resolve(model, IMAGE_TASK)).to(_torch_device(device)).eval()


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
) -> list[Job]:
    """Like `plan_jobs`, for images: a folder stands for the image files directly inside it;
    each image gets `labels` and `overlay` PNG outputs (`filename` fills {track} with the image
    name, {stem} with the output kind, {ext} with png)."""
    from .image.datasets import image_files
    from .image.io import IMAGE_EXTENSIONS

    folder_errors: list[Job] = []
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if not path.is_dir():
            files.append(path)
            continue
        found = image_files(path)
        if not found:
            extensions = " ".join(sorted(IMAGE_EXTENSIONS))
            folder_errors.append(
                Job(path, error=f"{path}: folder holds no image files ({extensions})")
            )
        files += found
    jobs = plan_jobs(
        files,
        out_dir,
        SEGMENT_OUTPUTS,
        filename=filename,
        format="png",
        overwrite=overwrite,
        verb="segmented",
    )
    return folder_errors + jobs


def segment_file(
    path: str | os.PathLike,
    out_dir: str | os.PathLike = "segmented",
    *,
    model=None,
    device: str = "auto",
    filename: str = SEGMENT_FILENAME,
    overwrite: bool = False,
    outputs: dict[str, Path] | None = None,
    flip: bool = False,
) -> dict[str, Path]:
    """Segment one image file and write `labels` (a palette PNG whose pixel values are the
    classes' label values, as in the training labels) and `overlay` (the image blended with
    the class colours); returns output kind -> path. Both are written to temporary files and
    renamed only when both succeeded; existing outputs are kept unless `overwrite`. `flip` as
    in `segment_image`."""
    from .image.io import read_image, write_pngs
    from .image.predict import label_picture, overlay_picture, predict_labels

    network = load_segmentation_model(model, device=device)
    if outputs is None:
        (job,) = plan_segment_jobs([path], out_dir, filename=filename, overwrite=overwrite)
        if job.error:
            raise OutputError(job.error)
        outputs = job.outputs
    image = read_image(path, network.config.in_channels)
    labels = predict_labels(network, image, flip=flip)
    pictures = {
        outputs["labels"]: label_picture(labels, network.config),
        outputs["overlay"]: overlay_picture(image, labels, network.config),
    }
    write_pngs(pictures, overwrite=overwrite)
    return {kind: outputs[kind] for kind in SEGMENT_OUTPUTS}


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
