"""recipes/synthetic/soup.py (weight averaging scored on a recipe's validation mixtures) and
recipes/synthetic/ensemble.py (averaged vocals of several models for `vocalsep evaluate`)."""

from __future__ import annotations

import importlib.util

import numpy as np
import soundfile as sf
import torch
from conftest import ROOT, tiny_overrides
from support import make_model, synth, write_track

from vocalsep.audio.separator import Separator
from vocalsep.core.checkpoint import load_checkpoint

RECIPES = ROOT / "recipes"


def _script(name):
    spec = importlib.util.spec_from_file_location(name, RECIPES / "synthetic" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ensemble_writes_the_mean_of_the_models_vocals(tmp_path):
    root = tmp_path / "dev"
    vocals, accompaniment = synth(16000, 20000, 2, seed=1), synth(16000, 20000, 2, seed=2)
    write_track(root / "song", vocals, accompaniment, 16000)
    paths = []
    for seed in (0, 1):
        path = tmp_path / f"m{seed}.ckpt"
        make_model(audio_channels=2, seed=seed).save(path)
        paths.append(str(path))
    out = tmp_path / "out"
    assert _script("ensemble").main([*paths, "--root", str(root), "--out", str(out)]) == 0
    mixture = vocals + accompaniment
    estimates = [Separator.from_pretrained(p).separate(mixture, 16000)["vocals"] for p in paths]
    expected = np.mean(estimates, axis=0)
    got, rate = sf.read(out / "song" / "vocals.wav", dtype="float32")
    rest, _ = sf.read(out / "song" / "accompaniment.wav", dtype="float32")
    assert rate == 16000 and np.abs(got.T - expected).max() < 1e-6
    assert np.abs(got.T + rest.T - mixture).max() < 1e-6
    assert np.abs(got.T - estimates[0]).max() > 1e-4  # both models count
    # An existing output folder is not touched.
    assert _script("ensemble").main([*paths, "--root", str(root), "--out", str(out)]) == 1


def _tiny_task_and_models(toy_audio):
    """The tiny recipe's config, its overrides, its task (4 validation mixtures) and two
    untrained models of it (seeds 0 and 1)."""
    from vocalsep.api import build_task
    from vocalsep.train import load_run_config

    config_path = RECIPES / "tiny" / "config.toml"
    overrides = tiny_overrides(toy_audio, "task_config.data.validation_examples=4")
    task = build_task(load_run_config(config_path, overrides))
    models = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        models.append(task.build_model())
    return config_path, [item for o in overrides for item in ("--set", o)], task, models


def test_greedy_soup_scores_on_validation_and_writes_the_average(toy_audio, tmp_path, capsys):
    config_path, sets, _, models = _tiny_task_and_models(toy_audio)
    paths = []
    for seed, model in enumerate(models):
        path = tmp_path / f"m{seed}.ckpt"
        model.save(path)
        paths.append(str(path))
    out = tmp_path / "soup.ckpt"
    argv = [str(config_path), *paths, "--out", str(out), "--greedy", *sets]
    assert _script("soup").main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.count("sdr_vocals_mean") == 3  # two checkpoints, one soup of both
    soup = load_checkpoint(out)
    kept = [item["checkpoint"] for item in soup.metadata["soup"]]
    assert kept and set(kept) <= set(paths)
    assert ("(kept)" in printed) == (len(kept) == 2)
    assert _script("soup").main(argv) == 1  # the soup exists: not overwritten


def test_score_only_scores_an_ensemble_as_its_separator_separates(toy_audio, tmp_path, capsys):
    from vocalsep.audio.models import SpectrogramEnsemble, load_model

    config_path, sets, task, members = _tiny_task_and_models(toy_audio)
    single, ensemble = tmp_path / "m0.ckpt", tmp_path / "ensemble.ckpt"
    members[0].save(single)
    SpectrogramEnsemble(members).save(ensemble)
    argv = [str(config_path), str(single), str(ensemble), "--score-only", *sets]
    assert _script("soup").main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all("sdr_vocals_mean" in line for line in lines)
    task.loss = lambda model, batch: torch.zeros(())
    expected = task.validate(load_model(ensemble), task.validation_batches(16))
    assert f"sdr_vocals_mean {expected['sdr_vocals_mean']:.3f}" in lines[1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ensemble.ckpt", "m0.ckpt"]


def test_soup_takes_shipped_model_names_and_says_what_is_missing(toy_audio, tmp_path, capsys):
    config_path, sets, _, _ = _tiny_task_and_models(toy_audio)
    argv = [str(config_path), "vocalsep-small", "--score-only", *sets]
    assert _script("soup").main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("vocalsep-small: sdr_vocals")
    missing = str(tmp_path / "nowhere.ckpt")
    argv = [str(config_path), missing, "--score-only", *sets]
    assert _script("soup").main(argv) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and "neither a shipped model" in captured.err
