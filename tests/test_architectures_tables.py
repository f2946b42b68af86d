"""benchmarks/architectures.py turns the equal-budget results into tables: every row, its
command, the CRF rows, and the hand-written lessons kept when the file is rewritten."""

import json

from support import load_benchmark


def _script():
    return load_benchmark("architectures")


def _row(name, task, **extra):
    row = {
        "architecture": name,
        "task": task,
        "seed": 0,
        "params_m": 1.25,
        "step_cpu_s": 0.5,
        "steps": 360,
        "cpu_min_used": 2.9,
        "command": f"vocalsep train {task}.toml --set 'task_config.architecture=\"{name}\"'",
    }
    return {**row, **extra}


def test_tables_have_every_row_ranked_with_its_command(tmp_path, monkeypatch):
    script = _script()
    monkeypatch.setattr(script, "RESULTS", tmp_path)
    audio = {
        "fcn": _row(
            "fcn",
            "audio",
            validation={"sdr": 3.0},
            dev={"vocals_sdr": 4.5, "accompaniment_sdr": 9.0},
            width={"factor": 0.5, "real_time": 47.0, "criterion": "in-process"},
        ),
        "unet": _row(
            "unet",
            "audio",
            validation={"sdr": 4.0},
            dev={"vocals_sdr": 6.25, "accompaniment_sdr": 11.0},
            real_time_180s=41.5,
        ),
    }
    image = {
        "segnet": _row(
            "segnet",
            "image",
            image_ms=65.0,
            validation={"global_acc": 0.8, "class_acc": 0.5, "miou": 0.4},
        ),
    }
    (tmp_path / "audio-3min.json").write_text(json.dumps(audio))
    image["mmdensenet"] = _row(
        "mmdensenet",
        "image",
        cpu_estimated=True,
        validation={"global_acc": 0.5, "class_acc": 0.3, "miou": 0.2},
    )
    (tmp_path / "image-3min.json").write_text(json.dumps(image))
    crf = {
        "without CRF": {
            "global_acc": 0.9,
            "class_acc": 0.7,
            "miou": 0.6416,
            "seconds": 16.2,
            "images": 101,
            "command": "c1",
        }
    }
    (tmp_path / "image-crf.json").write_text(json.dumps(crf))
    text = "\n".join(script.quality_sections())
    lines = text.splitlines()
    unet = next(i for i, line in enumerate(lines) if line.startswith("| unet |"))
    fcn = next(i for i, line in enumerate(lines) if line.startswith("| fcn |"))
    assert unet < fcn  # ranked by dev vocals SDR
    assert (
        "| fcn | x0.5 | 1.25 | 47.0 (30 s in process) | - | 0.50 | 360 | 2.90 | 3.00 | 4.50 "
        "| 9.00 |" in lines
    )
    assert "| segnet | 1.25 | 65 | 0.50 | 360 | 2.90 | 80.00 | 50.00 | 40.00 |" in lines
    assert "| mmdensenet | 1.25 | - | 0.50 | 360 | ~2.90 | 50.00 | 30.00 | 20.00 |" in lines
    assert "| without CRF | 90.00 | 70.00 | 64.16 | 16.2 | 101 |" in lines
    for name in ("fcn", "unet", "segnet"):
        assert "vocalsep train" in next(
            line for line in lines if line.startswith("- ") and f", {name}:" in line
        )
    assert "- CRF, without CRF: `c1`" in lines


def test_no_results_says_quality_is_not_measured(tmp_path, monkeypatch):
    script = _script()
    monkeypatch.setattr(script, "RESULTS", tmp_path)
    assert "not measured yet" in "\n".join(script.quality_sections())
