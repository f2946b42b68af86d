"""The models shipped inside the package: they load safely, carry their card, and work."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import vocalsep
from vocalsep import pretrained
from vocalsep.audio.metrics import signal_to_distortion_ratio
from vocalsep.core.checkpoint import load_checkpoint

DEV = Path(__file__).resolve().parents[3] / "shared" / "data" / "audio" / "dev"


@pytest.mark.parametrize("name", sorted(pretrained.MODELS))
def test_shipped_model_files(name):
    path = pretrained.model_path(name)
    assert path.is_file() and path.stat().st_size <= 30e6
    torch.load(path, map_location="cpu", weights_only=True)  # no code runs on load
    checkpoint = load_checkpoint(path, task=pretrained.MODELS[name].task)
    assert checkpoint.training_state is None
    assert "licence" in checkpoint.metadata and "trained_on" in checkpoint.metadata
    card = pretrained.model_card(name)
    for section in ("## Training data", "## Training", "## Results", "## Limitations"):
        assert section in card


def test_default_separation_model_is_shipped():
    default = pretrained.DEFAULT_MODELS["audio-separation"]
    separator = vocalsep.Separator.from_pretrained(device="cpu")
    assert separator.stems == ["vocals", "accompaniment"]
    assert pretrained.resolve(None, "audio-separation") == pretrained.model_path(default)


@pytest.mark.skipif(not DEV.is_dir(), reason="needs ../shared/data/audio/dev (real music)")
def test_default_model_separates_real_music():
    """On a real, professionally produced mixture the default model must clearly beat the
    mixture itself (fast global SDR, not BSSEval; the card has the museval figures)."""
    from vocalsep.audio.tracks import find_folder_tracks, load_track

    track = next(t for t in find_folder_tracks(DEV) if "Bearlin" in t.name)
    audio = load_track(track)
    stems = vocalsep.Separator.from_pretrained(device="cpu").separate(audio["mixture"], 44100)
    for stem in ("vocals", "accompaniment"):
        estimate = torch.from_numpy(stems[stem])
        reference = torch.from_numpy(audio[stem])
        mixture = torch.from_numpy(audio["mixture"])
        gain = float(signal_to_distortion_ratio(estimate, reference))
        floor = float(signal_to_distortion_ratio(mixture, reference))
        assert gain > floor + 5.0, (stem, gain, floor)  # a 0.5 mask gains < 5 dB here
    assert np.allclose(stems["vocals"] + stems["accompaniment"], audio["mixture"], atol=1e-5)
