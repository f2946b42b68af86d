"""Knowledge distillation (`teacher`, `teacher_weight`): in training, a spectrogram model's
targets blend the truth with a teacher's masked mixture on the student's STFT; validation
compares with the truth. `Separator.batch_masks` gives the teacher's masks."""

from __future__ import annotations

import pytest
import torch
from support import LOCAL_MODEL, make_model, synth

from vocalsep.audio.models import SpectrogramEnsemble
from vocalsep.audio.separator import Separator
from vocalsep.audio.stft import STFT
from vocalsep.audio.training import SeparationTask, SeparationTaskConfig
from vocalsep.core.errors import CheckpointError, ConfigError


class AllPass(torch.nn.Module):
    """A mask of ones: the masked mixture is the mixture's magnitude."""

    def forward(self, magnitude):
        return torch.ones(magnitude.shape[0], 1, *magnitude.shape[1:])


def _task(teacher="", weight=0.5):
    config = SeparationTaskConfig.from_dict(
        {
            "model": {
                "sample_rate": 16000,
                "stft": {"n_fft": 256, "hop_length": 64},
                "audio_channels": 2,
                "max_bin": 100,
            },
            "data": {"channels": 2},
            "teacher": teacher,
            "teacher_weight": weight,
        }
    )
    return SeparationTask(config)


def _batch(items=2, samples=16000):
    """`items` stereo examples: `(items, 2, samples)` mixtures and vocals."""
    vocals = torch.stack([torch.from_numpy(synth(16000, samples, 2, seed=i)) for i in range(items)])
    accompaniment = torch.stack(
        [torch.from_numpy(synth(16000, samples, 2, seed=10 + i)) for i in range(items)]
    )
    return {"mixture": vocals + accompaniment, "vocals": vocals}


def test_batch_masks_of_one_model_are_its_predict_mask_per_item():
    model = make_model(audio_channels=2, seed=3, **LOCAL_MODEL)
    separator = Separator(model)
    batch = _batch()["mixture"]
    stft = STFT(model.config.stft)
    masks = separator.batch_masks(batch, stft)
    assert masks.shape == (2, 1, 2, stft.n_bins, stft.config.num_frames(batch.shape[-1]))
    for i in range(2):
        vocals = separator.predict_mask(stft(batch[i]).abs())[:1]  # the targets' masks
        assert torch.allclose(masks[i], vocals, atol=1e-6)
    assert (masks[0] - masks[1]).abs().max() > 1e-3


def test_an_ensemble_teacher_maps_its_members_onto_the_students_stft():
    # Members at 256 / hop 64 and 512 / hop 128; the student's grid is the first member's.
    first = make_model(audio_channels=2, seed=0, **LOCAL_MODEL)
    second = make_model(audio_channels=2, seed=1, n_fft=512, hop_length=128, **LOCAL_MODEL)
    mixtures = _batch()["mixture"]
    stft = STFT(first.config.stft)
    both = Separator(SpectrogramEnsemble([first, second], [1, 1])).batch_masks(mixtures, stft)
    one = Separator(first).batch_masks(mixtures, stft)
    two = Separator(second).batch_masks(mixtures, stft)
    assert torch.allclose(both, (one + two) / 2, atol=1e-6)
    assert (one - two).abs().max() > 1e-3


def test_the_training_target_blends_truth_and_teacher(tmp_path):
    teacher = make_model(audio_channels=2, seed=2, max_bin=100, **LOCAL_MODEL)
    path = tmp_path / "teacher.ckpt"
    teacher.save(path)
    batch = _batch()
    model = AllPass().train()
    _, truth = _task()._masked(model, batch)
    _, taught = _task(str(path), weight=1.0)._masked(model, batch)
    _, half = _task(str(path), weight=0.25)._masked(model, batch)
    stft = STFT(teacher.config.stft)
    spectrum = stft(batch["mixture"])[..., :100, :]
    expected = Separator(teacher).batch_masks(batch["mixture"], stft)[..., :100, :]
    assert torch.allclose(taught, expected * spectrum.abs()[:, None], atol=1e-5)
    assert (taught - truth).abs().max() > 1e-2
    assert torch.allclose(half, 0.75 * truth + 0.25 * taught, atol=1e-5)
    # Validation (the model in eval mode) compares with the truth alone.
    _, validated = _task(str(path), weight=1.0)._masked(model.eval(), batch)
    assert torch.equal(validated, truth)
    # The loss can backpropagate through the student with the teacher's targets.
    student = make_model(audio_channels=2, seed=4, max_bin=100, **LOCAL_MODEL).train()
    _task(str(path), weight=0.5).loss(student, batch).backward()
    assert all(p.grad is not None for p in student.parameters() if p.requires_grad)


def test_teacher_settings_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="teacher_weight"):
        _task(weight=1.5)
    with pytest.raises(ConfigError, match="spectrogram models only"):
        SeparationTaskConfig.from_dict(
            {"model_type": "waveform", "preset": "waveunet", "teacher": "x.ckpt"}
        )
    other_rate = make_model(audio_channels=2, sample_rate=8000, **LOCAL_MODEL)
    other_rate.save(tmp_path / "8k.ckpt")
    # A wrong teacher fails when the task is built, before any data work.
    with pytest.raises(ConfigError, match="8000 Hz"):
        _task(str(tmp_path / "8k.ckpt"))
    with pytest.raises(CheckpointError):
        _task(str(tmp_path / "missing.ckpt"))
