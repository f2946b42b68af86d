"""Render random band-style accompaniment (drums, bass, keys, guitars, pads) for training.

    nice -n 10 python recipes/synthetic/render_band.py runs/band --minutes 60 --seed 0 [--jobs 1]
        [--styles rock,pop]

Writes `OUT_DIR/band/song_XXXX.flac` (stereo, 44.1 kHz, 16 bit, 60-150 s each) until the
songs add up to `--minutes`. Song k is composed from the random generator `[seed, k]`, so a
run that stops can be started again: files already there are kept and only the missing ones
are rendered. fluidsynth runs under `nice -n 10`, one process per job. Needs
`apt-get install fluidsynth fluid-soundfont-gm`; see README.md next to this file.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import midi_songs  # next to this script, so on sys.path when it runs
import numpy as np
import soundfile

from vocalsep.core.errors import VocalsepError


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path, help="songs go to OUT_DIR/band/")
    parser.add_argument("--minutes", type=float, default=60.0, help="total length to write")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=1, help="fluidsynth processes at once")
    parser.add_argument("--format", choices=("flac", "wav"), default="flac")
    parser.add_argument("--soundfont", type=Path, default=None, help="a General MIDI .sf2")
    parser.add_argument(
        "--guitar-drive",
        default=None,
        metavar="LOW,HIGH",
        help="send the overdriven and distortion guitars through an amp and cabinet with a drive "
        "uniform in LOW-HIGH dB per song (default: the soundfont's own sound)",
    )
    parser.add_argument(
        "--styles",
        default=None,
        help="comma-separated styles to draw from (default: all of "
        f"{', '.join(sorted(midi_songs.STYLES))})",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    styles = [name.strip() for name in (args.styles or "").split(",") if name.strip()]
    try:
        # The song list depends only on the seed, so a resumed run renders the same songs.
        planned_songs = midi_songs.plan_songs(args.seed, args.minutes, styles)
    except VocalsepError as error:
        print(f"error: --styles: {error}", file=sys.stderr)
        return 2
    drive_range = None
    if args.guitar_drive:
        try:
            drive_range = tuple(float(value) for value in args.guitar_drive.split(","))
            if len(drive_range) != 2 or not 0 < drive_range[0] <= drive_range[1]:
                raise ValueError
        except ValueError:
            print(
                f"error: --guitar-drive must be LOW,HIGH in dB with 0 < LOW <= HIGH, "
                f"got {args.guitar_drive!r}",
                file=sys.stderr,
            )
            return 2
    try:
        midi_songs.find_fluidsynth()
        soundfont = midi_songs.find_soundfont(args.soundfont)
    except VocalsepError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    folder = args.out_dir / "band"
    songs = [
        (folder / f"song_{index:04d}.{args.format}", song)
        for index, song in enumerate(planned_songs)
    ]
    planned = sum(song.seconds for song in planned_songs)
    missing = [(path, song) for path, song in songs if not path.exists()]
    print(
        f"{len(songs)} songs ({planned / 60:.1f} min) in {folder}: "
        f"{len(songs) - len(missing)} already there, {len(missing)} to render",
        flush=True,
    )

    started = time.monotonic()

    def drive(index: int) -> float:
        # Song k's drive comes from the seed [seed, k, 1], like its notes from [seed, k].
        rng = np.random.default_rng([args.seed, index, 1])
        return float(rng.uniform(*drive_range)) if drive_range else 0.0

    drives = {path: drive(index) for index, (path, _) in enumerate(songs)}

    def render(item: tuple[Path, midi_songs.Song]) -> tuple[Path, midi_songs.Song]:
        path, song = item
        midi_songs.render_song(
            song, path, soundfont=soundfont, format=args.format, guitar_drive_db=drives[path]
        )
        return item

    try:
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            for done, (path, song) in enumerate(pool.map(render, missing), start=1):
                key = f"{'C C# D D# E F F# G G# A A# B'.split()[song.key]}{'m' * song.minor}"
                print(
                    f"[{done}/{len(missing)}] {path.name}: {song.style}, {song.tempo:g} BPM, "
                    f"{key}, {song.seconds:.0f} s ({time.monotonic() - started:.0f} s elapsed)",
                    flush=True,
                )
    except VocalsepError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1

    written = sum(soundfile.info(str(path)).duration for path, _ in songs)
    print(
        f"{len(songs)} songs, {written / 60:.1f} min of audio in {folder} "
        f"(rendered {len(missing)} in {time.monotonic() - started:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
