"""Collect real instrumental music from Debian game packages as extra training accompaniment.

    python recipes/synthetic/game_music.py runs/games [--debs runs/debs] [--download]

The shared accompaniment pool is game and orchestral music, the rendered band is General MIDI;
these packages add about five hours of real produced music (rock, metal, electronic, folk, pop
instrumentals) under free licences. With `--download` the `.deb` files are fetched into
`--debs` with `apt-get download` (the Debian archive is the only network this needs; nothing
else in vocalsep downloads); without it they must already be there. Only the music files are
unpacked (`dpkg-deb --fsys-tarfile`), to `OUT_DIR/<package>/<tune>/<file>`, so that a tune's
variants (SuperTuxKart's `_fast` versions) share one group and never straddle the train /
validation split (use `group_depth = 2` in the config). Tracks that are not music (sound
effects, a spoken cut-scene) and tracks that hold voice-like sounds are left out; the list and
the reason for each is `EXCLUDED` below. `OUT_DIR/SOURCES.md` records each package's version
and licence. Files already in OUT_DIR are kept, so the script can be run again.
"""

from __future__ import annotations

import argparse
import fnmatch
import re
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import soundfile

from vocalsep.core.files import reserve_temp


@dataclass(frozen=True)
class Package:
    name: str  # Debian package
    short: str  # folder under OUT_DIR
    patterns: tuple[str, ...]  # music files inside the package (fnmatch, "./"-less)
    licence: str  # of the music, as the package's debian/copyright states it


PACKAGES = (
    Package(
        "supertuxkart-data",
        "supertuxkart",
        (
            "usr/share/games/supertuxkart/data/music/*.ogg",
            # the few tunes that live with their race track (the rest there is sound effects)
            "usr/share/games/supertuxkart/data/tracks/ancient_colosseum_labyrinth/Battle_Theme_1.ogg",
            "usr/share/games/supertuxkart/data/tracks/battleisland/Gran_Paradiso_*.ogg",
            "usr/share/games/supertuxkart/data/tracks/cave/beneath_the_rabbit_hole.ogg",
        ),
        "CC BY-SA 3.0 (most tunes), CC BY-SA 4.0, GPL (klabauter_dance); per file in the "
        "package's debian/copyright",
    ),
    Package(
        "freedroidrpg-data",
        "freedroidrpg",
        ("usr/share/freedroidrpg/data/sound/music/*.ogg",),
        "GPL-2+",
    ),
    Package(
        "warzone2100-music",
        "warzone2100",
        ("usr/share/games/warzone2100/music/albums/*/*.opus",),
        "GPL-2+",
    ),
    Package(
        "extremetuxracer-data", "extremetuxracer", ("usr/share/games/etr/music/*.ogg",), "GPL-2+"
    ),
    Package("xmoto-data", "xmoto", ("usr/share/games/xmoto/Textures/Musics/*.ogg",), "GPL-2+"),
)

# Left out, with the reason. The "voice-like" ones were found by running vocalsep-small v4 over
# every track: it put 30% of their energy into the vocals (real instrumentals: 0-14%; the
# unaccompanied spoken cut-scene 88%).
EXCLUDED = {
    "supertuxkart/Boom_boom_boom.ogg": "voice-like: a chanted hook (v4 vocals share 30%)",
    "freedroidrpg/Ambience.ogg": "voice-like: choir pad (v4 vocals share 30%)",
}
MIN_SECONDS = 20.0  # jingles and sound effects are shorter


def tune_of(path: str) -> str:
    """Group a tune's variants: `theGreatFair_fast`, `farm_f` and `track3_enhanced` belong to
    `theGreatFair`, `farm` and `track3`."""
    return re.sub(r"_(fast|f|enhanced)$", "", Path(path).stem)


def download(names: list[str], debs: Path) -> None:
    debs.mkdir(parents=True, exist_ok=True)
    subprocess.run(["apt-get", "download", *names], cwd=debs, check=True)


def find_deb(debs: Path, name: str) -> Path:
    found = sorted(debs.glob(f"{name}_*.deb"))
    if not found:
        raise FileNotFoundError(
            f"no {name}_*.deb in {debs} (run with --download, or apt-get download {name})"
        )
    return found[-1]


def extract(deb: Path, package: Package, out_dir: Path) -> list[tuple[Path, float]]:
    """Unpack `package`'s music files from `deb` into out_dir/<short>/<tune>/; return (file, s)."""
    kept = []
    with subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE) as proc:
        with tarfile.open(fileobj=proc.stdout, mode="r|*") as archive:
            for member in archive:
                name = member.name.removeprefix("./")
                if not member.isfile() or not any(
                    fnmatch.fnmatch(name, p) for p in package.patterns
                ):
                    continue
                base = Path(name).name
                if f"{package.short}/{base}" in EXCLUDED:
                    continue
                target = out_dir / package.short / tune_of(base) / base
                if not target.exists():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    temp = reserve_temp(target)
                    try:
                        with open(temp, "wb") as file:
                            shutil.copyfileobj(archive.extractfile(member), file)
                        temp.replace(target)
                    except BaseException:
                        temp.unlink(missing_ok=True)
                        raise
                seconds = soundfile.info(str(target)).duration
                if seconds < MIN_SECONDS:
                    target.unlink()
                    if not any(target.parent.iterdir()):
                        target.parent.rmdir()
                    continue
                kept.append((target, seconds))
    if proc.returncode:
        raise RuntimeError(f"dpkg-deb could not read {deb}")
    return kept


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument(
        "--debs", type=Path, default=Path("runs/debs"), help="folder of the .deb files"
    )
    parser.add_argument(
        "--download", action="store_true", help="apt-get download the packages first"
    )
    args = parser.parse_args(argv)
    try:
        if args.download:
            download([p.name for p in PACKAGES], args.debs)
        lines = [
            "# Game music for vocalsep training, from Debian packages (keep the licences below)",
            "",
            "| package | deb | tracks | minutes | licence |",
            "|---|---|---|---|---|",
        ]
        total = 0.0
        for package in PACKAGES:
            deb = find_deb(args.debs, package.name)
            kept = extract(deb, package, args.out_dir)
            minutes = sum(seconds for _, seconds in kept) / 60
            total += minutes
            lines.append(
                f"| {package.name} | {deb.name} | {len(kept)} | {minutes:.1f} | {package.licence} |"
            )
            print(f"{package.name}: {len(kept)} tracks, {minutes:.1f} min", flush=True)
        lines += ["", "Left out:", ""] + [f"- {name}: {why}" for name, why in EXCLUDED.items()]
        (args.out_dir / "SOURCES.md").write_text("\n".join(lines) + "\n")
        print(f"{total:.1f} min in {args.out_dir}")
    except (
        OSError,
        RuntimeError,
        subprocess.CalledProcessError,
        soundfile.LibsndfileError,
    ) as error:
        print(f"game_music.py: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
