"""The trainer: learning, exact resume (also after Ctrl-C), DDP, schedules and configs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import TINY, tiny_overrides

from vocalsep import api
from vocalsep.core.checkpoint import load_checkpoint
from vocalsep.core.errors import CheckpointError, ConfigError
from vocalsep.train import TrainingError, TrainingInterrupted, load_run_config
from vocalsep.train.config import OptimizerConfig, apply_overrides, parse_override
from vocalsep.train.optim import LRSchedule
from vocalsep.train.runtime import _batches, _DeferredInterrupts


def validations(run_dir):
    lines = (run_dir / "log.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["event"] == "validation"]


def test_tiny_recipe_learns(tiny_config, tmp_path):
    config = tiny_config("trainer.validate_at_start=true")
    result = api.train(config, tmp_path / "run", progress=False)
    assert result.step == config.trainer.steps == 150
    history = validations(tmp_path / "run")
    start, end = history[0]["loss"], history[-1]["loss"]
    assert end <= 0.7 * start, (start, end)  # validation loss falls by at least 30%
    assert history[-1]["sdr_vocals"] > history[0]["sdr_vocals"] + 2.0
    assert history[-1]["sdr_vocals_mean"] > history[0]["sdr_vocals_mean"] + 2.0
    best = load_checkpoint(result.best)
    assert best.metadata["validation"]["loss"] == pytest.approx(result.best_score)
    assert best.task_config["sample_rate"] == 8000 and best.training_state["step"] > 0
    # The best checkpoint is a normal model file: it separates.
    separator = api.load_separator(result.best, device="cpu")
    stems = separator.separate(torch.zeros(1, 8000).numpy() + 0.01, 8000)
    assert stems["vocals"].shape == (1, 8000)


def final_weights(path):
    return load_checkpoint(path).state_dict


@pytest.mark.parametrize("workers", [0, 2])
def test_resume_after_ctrl_c_is_exact(tiny_config, tmp_path, workers):
    config = tiny_config(
        "trainer.steps=12",
        "trainer.validate_every=5",
        "trainer.checkpoint_every=100",
        "trainer.log_every=1",
        f"trainer.num_workers={workers}",
        "optimizer.schedule='cosine'",
        "optimizer.warmup_steps=3",
        "task_config.network.decoder_dropout=[0.5]",  # dropout: the RNG matters
    )
    straight = api.train(config, tmp_path / "straight", progress=False)

    def interrupt(record):
        if record.get("event") == "train" and record["step"] == 7:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted) as stopped:
        api.train(config, tmp_path / "resumed", progress=False, on_log=interrupt)
    assert stopped.value.step == 7
    assert load_checkpoint(tmp_path / "resumed" / "last.ckpt").training_state["step"] == 7
    resumed = api.train(config, tmp_path / "resumed", resume=True, progress=False)
    assert resumed.step == straight.step == 12
    a, b = final_weights(straight.last), final_weights(resumed.last)
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=1e-6, rtol=0, msg=name)
    assert resumed.best_score == pytest.approx(straight.best_score)


def test_stop_and_resume_matches_and_extends(tiny_config, tmp_path):
    config = tiny_config("trainer.steps=8", "trainer.validate_every=0", "trainer.log_every=1")
    straight = api.train(config, tmp_path / "a", progress=False)
    api.train(config, tmp_path / "b", progress=False, stop_at=3)
    resumed = api.train(config, tmp_path / "b", progress=False, resume=True)
    a, b = final_weights(straight.last), final_weights(resumed.last)
    assert all(torch.equal(a[name], b[name]) for name in a)
    # A later session may train longer: only trainer settings may change.
    longer = api.train(
        tiny_config("trainer.steps=10", "trainer.validate_every=0"),
        tmp_path / "b",
        progress=False,
        resume=True,
    )
    assert longer.step == 10
    with pytest.raises(TrainingError, match="differs"):
        api.train(
            tiny_config("trainer.steps=12", "task_config.loss='mse'"),
            tmp_path / "b",
            progress=False,
            resume=True,
        )


def test_existing_run_is_not_clobbered(tiny_config, tmp_path):
    config = tiny_config("trainer.steps=2", "trainer.validate_every=0")
    api.train(config, tmp_path / "run", progress=False)
    before = (tmp_path / "run" / "last.ckpt").read_bytes()
    with pytest.raises(TrainingError, match="--resume"):
        api.train(config, tmp_path / "run", progress=False)
    assert (tmp_path / "run" / "last.ckpt").read_bytes() == before
    with pytest.raises(TrainingError, match="does not exist"):
        api.train(config, tmp_path / "other", progress=False, resume=True)


def test_two_process_ddp_with_gloo(toy_audio, tmp_path):
    """torchrun --nproc_per_node=2 on the CPU: both processes train, process 0 saves."""
    out = tmp_path / "ddp"
    overrides = tiny_overrides(
        toy_audio, "trainer.steps=6", "trainer.validate_every=3", "trainer.batch_size=4"
    )
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "vocalsep",
        "train",
        str(TINY),
        "--out",
        str(out),
        "--no-progress",
    ]
    for override in overrides:
        command += ["--set", override]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoint = load_checkpoint(out / "last.ckpt")
    assert checkpoint.training_state["step"] == 6
    train_lines = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in train_lines if r["event"] == "validation"] == [3, 6]
    # Each step used 2 processes x 4 examples.
    assert all(r["examples_per_s"] > 0 for r in train_lines if r["event"] == "train")
    assert len([r for r in train_lines if r["event"] == "train"]) >= 1


def test_overrides_and_config_errors(tmp_path):
    assert parse_override("trainer.steps=5") == (["trainer", "steps"], 5)
    assert parse_override("a.b=[1, 2]") == (["a", "b"], [1, 2])
    assert parse_override("a.name=hello") == (["a", "name"], "hello")
    assert apply_overrides({"a": {"b": 1}}, ["a.c=true"]) == {"a": {"b": 1, "c": True}}
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_override("novalue")
    with pytest.raises(ConfigError, match="does not exist"):
        load_run_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[trainer\nsteps = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_run_config(bad)
    with pytest.raises(ConfigError, match="unknown field"):
        load_run_config(TINY, ["trainer.stepz=3"])
    with pytest.raises(ConfigError, match="steps"):
        load_run_config(TINY, ["trainer.steps=0"])


def test_schedules():
    cosine = LRSchedule(
        OptimizerConfig(schedule="cosine", warmup_steps=10, min_lr_ratio=0.1), 100, "min"
    )
    assert cosine.factor(0) == pytest.approx(0.1)  # warmup
    assert cosine.factor(9) == pytest.approx(1.0, abs=0.03)
    assert cosine.factor(99) == pytest.approx(0.1)
    plateau = LRSchedule(OptimizerConfig(schedule="plateau", patience=1, gamma=0.5), 100, "max")
    for score in (1.0, 0.9, 0.8):
        plateau.observe(score)
    assert plateau.factor(50) == 0.5
    restored = LRSchedule(OptimizerConfig(schedule="plateau"), 100, "max")
    restored.load_state_dict(plateau.state_dict())
    assert restored.factor(50) == 0.5


def test_dump_examples(tiny_config, tmp_path):
    written = api.dump_examples(tiny_config(), tmp_path / "examples", count=2)
    assert len(written) == 6
    import soundfile as sf

    mixture, rate = sf.read(tmp_path / "examples" / "0000" / "mixture.wav")
    vocals, _ = sf.read(tmp_path / "examples" / "0000" / "vocals.wav")
    accompaniment, _ = sf.read(tmp_path / "examples" / "0000" / "accompaniment.wav")
    assert rate == 8000 and mixture.shape == (8000,)
    assert abs(mixture - vocals - accompaniment).max() < 1e-6


def test_trains_from_a_musdb18_shaped_folder(tmp_path):
    """A decoded-wav MUSDB18 layout of synthesized stems, read through the musdb package."""
    pytest.importorskip("musdb")
    from support import MUSDB_TRAIN, MUSDB_VALID, write_musdb_wav

    root = write_musdb_wav(tmp_path / "musdb", MUSDB_TRAIN + MUSDB_VALID, rate=16000)
    config = load_run_config(
        TINY,
        [
            "task_config.data.kind='musdb'",
            f"task_config.data.musdb.root='{root}'",
            "task_config.data.musdb.is_wav=true",
            "task_config.data.channels=2",
            "task_config.data.validation_examples=2",
            "task_config.data.segment_seconds=0.5",
            "trainer.steps=3",
            "trainer.batch_size=2",
        ],
    )
    result = api.train(config, tmp_path / "run", progress=False)
    assert result.step == 3 and result.best is not None
    assert "sdr_vocals" in result.validations[-1]


def test_init_from_starts_with_the_given_weights(tiny_config, tmp_path):
    first = api.train(tiny_config("trainer.steps=2", "trainer.validate_every=0"), tmp_path / "a")
    config = tiny_config(
        "trainer.steps=1",
        "trainer.validate_every=0",
        f"trainer.init_from='{first.last}'",
        "optimizer.lr=1e-12",  # one negligible step: the weights stay those of `first`
    )
    second = api.train(config, tmp_path / "b", progress=False)
    a, b = final_weights(first.last), final_weights(second.last)
    for name in a:
        if "running" not in name and "num_batches" not in name:  # BatchNorm stats do move
            torch.testing.assert_close(a[name], b[name], atol=1e-6, rtol=0)
    with pytest.raises(CheckpointError):
        api.train(
            tiny_config("trainer.init_from='/nonexistent.ckpt'"), tmp_path / "c", progress=False
        )


def test_cuda_device_always_gets_an_index(monkeypatch):
    # torch.cuda.set_device(torch.device("cuda")) raises; the trainer must name the GPU.
    from vocalsep.train.runtime import Distributed, _device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert _device("cuda", Distributed()) == torch.device("cuda:0")
    assert _device("auto", Distributed(1, 1, 2)) == torch.device("cuda:1")
    assert _device("cuda:3", Distributed()) == torch.device("cuda:3")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert _device("auto", Distributed()) == torch.device("cpu")
    with pytest.raises(TrainingError, match="CUDA is not available"):
        _device("cuda", Distributed())


def _interrupt(signum, frame):
    raise KeyboardInterrupt


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_a_signal_while_a_batch_is_received_is_raised_after_it(signum):
    # A KeyboardInterrupt in the middle of receiving a batch from a loader worker breaks the
    # worker's file-descriptor handshake (a traceback from its resource sharer on stderr).
    previous = signal.signal(signum, _interrupt)
    try:
        guard = _DeferredInterrupts()
        received = []
        with pytest.raises(KeyboardInterrupt):
            with guard:
                os.kill(os.getpid(), signum)
                time.sleep(0.05)
                received.append("batch")  # the handshake runs to its end
        assert received == ["batch"]
        assert signal.getsignal(signum) is _interrupt  # the trainer's handler is back
        with guard:  # nothing pending: a quiet pass
            received.append("next")
        assert received == ["batch", "next"]
    finally:
        signal.signal(signum, previous)


def test_batches_defers_a_signal_to_after_the_batch_and_ends_with_the_loader():
    loader = torch.utils.data.DataLoader(list(range(5)), batch_size=2)
    assert [batch.tolist() for batch in _batches(loader)] == [[0, 1], [2, 3], [4]]
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:

        class Signalling(torch.utils.data.Dataset):
            def __len__(self):
                return 4

            def __getitem__(self, index):
                fetched.append(index)
                if index == 2:
                    os.kill(os.getpid(), signal.SIGTERM)
                return index

        seen, fetched = [], []
        with pytest.raises(KeyboardInterrupt):
            for batch in _batches(torch.utils.data.DataLoader(Signalling(), batch_size=2)):
                seen.append(batch.tolist())
        assert fetched == [0, 1, 2, 3]  # the second batch was completed after the signal,
        assert seen == [[0, 1]]  # then the interruption came, before the loop body ran again
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_second_signal_while_a_batch_is_received_interrupts_at_once():
    # A hung loader must not make the run unstoppable: the second Ctrl-C is not held.
    previous = signal.signal(signal.SIGINT, _interrupt)
    try:
        received = []
        with pytest.raises(KeyboardInterrupt):
            with _DeferredInterrupts():
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)
                received.append("held")
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)
                received.append("never")
        assert received == ["held"]
        assert signal.getsignal(signal.SIGINT) is _interrupt
    finally:
        signal.signal(signal.SIGINT, previous)
