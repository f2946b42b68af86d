"""Stored outputs: what users get does not change unless a change means it to.

The expected arrays in tests/data/ are regenerated only on purpose, by
`python tests/data/make_expected.py` (see its docstring). The legacy checkpoints there were
saved by an earlier version of vocalsep: they must keep loading and give the same stems.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from make_expected import SONG_RATE, inputs

from vocalsep import api, pretrained
from vocalsep.audio.separator import Separator

DATA = Path(__file__).resolve().parent / "data"
EXPECTED = np.load(DATA / "expected_outputs.npz")
INPUTS = inputs()


def _check_stems(stems: dict[str, np.ndarray], vocals: np.ndarray) -> None:
    assert set(stems) == {"vocals", "accompaniment"}
    np.testing.assert_allclose(stems["vocals"], vocals, rtol=0, atol=1e-5)
    np.testing.assert_allclose(stems["accompaniment"], INPUTS["song"] - vocals, rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    "name", sorted(n for n, m in pretrained.MODELS.items() if m.task == "audio-separation")
)
@pytest.mark.parametrize("wiener", [0, 1])
def test_shipped_separation_model_output_is_unchanged(name, wiener):
    separator = api.load_separator(name, device="cpu", wiener_iterations=wiener)
    stems = separator.separate(INPUTS["song"], SONG_RATE)
    _check_stems(stems, EXPECTED[f"{name}/wiener{wiener}/vocals"])


@pytest.mark.parametrize(
    "name", sorted(n for n, m in pretrained.MODELS.items() if m.task == "image-segmentation")
)
def test_shipped_image_model_output_is_unchanged(name):
    labels = api.segment_image(INPUTS["picture"], name, device="cpu")
    np.testing.assert_array_equal(labels, EXPECTED[f"{name}/labels"])


@pytest.mark.parametrize("name", ["legacy_spectrogram", "legacy_waveform"])
def test_a_checkpoint_from_an_earlier_version_gives_the_same_stems(name):
    separator = Separator.from_pretrained(DATA / f"{name}.ckpt", device="cpu")
    _check_stems(separator.separate(INPUTS["song"], SONG_RATE), EXPECTED[f"{name}/vocals"])


def test_a_checkpoint_that_relies_on_a_retired_experiment_is_refused(tmp_path):
    """Earlier versions wrote `stereo_cue` into every spectrogram model's config: off, it is
    dropped on load (above); on, the model needs code this version no longer has."""
    from vocalsep.core.checkpoint import load_checkpoint, save_checkpoint
    from vocalsep.core.errors import CheckpointError

    checkpoint = load_checkpoint(DATA / "legacy_spectrogram.ckpt")
    assert checkpoint.task_config["stereo_cue"] is False
    checkpoint.task_config = {**checkpoint.task_config, "stereo_cue": True}
    save_checkpoint(checkpoint, tmp_path / "cue.ckpt")
    with pytest.raises(CheckpointError, match="stereo_cue, an experiment"):
        Separator.from_pretrained(tmp_path / "cue.ckpt")
