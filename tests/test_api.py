"""The public Python API as a user calls it."""

import numpy as np
import pytest
import soundfile as sf
import torch
from support import synth, write_wav

import vocalsep
from vocalsep.pretrained import ModelNotFoundError


def test_public_names():
    assert vocalsep.__version__
    for name in ("Separator", "load_separator", "separate_file", "predict_mask"):
        assert callable(getattr(vocalsep, name))


def test_separator_from_a_checkpoint_path(tiny_checkpoint):
    separator = vocalsep.Separator.from_pretrained(tiny_checkpoint, device="cpu")
    assert separator.stems == ["vocals", "accompaniment"]
    mixture = synth(44100, 30000, 2)
    stems = separator.separate(torch.from_numpy(mixture), 44100)
    assert stems["vocals"].shape == mixture.shape
    mask = separator.predict_mask(torch.rand(2, separator.config.stft.n_bins, 9))
    assert mask.shape == (1, 2, separator.config.stft.n_bins, 9)
    same = vocalsep.predict_mask(torch.ones(1, 129, 3), separator)
    assert same.shape == (1, 1, 129, 3) and 0 <= same.min() and same.max() <= 1


def test_no_default_model_and_unknown_names(tmp_path, monkeypatch):
    from vocalsep import pretrained

    monkeypatch.setattr(pretrained, "DEFAULT_MODELS", {})
    with pytest.raises(ModelNotFoundError, match="no default"):
        vocalsep.Separator.from_pretrained()
    with pytest.raises(ModelNotFoundError, match="neither a shipped model"):
        vocalsep.load_separator("no-such-model")
    with pytest.raises(ModelNotFoundError, match="not a file"):
        vocalsep.load_separator(tmp_path)


def test_separate_file(tmp_path, tiny_checkpoint):
    song = write_wav(tmp_path / "song.wav", synth(16000, 40000, 1), 16000)
    seen = []
    written = vocalsep.separate_file(
        song,
        tmp_path / "out",
        model=tiny_checkpoint,
        device="cpu",
        format="flac",
        progress=lambda done, total: seen.append((done, total)),
    )
    assert set(written) == {"vocals", "accompaniment"}
    assert written["vocals"] == tmp_path / "out" / "song" / "vocals.flac"
    vocals, rate = sf.read(written["vocals"])
    assert rate == 16000 and vocals.shape == (40000,)
    assert seen and seen[-1] == (2.5, 2.5)
    assert np.all(np.diff([done for done, _ in seen]) > 0)
