"""recipes/synthetic/game_music.py: unpacks only the music of a Debian package, groups a tune's
variants, drops jingles and the excluded tracks, and fails with one line on a missing .deb."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")


def _script():
    spec = importlib.util.spec_from_file_location(
        "game_music", ROOT / "recipes" / "synthetic" / "game_music.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _tone(path: Path, seconds: float, freq: float = 440.0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * 8000)) / 8000
    soundfile.write(path, 0.3 * np.sin(2 * np.pi * freq * t), 8000, format="OGG")


def _deb(tmp_path: Path) -> Path:
    tree = tmp_path / "pkg"
    music = tree / "usr/share/games/supertuxkart/data/music"
    _tone(music / "farm.ogg", 25)
    _tone(music / "farm_f.ogg", 22, 550)
    _tone(music / "race_win_theme.ogg", 5)  # a jingle: too short
    _tone(music / "Boom_boom_boom.ogg", 30)  # excluded by name
    _tone(tree / "usr/share/games/supertuxkart/data/sfx/engine.ogg", 30)  # not music
    _tone(tree / "usr/share/games/supertuxkart/data/tracks/cave/beneath_the_rabbit_hole.ogg", 21)
    (tree / "DEBIAN").mkdir()
    (tree / "DEBIAN" / "control").write_text(
        "Package: supertuxkart-data\nVersion: 1.0\nArchitecture: all\n"
        "Maintainer: test <t@example.org>\nDescription: test\n"
    )
    debs = tmp_path / "debs"
    debs.mkdir()
    subprocess.run(
        [
            "dpkg-deb",
            "--build",
            "--root-owner-group",
            str(tree),
            str(debs / "supertuxkart-data_1.0_all.deb"),
        ],
        check=True,
        capture_output=True,
    )
    return debs


def test_unpacks_music_only_grouped_by_tune(tmp_path, monkeypatch):
    module = _script()
    monkeypatch.setattr(module, "PACKAGES", module.PACKAGES[:1])
    debs, out = _deb(tmp_path), tmp_path / "games"
    assert module.main([str(out), "--debs", str(debs)]) == 0
    found = sorted(str(p.relative_to(out)) for p in out.rglob("*.ogg"))
    assert found == [
        "supertuxkart/beneath_the_rabbit_hole/beneath_the_rabbit_hole.ogg",
        "supertuxkart/farm/farm.ogg",
        "supertuxkart/farm/farm_f.ogg",
    ]
    audio, rate = soundfile.read(out / "supertuxkart/farm/farm_f.ogg")
    assert rate == 8000 and len(audio) == 22 * 8000
    assert (
        "| supertuxkart-data | supertuxkart-data_1.0_all.deb | 3 | 1.1 |"
        in (out / "SOURCES.md").read_text()
    )
    # Run again: the files are kept (not rewritten), no temporary files are left.
    stamp = (out / "supertuxkart/farm/farm.ogg").stat().st_mtime_ns
    assert module.main([str(out), "--debs", str(debs)]) == 0
    assert (out / "supertuxkart/farm/farm.ogg").stat().st_mtime_ns == stamp
    assert not list(out.rglob(".*.partial-*"))  # reserve_temp's temporary names


def test_missing_package_is_one_line(tmp_path, capsys):
    module = _script()
    empty = tmp_path / "debs"
    empty.mkdir()
    assert module.main([str(tmp_path / "games"), "--debs", str(empty)]) == 1
    err = capsys.readouterr().err
    assert (
        err.startswith("game_music.py: error: no supertuxkart-data_*.deb") and err.count("\n") == 1
    )
