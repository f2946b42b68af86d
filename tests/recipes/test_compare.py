"""recipes/architectures/compare.py: every architecture builds at the compared widths, and a
run gets the steps its CPU budget buys, trains them, and is scored on dev tracks."""

import json
import math

import numpy as np
import pytest
from compare import base_network, build, image_ms, overrides, scaled, toml_value, train_one

from vocalsep.audio.toy import toy_accompaniment, toy_vocals, write_toy_sources
from vocalsep.audio.writer import write_audio
from vocalsep.core.networks import architecture_names, network_config


def test_scaled_multiplies_every_width_field_and_keeps_two_channels():
    network = {"channels": [8, 16, 256], "growth": 12, "first_channels": 3, "kernel_size": 5}
    assert scaled(network, 0.25) == {
        "channels": [2, 4, 64],
        "growth": 3,
        "first_channels": 2,
        "kernel_size": 5,
    }


def test_toml_value_writes_inline_tables_the_config_reader_parses():
    from vocalsep.train.config import parse_override

    value = {"channels": [4, 8], "head": "mask", "rates": [2, 4]}
    assert parse_override(f"task_config.network={toml_value(value)}") == (
        ["task_config", "network"],
        value,
    )


@pytest.mark.parametrize("name", architecture_names())
def test_every_architecture_builds_in_both_recipes_at_a_quarter_width(name):
    import torch

    network = scaled(base_network("audio", name), 0.25)
    run, task = build("audio", name, overrides("audio", name, network))
    model = task.build_model()
    assert run.task_config["architecture"] == name
    assert model.architecture == name
    if network_config(name, {}).dims != 2:
        return
    _, task = build("image", name, overrides("image", name, {}))
    logits = task.build_model().eval()(torch.rand(1, 3, 37, 45))
    assert logits.shape[-2:] == (37, 45)


@pytest.fixture
def tiny_recipe(tmp_path, monkeypatch):
    """The tiny recipe on toy sources, and two toy dev tracks, in place of the real data."""
    import compare

    sources = write_toy_sources(tmp_path / "sources", seconds=8.0)
    text = (compare.RECIPES_ROOT / "tiny" / "config.toml").read_text()
    config = tmp_path / "tiny.toml"
    config.write_text(text.replace("/tmp/vocalsep-tiny", str(sources)))
    rng = np.random.default_rng(1)
    for track in ("a", "b"):
        vocals = np.repeat(toy_vocals(rng, 8000, 4.0, 150.0), 2, axis=0)
        music = toy_accompaniment(rng, 8000, 4.0)
        for stem, audio in (("vocals", vocals), ("accompaniment", music)):
            write_audio(tmp_path / "dev" / track / f"{stem}.wav", audio, 8000, "wav", "16")
        write_audio(tmp_path / "dev" / track / "mixture.wav", vocals + music, 8000, "wav", "16")
    monkeypatch.setitem(compare.CONFIGS, "audio", str(config))
    monkeypatch.setattr(compare, "DEV", str(tmp_path / "dev"))
    return tmp_path


def test_a_run_gets_the_steps_its_budget_buys_and_is_scored_on_dev(tiny_recipe):
    budget = 0.02  # CPU-minutes: below the 10-step floor on any machine
    row = train_one("audio", "fcn", {"channels": [4, 8, 8]}, budget, 0, tiny_recipe / "runs")
    assert row["steps"] == max(10, int(budget * 60 / row["step_cpu_s"]))
    assert row["step_cpu_s"] > 0
    # The CPU time the run used is measured, not copied from the budget.
    assert 0 < row["cpu_min_used"] * 60 < 20 * row["steps"] * row["step_cpu_s"]
    log = [
        json.loads(line) for line in open(tiny_recipe / "runs" / "audio-0.02min-fcn" / "log.jsonl")
    ]
    assert max(r["step"] for r in log) == row["steps"]
    assert f"--set 'trainer.steps={row['steps']}'" in row["command"]
    assert row["dev"]["tracks"] == 2
    assert math.isfinite(row["dev"]["vocals_sdr"])
    assert math.isfinite(row["dev"]["accompaniment_sdr"])
    assert math.isfinite(row["validation"]["sdr"])


def test_image_speed_is_timed_on_a_full_frame_through_the_tiled_path():
    from imaging import make_segmentation_model

    assert image_ms(make_segmentation_model(), repeats=1) > 0


def test_the_best_three_are_chosen_on_validation_not_dev(tmp_path, monkeypatch):
    import compare

    monkeypatch.setattr(compare, "RESULTS", tmp_path)
    rows = {
        name: {"architecture": name, "validation": {"sdr": val}, "dev": {"vocals_sdr": dev}}
        for name, val, dev in [("a", 1.0, 9.0), ("b", 4.0, 1.0), ("c", 3.0, 2.0), ("d", 2.0, 3.0)]
    }
    compare.update(compare.results_file("audio", 3), rows)
    assert compare.best_three("audio", 3) == ["b", "c", "d"]


def test_the_end_to_end_criterion_times_the_command_on_an_untrained_checkpoint(monkeypatch):
    import compare

    timed = []

    def fake_end_to_end(path):
        from vocalsep.core.checkpoint import load_checkpoint

        timed.append(load_checkpoint(path).architecture)
        return 31.0

    monkeypatch.setattr(compare, "end_to_end", fake_end_to_end)
    monkeypatch.setattr(compare, "update", lambda path, rows: None)
    chosen = compare.widths(["fcn"], "end-to-end")
    assert timed == ["fcn"]  # the widest factor passes 30x, so only it is timed
    assert chosen["fcn"]["factor"] == 1.0 and chosen["fcn"]["criterion"] == "end-to-end"


def test_when_no_width_is_fast_enough_the_fastest_of_the_narrowest_and_the_shallow_variant_is_kept(
    monkeypatch,
):
    import compare

    speeds = iter([5.0, 6.0, 7.0, 8.0, 9.0, 26.0])  # x1 ... x0.25, then one layer per block

    monkeypatch.setattr(compare, "untrained_end_to_end", lambda task: next(speeds))
    monkeypatch.setitem(compare.CRITERIA, "end-to-end", (compare.untrained_end_to_end, 30.0))
    monkeypatch.setattr(compare, "update", lambda path, rows: None)
    chosen = compare.widths(["fcdensenet"], "end-to-end")["fcdensenet"]
    assert chosen["factor"] == "one dense layer per block" and chosen["real_time"] == 26.0
    assert chosen["network"] == compare.SHALLOW["fcdensenet"] and "no width" in chosen["note"]
