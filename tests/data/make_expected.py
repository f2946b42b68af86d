"""Regenerate the stored outputs that tests/test_regression.py compares against.

    python tests/data/make_expected.py

Run it only on purpose: when a change is *meant* to change what users get (and say so in the
commit). It writes, next to this file:
- `expected_outputs.npz`: the vocals of every shipped separation model (with and without the
  Wiener post-filter; the accompaniment is the rest of the mixture) and the labels of every
  shipped image model, for short synthesized inputs (`inputs()` below, as the test builds);
- `legacy_*.ckpt` (only where missing: they stay as an earlier version wrote them) and their
  outputs: tiny models, so that later versions are held to load them and give the same
  output (format and parameter names).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/support.py

SONG_RATE = 44100


def inputs() -> dict[str, np.ndarray]:
    """The synthesized inputs: a stereo 44.1 kHz 'song' (0.75 s) and an RGB picture."""
    from support import synth

    rng = np.random.default_rng(7)
    picture = np.zeros((72, 96, 3), np.uint8)
    picture[:36] = (110, 150, 220)  # a sky over a road, with noise
    picture[36:] = (90, 90, 90)
    picture = np.clip(picture + rng.integers(-20, 21, picture.shape), 0, 255).astype(np.uint8)
    return {"song": synth(SONG_RATE, int(0.75 * SONG_RATE), 2, seed=3), "picture": picture}


def legacy_models():
    """Tiny models with random weights, one per model kind, saved by today's code."""
    from support import LOCAL_MODEL, make_model

    from vocalsep.audio.models import WaveformModel, WaveformModelConfig
    from vocalsep.core.unet import preset

    spectrogram = make_model(audio_channels=2, seed=11, **LOCAL_MODEL)
    torch.manual_seed(12)
    config = WaveformModelConfig(sample_rate=8000, audio_channels=2, tile_samples=2000)
    network = preset("waveunet", in_channels=2, out_channels=2, channels=(4, 8))
    waveform = WaveformModel(config, "unet", network).eval()
    return {"legacy_spectrogram": spectrogram, "legacy_waveform": waveform}


def main() -> None:
    from vocalsep import api, pretrained
    from vocalsep.audio.separator import Separator

    data = inputs()
    expected: dict[str, np.ndarray] = {}
    for name, model in pretrained.MODELS.items():
        if model.task == "audio-separation":
            for wiener in (0, 1):
                separator = api.load_separator(name, device="cpu", wiener_iterations=wiener)
                stems = separator.separate(data["song"], SONG_RATE)
                expected[f"{name}/wiener{wiener}/vocals"] = stems["vocals"]
        else:
            expected[f"{name}/labels"] = api.segment_image(data["picture"], name, device="cpu")
    for name, model in legacy_models().items():
        path = HERE / f"{name}.ckpt"
        if not path.exists():  # once written, a legacy checkpoint is never replaced
            model.save(path, metadata={"trained_on": "nothing (random weights, for tests)"})
        separator = Separator.from_pretrained(path, device="cpu")
        expected[f"{name}/vocals"] = separator.separate(data["song"], SONG_RATE)["vocals"]
    np.savez_compressed(HERE / "expected_outputs.npz", **expected)
    for key, value in expected.items():
        print(f"{key}: {value.shape} {value.dtype}")


if __name__ == "__main__":
    main()
