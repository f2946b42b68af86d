"""`vocalsep train` end to end: one-line errors, --dump-examples, Ctrl-C saves and exits 130."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vocalsep.audio.toy import write_toy_sources
from vocalsep.cli import main
from vocalsep.core.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "recipes" / "tiny" / "config.toml"


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return write_toy_sources(tmp_path_factory.mktemp("toy"), seconds=6.0)


def data_args(toy: Path) -> list[str]:
    vocals = f'[{{path="{toy / "vocals"}", validation_groups=["singer1"]}}]'
    music = f'[{{path="{toy / "accompaniment"}", validation_groups=["track1"]}}]'
    return [
        "--set",
        f"task_config.data.synthesized.vocals={vocals}",
        "--set",
        f"task_config.data.synthesized.accompaniment={music}",
    ]


def call(capsys, *args):
    code = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return code, captured.out, [line for line in captured.err.splitlines() if line.strip()]


@pytest.mark.parametrize(
    "args, phrase",
    [
        (["missing.toml"], "does not exist"),
        ([TINY, "--set", "trainer.steps=0"], "steps"),
        ([TINY, "--set", "nonsense"], "KEY=VALUE"),
        ([TINY, "--set", "task_config.data.synthesized.vocals=[{path='/nowhere'}]"], "/nowhere"),
        ([TINY, "--set", "task_config.preset='nope'"], "unknown preset"),
        (
            [TINY, "--set", "task_config.data.synthesized.augment.p_eq='x'"],
            "task_config.data.synthesized.augment.p_eq: expected a number, got 'x'",
        ),
        ([TINY, "--set", "trainer.steps=2.5"], "trainer.steps: expected an integer, got 2.5"),
        ([TINY, "--set", "task_config.model.stft.n_fft='512'"], "model.stft.n_fft: expected an"),
        (
            [TINY, "--set", "task_config.network.channels=[4, 'x']"],
            "task_config.network.channels[1]: expected an integer, got 'x'",
        ),
    ],
)
def test_bad_configs_give_one_line(tmp_path, capsys, args, phrase):
    code, _, err = call(capsys, "train", *args, "--out", tmp_path / "run", "--no-progress")
    assert code == 1 and len(err) == 1 and phrase in err[0], err
    assert not (tmp_path / "run" / "last.ckpt").exists()


def test_dump_examples(toy, tmp_path, capsys):
    code, out, err = call(
        capsys,
        "train",
        TINY,
        *data_args(toy),
        "--dump-examples",
        tmp_path / "ex",
        "--dump-count",
        3,
    )
    assert code == 0, err
    assert len(out.split()) == 9
    assert sorted(p.name for p in (tmp_path / "ex").iterdir()) == ["0000", "0001", "0002"]


def test_train_then_separate(toy, tmp_path, capsys):
    run = tmp_path / "run"
    args = [TINY, *data_args(toy), "--set", "trainer.steps=4", "--out", run, "--no-progress"]
    code, out, err = call(capsys, "train", *args)
    assert code == 0, err
    assert "trained 4 steps" in out and (run / "best.ckpt").exists()
    code, _, err = call(capsys, "train", *args)  # again without --resume: refused
    assert code == 1 and "--resume" in err[0]
    song = tmp_path / "song.wav"
    import numpy as np
    import soundfile as sf

    sf.write(song, np.random.default_rng(0).uniform(-0.3, 0.3, 16000), 8000)
    code, _, err = call(capsys, "separate", song, "--model", run / "best.ckpt", "-o", tmp_path)
    assert code == 0, err


@pytest.fixture
def reaper():
    """Processes to kill at teardown, so a failed or timed-out test leaves no endless run."""
    processes = []
    yield processes
    for process in processes:
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)  # a session leader: its workers too
            except (ProcessLookupError, PermissionError):
                process.kill()
            process.wait(timeout=30)


def _start_endless_run(toy, run, reaper, *overrides, **popen):
    """`vocalsep train` of the tiny recipe in a subprocess, with `--set overrides`, returned
    once it has logged 3 steps (it fails after 300 s on a machine too busy to get there)."""
    command = [sys.executable, "-m", "vocalsep", "train", str(TINY), *data_args(toy)]
    command += ["--set", "trainer.steps=100000", "--set", "trainer.log_every=1"]
    for override in overrides:
        command += ["--set", override]
    command += ["--out", str(run), "--no-progress"]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        # A shell starts background jobs with SIGINT ignored, and the child would inherit that
        # (`bash .ci/run &`): give the trainer the default disposition a terminal gives it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        **popen,
    )
    reaper.append(process)
    log = run / "log.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and (not log.exists() or len(log.read_text().splitlines()) < 3):
        assert process.poll() is None, process.communicate()[1]
        time.sleep(0.2)
    assert log.exists() and len(log.read_text().splitlines()) >= 3, "no 3 steps in 300 s"
    return process


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_or_sigterm_saves_last_and_exits_130(toy, tmp_path, stop, reaper):
    # SIGTERM is what `kill PID` sends, and the only way to stop a run started in the
    # background from a script (such jobs ignore SIGINT).
    run = tmp_path / "run"
    process = _start_endless_run(toy, run, reaper)
    log = run / "log.jsonl"
    process.send_signal(stop)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "interrupted at step" in lines[0] and "--resume" in lines[0]
    state = load_checkpoint(run / "last.ckpt").training_state
    logged = [json.loads(line)["step"] for line in log.read_text().splitlines()]
    assert state["step"] >= max(logged) >= 3


def test_sigterm_to_trainer_and_loader_worker_saves_last(toy, tmp_path, reaper):
    # `pkill -f "vocalsep train ..."` signals the DataLoader worker as well as the trainer (the
    # worker has the same command line). The worker must not die first and turn the
    # interruption into "DataLoader worker ... killed by signal".
    run = tmp_path / "run"
    # Its own process group: killpg reaches the trainer and its worker only.
    process = _start_endless_run(toy, run, reaper, "trainer.num_workers=1", start_new_session=True)
    group = os.getpgid(process.pid)
    members = [
        pid
        for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
        if _process_group(pid) == group
    ]
    assert len(members) >= 2, "the run has no loader worker to signal"
    os.killpg(group, signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "interrupted at step" in lines[0], stderr
    assert load_checkpoint(run / "last.ckpt").training_state["step"] >= 3
    deadline = time.time() + 30  # the worker goes too: nothing of the group is left behind
    while time.time() < deadline and any(_process_group(pid) == group for pid in members):
        time.sleep(0.2)
    assert not any(_process_group(pid) == group for pid in members)


def _process_group(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except (ProcessLookupError, PermissionError):
        return None
