"""Where a batch of inputs writes its outputs, decided and checked before any work.

Each input gets one file per output kind (`vocals`, `accompaniment`, a `spectrogram` picture,
`labels`, ...) at `OUTDIR / template`, the template filled with `{track}` (the input's name
without extension), `{stem}` (the output kind), `{ext}` and `{parent}` (the input's folder
name). Every output must stay inside OUTDIR: a template that is absolute or climbs out with
`..` is refused outright, and an output that resolves outside OUTDIR through a symlinked
folder (or a track name such as `..`) fails its input. Inputs of one batch that share a name
but live in different folders never collide: their `{track}` is widened with as many of their
folder names as tell them apart (`album1/01`, `album2/01`).
"""

from __future__ import annotations

import os
import string
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath

from .errors import OutputExistsError, VocalsepError

FIELDS = ("track", "stem", "ext", "parent")


class OutputError(VocalsepError):
    """Outputs cannot be planned: bad template, clash with an input or with another output, or
    a path outside the output folder."""


@dataclass
class Job:
    """One input and the outputs it writes (output kind -> path).

    `kept` are outputs that exist already and are kept (`skip_existing`); they are not in
    `outputs`. `error` is set when the input cannot be processed."""

    input: Path
    outputs: dict[str, Path] = field(default_factory=dict)
    kept: dict[str, Path] = field(default_factory=dict)
    error: str | VocalsepError | None = None

    @property
    def skipped(self) -> bool:
        """Every output exists already and is kept: nothing to do."""
        return self.error is None and not self.outputs and bool(self.kept)

    def writes(self) -> dict[str, Path]:
        """The outputs this job writes, or its error raised."""
        if isinstance(self.error, VocalsepError):
            raise self.error
        if self.error:
            raise OutputError(self.error)
        return self.outputs


def template_fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def check_template(template: str, kinds: Sequence[str]) -> None:
    """Raise `OutputError` for a template that uses unknown fields, cannot keep several output
    kinds apart, or is not a relative path that stays below the output folder."""
    fields = template_fields(template)
    unknown = fields - set(FIELDS)
    if unknown:
        raise OutputError(
            f"filename template {template!r} uses unknown field(s) {', '.join(sorted(unknown))}; "
            "use {track}, {stem}, {ext} and {parent}"
        )
    if "stem" not in fields and len(kinds) > 1:
        raise OutputError(
            f"filename template {template!r} must contain {{stem}} to keep outputs apart"
        )
    parts = PurePath(template).parts
    if PurePath(template).is_absolute() or template.startswith("~"):
        raise OutputError(
            f"filename template {template!r} is an absolute path; give a path relative to the "
            "output folder (and choose the folder itself with the output folder option)"
        )
    if ".." in parts:
        raise OutputError(
            f"filename template {template!r} climbs out of the output folder with '..'; give a "
            "path below it"
        )


def track_names(inputs: Sequence[Path]) -> dict[Path, str]:
    """`{track}` of each input: its name without extension (`.stem.mp4` counts as one), widened
    with its nearest folder names where inputs from different folders share a name."""
    names = {path: base_name(path) for path in inputs}
    groups: dict[str, list[Path]] = defaultdict(list)
    for path, name in names.items():
        groups[name].append(path)
    for name, paths in groups.items():
        folders = {path: Path(os.path.abspath(path)).parent.parts[1:] for path in paths}
        if len(paths) < 2 or len(set(folders.values())) < 2:
            continue  # one input, or all in one folder: nothing to tell apart by folder
        deepest = max(len(parts) for parts in folders.values())
        for depth in range(1, deepest + 1):
            suffixes = {path: parts[-depth:] for path, parts in folders.items()}
            if len(set(suffixes.values())) == len(set(folders.values())):
                break
        for path in paths:
            names[path] = "/".join([*suffixes[path], name])
    return names


def base_name(path: Path) -> str:
    """The input's name without its extension (`.stem.mp4` as one)."""
    name = path.name
    for suffix in (".stem.mp4", path.suffix):
        if suffix and name.lower().endswith(suffix):
            return name[: -len(suffix)] or name
    return name


def fill(template: str, out_dir: Path, track: str, parent: str, kind: str, ext: str) -> Path:
    return out_dir / template.format(track=track, stem=kind, ext=ext, parent=parent)


def plan(
    inputs: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    kinds: Mapping[str, str],
    *,
    template: str,
    expand: Callable[[Path, Path], list[Path]],
    empty_folder: Callable[[Path], str],
    overwrite: bool = False,
    skip_existing: bool = False,
    verb: str = "processed",
) -> list[Job]:
    """Plan every input before any work: folders are expanded with `expand(folder, out_dir)`
    (`empty_folder(folder)` is the error when it finds nothing), and each input's outputs
    (`kinds`: output kind -> file extension) are checked: a missing input, the same file twice,
    an output that would replace an input, collide with another output, leave the output
    folder, or exists already (an `OutputExistsError`, unless `overwrite`; with
    `skip_existing` it is kept and moved to `Job.kept`). `verb` says in messages what is done
    to an input ("separated", "segmented")."""
    if overwrite and skip_existing:
        raise OutputError("overwrite and skip_existing exclude each other; choose one")
    check_template(template, list(kinds))
    out_dir = Path(out_dir)
    root = out_dir.resolve()
    jobs: list[Job] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = expand(path, root)
            if not found:
                jobs.append(Job(path, error=empty_folder(path)))
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

    tracks = track_names([job.input for job in jobs if not job.error])
    claimed: dict[Path, Path] = {}  # output -> the input that writes it
    for job in jobs:
        if job.error:
            continue
        parent = job.input.resolve().parent.name
        outputs = {
            kind: fill(template, out_dir, tracks[job.input], parent, kind, ext)
            for kind, ext in kinds.items()
        }
        job.error = _check_outputs(job.input, outputs, root, seen_inputs, claimed)
        if job.error:
            continue
        claimed.update((output.resolve(), job.input) for output in outputs.values())
        for kind, output in outputs.items():
            if overwrite or not os.path.lexists(output):
                job.outputs[kind] = output
            elif skip_existing:
                job.kept[kind] = output
            else:
                job.error = OutputExistsError(output)
                break
    return jobs


def _check_outputs(
    source: Path,
    outputs: dict[str, Path],
    root: Path,
    inputs: Mapping[Path, Path],
    claimed: Mapping[Path, Path],
) -> str | None:
    """Why `outputs` of `source` cannot be written, or None."""
    own: dict[Path, str] = {}
    for kind, output in outputs.items():
        target = output.resolve()
        if not target.is_relative_to(root):
            return (
                f"{source}: output {output} resolves to {target}, outside the output folder "
                f"{root} (a symlinked folder or a track name such as '..'); nothing written"
            )
        if target in inputs:
            return f"{source}: output {output} would replace an input; choose another output folder"
        if target in own:
            return (
                f"{source}: outputs {own[target]} and {kind} would both be {output}; "
                "add {stem} or {ext} to the filename template"
            )
        own[target] = kind
        if target in claimed:
            return (
                f"{source}: output {output} is also the output of {claimed[target]}; "
                "use a filename template that tells them apart ({track}, {parent}) or "
                "different output folders"
            )
    return None
