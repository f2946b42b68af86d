"""Waveform (Wave-U-Net) models through the Separator: exact tile joins, stems that sum to the
mixture, save -> load, any input length, rate and channel count, full-band output."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from support import make_waveform_model, synth, write_wav

import vocalsep
from vocalsep.audio.models import (
    SpectrogramMaskModel,
    WaveformModel,
    WaveformModelConfig,
    load_model,
)
from vocalsep.audio.separator import Separator
from vocalsep.cli import main
from vocalsep.core.checkpoint import load_checkpoint
from vocalsep.core.errors import CheckpointError, ConfigError
from vocalsep.core.unet import preset


@pytest.fixture(scope="module")
def model() -> WaveformModel:
    return make_waveform_model()


@pytest.mark.parametrize("rate", [16000, 44100])
def test_tiles_and_chunks_join_exactly(model, rate):
    mixture = synth(rate, rate * 5 + 37, 2)
    whole = Separator(model, chunk_seconds=100.0).separate(mixture, rate)
    for chunk_seconds in (0.5, 1.3):
        separator = Separator(model, chunk_seconds=chunk_seconds, overlap_seconds=0.1)
        assert separator._chunk_plan(rate).num_tiles(mixture.shape[-1]) >= 3  # really chunked
        stems = separator.separate(mixture, rate)
        for stem in whole:
            assert np.abs(stems[stem] - whole[stem]).max() < 2e-6, (chunk_seconds, stem)
    if rate == model.config.sample_rate:
        # ... and equal one pass of the network over the whole song (zeros around it, on the
        # network's shift grid): the tiles leave no seam at all.
        pad = 64 * model.network_config.shift_multiple
        with torch.no_grad():
            padded = F.pad(torch.from_numpy(mixture)[None], (pad, pad))
            reference = model(padded)[0, 0, :, pad:-pad].numpy()
        assert np.abs(whole["vocals"] - reference).max() < 2e-6


def test_long_songs_stream_in_bounded_memory(model):
    """Blocks in, stems out as soon as they are final: a 16 s song in 0.5 s blocks with 1 s
    chunks holds a few seconds at a time, and gives what one `separate` call gives."""
    rate = 22050
    song = synth(rate, rate * 16 + 3, 2)
    consumed = []

    def blocks():
        for start in range(0, song.shape[-1], rate // 2):
            consumed.append(start)
            yield song[:, start : start + rate // 2]

    separator = Separator(model, chunk_seconds=1.0)
    outputs = []
    for stems in separator.separate_blocks(blocks(), rate):
        outputs.append((len(consumed), stems))
    assert outputs[0][0] <= 5  # the first stems came after about one chunk (and context)
    assert len(outputs) >= 10 and max(s["vocals"].shape[-1] for _, s in outputs) < 3 * rate
    vocals = np.concatenate([stems["vocals"] for _, stems in outputs], axis=-1)
    assert vocals.shape == song.shape
    assert np.abs(vocals - separator.separate(song, rate)["vocals"]).max() < 2e-6


def test_a_context_shorter_than_the_receptive_field_leaves_seams():
    """The check above has teeth: without enough context the tiles disagree."""
    model = make_waveform_model(tile_context=2)
    mixture = synth(16000, 16000 * 2, 2)
    whole = Separator(model, chunk_seconds=100.0).separate(mixture, 16000)
    chunked = Separator(model, chunk_seconds=0.5, overlap_seconds=0.0).separate(mixture, 16000)
    assert np.abs(chunked["vocals"] - whole["vocals"]).max() > 2e-5  # 10x the bound above


@pytest.mark.parametrize("rate", [8000, 16000, 44100])
@pytest.mark.parametrize("channels", [1, 2, 3])
def test_stems_sum_exactly_to_the_mixture(model, rate, channels):
    mixture = synth(rate, rate + 5, channels)
    stems = Separator(model).separate(mixture, rate)
    assert list(stems) == ["vocals", "accompaniment"]
    assert not np.allclose(stems["vocals"], 0)
    assert np.abs(stems["vocals"] + stems["accompaniment"] - mixture).max() < 1e-6
    with torch.no_grad():  # the network's own difference output, at the model's rate
        network_stems = model(torch.from_numpy(synth(16000, 999, 2))[None])
    assert torch.allclose(network_stems.sum(dim=1)[0], torch.from_numpy(synth(16000, 999, 2)))


def test_direct_output_with_the_residual_accompaniment():
    model = make_waveform_model(output="direct", targets=("vocals",))
    assert model.network_config.out_channels == 2
    separator = Separator(model)
    assert separator.stems == ["vocals", "accompaniment"]
    mixture = synth(16000, 9000, 2)
    stems = separator.separate(mixture, 16000)
    assert np.abs(stems["vocals"] + stems["accompaniment"] - mixture).max() < 1e-6


def test_save_load_gives_identical_output(model, tmp_path):
    path = tmp_path / "waveunet.ckpt"
    model.save(path, metadata={"licence": "test"})
    checkpoint = load_checkpoint(path, task="audio-separation")
    assert checkpoint.task_config["model_type"] == "waveform"
    assert checkpoint.model_config["upsample"] == "learned"
    loaded = load_model(path)
    assert isinstance(loaded, WaveformModel) and loaded.config == model.config
    mixture = synth(44100, 44100 * 2 + 1, 2)
    before = Separator(model).separate(mixture, 44100)
    after = vocalsep.load_separator(path, device="cpu").separate(mixture, 44100)
    for stem in before:
        assert np.array_equal(before[stem], after[stem])
    with pytest.raises(CheckpointError, match="unsupported model type 'waveform'"):
        SpectrogramMaskModel.from_checkpoint(checkpoint, path)


@pytest.mark.parametrize("rate", [16000, 44100, 22050])
@pytest.mark.parametrize("length", [1, 2, 15, 17, 4001])
def test_any_length_rate_and_channel_count(model, rate, length):
    separator = Separator(model)
    assert separator.min_samples(rate) == 1
    for channels in (1, 2):
        mixture = synth(rate, length, channels, seed=length)
        for waveform in (mixture, mixture[0]) if channels == 1 else (mixture,):
            stems = separator.separate(waveform, rate)
            for value in stems.values():
                assert value.shape == waveform.shape and value.dtype == np.float32
                assert np.isfinite(value).all()


@pytest.mark.parametrize("audio_channels", [1, 2])
def test_mono_and_stereo_networks_fold_channels(audio_channels):
    model = make_waveform_model(audio_channels=audio_channels)
    separator = Separator(model)
    mono = synth(16000, 8000, 1)
    twin = separator.separate(np.concatenate([mono, mono]), 16000)["vocals"]
    vocals = separator.separate(mono, 16000)["vocals"]
    assert vocals.shape == (1, 8000) and twin.shape == (2, 8000)
    if audio_channels == 1:  # each channel on its own: both the same as the mono song
        assert np.abs(twin - vocals).max() < 1e-6
    else:  # a mono song goes to both network channels, the two estimates are averaged
        assert np.abs(twin.mean(axis=0) - vocals[0]).max() < 1e-6


def test_full_band_output_above_the_model_rate(model):
    """A 16 kHz model on 44.1 kHz input hears nothing above 8 kHz: there the vocals are silent
    and the accompaniment keeps the mixture, so nothing is cut off."""
    rate = 44100
    t = np.arange(rate * 2) / rate
    tone = 0.3 * np.sin(2 * np.pi * 15000 * t) + 0.3 * np.sin(2 * np.pi * 440 * t)
    mixture = np.stack([tone, 0.5 * tone]).astype(np.float32)
    stems = Separator(model).separate(mixture, rate)

    def high_band(audio):
        middle = audio[:, rate // 2 : -rate // 2]
        above = np.fft.rfftfreq(middle.shape[-1], 1 / rate) > 9000
        return np.abs(np.fft.rfft(middle, axis=-1))[:, above]

    peak = high_band(mixture).max()
    assert high_band(stems["vocals"]).max() < 1e-3 * peak
    assert np.abs(high_band(stems["accompaniment"]) - high_band(mixture)).max() < 1e-3 * peak


def test_spectrogram_only_features_say_so(model):
    separator = Separator(model)
    with pytest.raises(ConfigError, match="spectrogram masking model"):
        separator.predict_mask(torch.rand(2, 129, 10))
    with pytest.raises(ConfigError, match="Wiener"):
        Separator(model, wiener_iterations=1)


@pytest.mark.parametrize(
    "changes",
    [
        {"output": "sum"},
        {"output": "difference", "targets": ("vocals",)},
        {"targets": ("vocals", "mixture")},
        {"tile_overlap": 1000},
        {"tile_context": -1},
        {"audio_channels": 0},
    ],
    ids=str,
)
def test_invalid_waveform_configs(changes):
    with pytest.raises(ConfigError):
        WaveformModelConfig(**{"tile_samples": 1000, **changes})


def test_waveform_models_need_a_1d_linear_network():
    config = WaveformModelConfig(sample_rate=16000, targets=("vocals", "accompaniment"))
    with pytest.raises(ConfigError, match="1-D"):
        WaveformModel(config, "unet", preset("jansson2017"))
    with pytest.raises(ConfigError, match="linear"):
        WaveformModel(config, "unet", preset("waveunet", head="mask", channels=(4,)))
    with pytest.raises(ConfigError, match="out_channels must be 1"):
        WaveformModel(config, "unet", preset("waveunet", out_channels=2, channels=(4,)))


def test_cli_separates_with_a_waveform_model(model, tmp_path, capsys):
    path = tmp_path / "waveunet.ckpt"
    model.save(path)
    song = write_wav(tmp_path / "song.wav", synth(22050, 22050 * 2, 2), 22050)
    out = tmp_path / "out"
    assert main(["separate", str(song), "-o", str(out), "--model", str(path)]) == 0
    code = main(["separate", str(song), "-o", str(out), "--model", str(path), "--wiener", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "waveform model" in err[0]
