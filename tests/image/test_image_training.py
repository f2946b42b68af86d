"""End to end: train on synthesized scenes through `vocalsep.api.train` (the trainer audio uses),
then segment with `vocalsep segment` and score with `vocalsep evaluate --task image`."""

import json

import numpy as np
import pytest
from imaging import SCENE_CLASSES, write_dataset
from PIL import Image

from vocalsep import api
from vocalsep.cli import main
from vocalsep.core.checkpoint import load_checkpoint
from vocalsep.core.errors import ConfigError
from vocalsep.train import RunConfig


def run_config(train, validation="", **task):
    return RunConfig.from_dict(
        {
            "task": "segmentation",
            "trainer": {
                "steps": 40,
                "batch_size": 4,
                "validate_every": 20,
                "checkpoint_every": 20,
                "log_every": 10,
                "monitor": "miou",
                "monitor_mode": "max",
                "device": "cpu",
                "threads": 1,
            },
            "optimizer": {"name": "adam", "lr": 0.01},
            "task_config": {
                "dataset": "custom",
                "model": {
                    "class_names": list(SCENE_CLASSES),
                    "mean": [0.5],
                    "std": [0.25],
                    "tile_size": 32,
                    "tile_overlap": 8,
                },
                "network": {"channels": [8, 16], "convs_per_level": 1},
                "data": {"train": str(train), "validation": str(validation)},
                "augment": {"crop": [32, 32], "scale": [0.8, 1.25], "brightness": 0.1},
                "loss": {"dice": 1.0, "class_weighting": "median_frequency"},
                **task,
            },
        }
    )


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    root = tmp_path_factory.mktemp("scenes")
    return write_dataset(root / "train", count=8, seed=0), write_dataset(root / "val", seed=1)


@pytest.fixture(scope="module")
def trained(scenes, tmp_path_factory):
    train, validation = scenes
    out = tmp_path_factory.mktemp("run")
    result = api.train(run_config(train, validation), out, progress=False)
    return result, out


def test_training_learns_and_selects_on_miou(trained):
    result, out = trained
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    validations = [r for r in records if r["event"] == "validation"]
    assert [r["step"] for r in validations] == [20, 40]
    last = validations[-1]
    for key in ("miou", "global_acc", "class_acc", "fwiou", "dice", "iou_disc", "loss"):
        assert key in last
    assert last["global_acc"] > 0.85 and last["miou"] > 0.6, last  # colours are easy to learn
    best = load_checkpoint(result.best)
    assert best.task == "image-segmentation"
    assert best.metadata["validation"]["miou"] == pytest.approx(result.best_score)


def test_segment_and_evaluate_from_the_command_line(trained, scenes, tmp_path, capsys):
    result, _ = trained
    _, validation = scenes
    before = {p.name: p.read_bytes() for p in (validation / "images").iterdir()}
    out = tmp_path / "out"
    code = main(
        ["segment", str(validation / "images"), "--model", str(result.best), "-o", str(out)]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{i}_{kind}.png" for i in range(4) for kind in ("labels", "overlay")
    )
    labels = np.asarray(Image.open(out / "0_labels.png"))
    truth = np.asarray(Image.open(validation / "labels" / "0.png"))
    assert labels.shape == truth.shape and set(np.unique(labels)) <= {0, 1, 2}
    assert (labels == truth)[truth != 255].mean() > 0.8
    assert Image.open(out / "0_overlay.png").mode == "RGB"
    assert {p.name: p.read_bytes() for p in (validation / "images").iterdir()} == before

    code = main(
        ["evaluate", "--task", "image", "--model", str(result.best), "--root", str(validation)]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    lines = captured.out.splitlines()
    assert "(4 images)" in lines[0]
    assert [line.split()[0] for line in lines[2:5]] == list(SCENE_CLASSES)
    assert "mIoU" in lines[-1] and "global accuracy" in lines[-1]


def test_cross_validation_folds_and_config_errors(scenes, tmp_path):
    train, _ = scenes
    config = run_config(train, data={"train": str(train), "folds": 4, "fold": 3})
    config = config.replace(trainer=config.trainer.replace(steps=2, validate_every=0))
    result = api.train(config, tmp_path / "fold3", progress=False)
    assert result.validations[-1]["step"] == 2
    with pytest.raises(ConfigError, match="data.validation"):
        api.build_task(run_config(train))
    with pytest.raises(ConfigError, match="unknown dataset"):
        api.build_task(run_config(train, train, dataset="pascal"))


def test_mistyped_network_field_names_its_path(scenes):
    train, validation = scenes
    config = run_config(train, validation, network={"channels": [8, "x"]})
    with pytest.raises(ConfigError, match=r"^task_config\.network\.channels\[1\]: expected an"):
        api.build_task(config)
