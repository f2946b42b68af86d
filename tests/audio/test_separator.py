from dataclasses import replace

import numpy as np
import pytest
import torch
from support import LOCAL_MODEL, assert_chunks_give_one_pass, make_model, synth

from vocalsep.audio.errors import InvalidAudioError
from vocalsep.audio.models import load_model
from vocalsep.audio.separator import Separator


class ConstantMask(torch.nn.Module):
    """Stands in for a network: the same mask value everywhere."""

    def __init__(self, config, value):
        super().__init__()
        self.config, self.value = config, value

    def forward(self, magnitude):
        batch, channels, bins, frames = magnitude.shape
        return torch.full((batch, len(self.config.targets), channels, bins, frames), self.value)


def with_network(separator, network):
    """`separator` with `network` (a stand-in module) in place of its model's."""
    masker = separator._estimator
    run = network if not isinstance(network, torch.nn.Module) else _numpy_run(network)
    masker.members = [replace(masker.members[0], run=run)]
    return separator


def _numpy_run(module):
    return lambda magnitude: module(torch.from_numpy(magnitude)).numpy()


def constant_separator(value, **options):
    separator = Separator(make_model(**options))
    return with_network(separator, ConstantMask(separator.config, value))


@pytest.mark.parametrize("rate", [16000, 44100, 8000])
@pytest.mark.parametrize("channels", [1, 2])
def test_all_ones_mask_reproduces_the_mixture(rate, channels):
    separator = constant_separator(1.0, max_bin=60)  # band-limited model, mask extended
    mixture = synth(rate, rate * 2 + 123, channels)
    stems = separator.separate(mixture, rate)
    assert np.abs(stems["vocals"] - mixture).max() < 1e-5
    assert np.abs(stems["accompaniment"]).max() < 1e-5


def test_stems_sum_to_the_mixture():
    separator = Separator(make_model())
    mixture = synth(44100, 44100 * 3, 2)
    stems = separator.separate(mixture, 44100)
    assert not np.allclose(stems["vocals"], 0)
    assert np.abs(stems["vocals"] + stems["accompaniment"] - mixture).max() < 1e-6


@pytest.mark.parametrize("channels", [1, 2])
def test_batched_tiles_give_the_tile_by_tile_result(channels):
    """Tiles go through the network `tile_batch` at a time (faster on a CPU); in eval mode a
    batch is a set of independent items, so the stems are those of one tile per call."""
    model = make_model(audio_channels=2, tile_frames=32, tile_overlap=8)
    mixture = synth(44100, 44100 * 6 + 17, channels)
    calls = []
    model.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
    one = Separator(model, tile_batch=1, chunk_seconds=4.0).separate(mixture, 44100)
    assert set(calls) == {1}  # one song, its channels folded into the network's two
    tiles = len(calls)
    calls.clear()
    batched = Separator(model, tile_batch=5, chunk_seconds=4.0).separate(mixture, 44100)
    assert sum(calls) == tiles and max(calls) == 5 and len(calls) < tiles / 2
    for stem in one:
        assert np.abs(batched[stem] - one[stem]).max() < 1e-5
    with pytest.raises(ValueError, match="tile_batch"):
        Separator(model, tile_batch=0)


@pytest.mark.parametrize("rate,chunk_seconds", [(16000, 0.9), (22050, 4.0)])
def test_chunked_equals_unchunked_for_a_fully_convolutional_model(rate, chunk_seconds):
    # A depth-1 net with a 3x3 kernel (`LOCAL_MODEL`). At 22050 Hz the mixture is resampled
    # for the 16 kHz model, and chunks start on both frame grids.
    mixture = synth(rate, rate * 25 + 11, 2)
    assert_chunks_give_one_pass(make_model(**LOCAL_MODEL), mixture, rate, chunk_seconds, 0.2, 5)


class TileGlobalMask(torch.nn.Module):
    """Stands in for a network whose receptive field is the whole tile: each frame's mask
    depends on the mean of the tile it is in, so a tile cut anywhere else gives other masks."""

    def __init__(self, config):
        super().__init__()
        self.config = config

    def forward(self, magnitude):
        level = torch.log1p(magnitude)
        mask = torch.sigmoid(4 * (level - level.mean(dim=(-2, -1), keepdim=True)))
        return mask[:, None].expand(-1, len(self.config.targets), -1, -1, -1)


@pytest.mark.parametrize(
    "rate,chunk_seconds,tolerance",
    [(16000, 0.9, 1e-6), (16000, 2.3, 1e-6), (44100, 1.7, 1e-5), (22050, 3.1, 1e-5)],
)
@pytest.mark.parametrize("overlap_seconds", [None, 0.25], ids=["butted", "cross-faded"])
def test_chunks_give_the_one_pass_result_whatever_the_receptive_field(
    rate, chunk_seconds, tolerance, overlap_seconds
):
    # Tiles of 40 frames with no context, and a "network" that looks at the whole tile: the
    # chunks' frame tiles must be the song's own tiles for the result not to change. At other
    # rates the resampler's precision is the limit (measured: 2e-7 for the shipped model).
    separator = Separator(make_model(tile_frames=40, tile_overlap=8), chunk_seconds=100.0)
    with_network(separator, TileGlobalMask(separator.config))
    mixture = synth(rate, round(rate * 9.3), 2)
    whole = separator.separate(mixture, rate)
    separator.chunk_seconds = chunk_seconds
    separator.overlap_seconds = overlap_seconds
    plan = separator._chunk_plan(rate)
    assert plan.num_tiles(mixture.shape[-1]) >= 3  # really chunked
    assert (plan.overlap > 0) == (overlap_seconds is not None)
    chunked = separator.separate(mixture, rate)
    assert np.abs(whole["vocals"]).max() > 0.1
    for stem in whole:
        assert np.abs(whole[stem] - chunked[stem]).max() < tolerance


def test_chunks_cross_fade_only_where_the_rates_do_not_align():
    """Chunks that join exactly are butted; at a rate too incommensurable with the model's to
    start chunks on whole model samples, they overlap by 1 s (a quarter chunk at most)."""
    separator = Separator(make_model(), chunk_seconds=15.0)
    assert separator._chunk_plan(44100).overlap == 0
    assert separator._chunk_plan(16000).overlap == 0
    short = Separator(make_model(), chunk_seconds=1.5)
    assert short._chunk_plan(44101).overlap == round(0.375 * 44101)
    mixture = synth(44101, 44101 * 4, 2)
    one_pass = Separator(make_model(), chunk_seconds=100.0).separate(mixture, 44101)
    chunked = short.separate(mixture, 44101)
    for stem in one_pass:
        assert np.abs(chunked[stem] - one_pass[stem]).max() < 1e-3


@pytest.mark.parametrize("rate", [16000, 44100])
@pytest.mark.parametrize("wiener", [0, 1])
def test_a_chunk_estimates_only_what_its_context_leaves(rate, wiener):
    """`estimate(chunk, rate, start, context)` computes the samples between the contexts only
    (the input STFT, masks and iSTFT over them, the network tiles that reach them; with the
    Wiener filter the whole chunk): the same samples as estimating the whole chunk, for a
    network that looks at its whole tile."""
    separator = Separator(make_model(tile_frames=40, tile_overlap=8), wiener_iterations=wiener)
    with_network(separator, TileGlobalMask(separator.config))
    estimator = separator._estimator
    runs = []
    member = estimator.members[0]
    estimator.members = [replace(member, run=lambda x: runs.append(len(x)) or member.run(x))]
    chunk = synth(rate, rate * 10, 2)
    context = separator._chunk_plan(rate).context
    assert 0 < 2 * context < chunk.shape[-1] // 2
    whole = estimator.estimate(chunk, rate, 12345 * rate // 16000, 0)
    tiles = sum(runs)
    runs.clear()
    middle = estimator.estimate(chunk, rate, 12345 * rate // 16000, context)
    assert middle.shape[-1] == chunk.shape[-1] - 2 * context
    np.testing.assert_allclose(middle, whole[..., context:-context], rtol=0, atol=1e-6)
    # the Wiener filter's covariances reach over the whole chunk: then every tile runs
    assert sum(runs) < tiles if not wiener else sum(runs) == tiles


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 44100, 48000])
@pytest.mark.parametrize("length", [1, 2, 255, 4001])
@pytest.mark.parametrize("channels", [1, 2, 3])
def test_output_keeps_length_rate_and_channels(rate, length, channels):
    separator = Separator(make_model(audio_channels=2))
    mixture = synth(rate, length, channels, seed=length)
    stems = separator.separate(mixture, rate)
    assert set(stems) == {"vocals", "accompaniment"}
    for value in stems.values():
        assert value.shape == mixture.shape and value.dtype == np.float32
        assert np.isfinite(value).all()


def test_minutes_long_mono_vector():
    separator = Separator(make_model(), chunk_seconds=20)
    mixture = synth(16000, 16000 * 125, 1)[0]
    stems = separator.separate(mixture, 16000)
    assert stems["vocals"].shape == mixture.shape


def test_full_band_output_above_the_model_rate():
    """A 16 kHz model on 44.1 kHz input: a 15 kHz tone still reaches the stems."""
    rate = 44100
    t = np.arange(rate) / rate
    tone = (0.5 * np.sin(2 * np.pi * 15000 * t)).astype(np.float32)[None]
    kept = constant_separator(1.0).separate(tone, rate)["vocals"]
    assert np.abs(kept - tone).max() < 1e-4
    # With the "top" extension the mask above the band follows the band's top eighth:
    separator = constant_separator(0.25)
    vocals = separator.separate(tone, rate)["vocals"]
    assert np.abs(vocals - 0.25 * tone).max() < 1e-4


def test_predict_mask_is_full_band_and_extends_the_top_of_the_band():
    separator = Separator(make_model(max_bin=64))  # 129 bins, the network sees 64
    magnitude = torch.rand(2, 129, 50)
    mask = separator.predict_mask(magnitude)
    assert mask.shape == (2, 2, 129, 50)  # vocals, accompaniment (the residual: 1 - vocals)
    assert mask.min() >= 0 and mask.max() <= 1
    assert torch.allclose(mask[1], 1 - mask[0])
    top = mask[..., 56:64, :].mean(dim=-2, keepdim=True)
    assert torch.allclose(mask[..., 64:, :], top.expand(-1, -1, 65, -1), atol=1e-6)
    batched = separator.predict_mask(magnitude[None])
    assert torch.allclose(batched[0], mask)
    with pytest.raises(ValueError):
        separator.predict_mask(torch.rand(2, 100, 50))


def test_stereo_network_on_mono_and_stereo():
    separator = Separator(make_model(audio_channels=2, targets=("vocals", "accompaniment")))
    assert separator.stems == ["vocals", "accompaniment"]
    for channels in (1, 2, 4):
        magnitude = torch.rand(channels, 129, 20)
        assert separator.predict_mask(magnitude).shape == (2, channels, 129, 20)


def test_save_load_gives_identical_output(tmp_path):
    model = make_model(audio_channels=2)
    model.save(tmp_path / "model.ckpt", metadata={"licence": "test"})
    loaded = load_model(tmp_path / "model.ckpt")
    assert loaded.config == model.config
    mixture = synth(16000, 16000 * 2, 2)
    before = Separator(model).separate(mixture, 16000)
    after = Separator(loaded).separate(mixture, 16000)
    for stem in before:
        assert np.array_equal(before[stem], after[stem])


def test_silence_gives_silent_stems():
    stems = Separator(make_model()).separate(np.zeros((2, 20000), np.float32), 16000)
    for value in stems.values():
        assert np.abs(value).max() < 1e-6


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples_are_rejected(bad):
    mixture = synth(16000, 5000, 2)
    mixture[1, 1234] = bad
    with pytest.raises(InvalidAudioError, match="NaN or infinite"):
        Separator(make_model()).separate(mixture, 16000)


def test_empty_input_is_rejected():
    with pytest.raises(InvalidAudioError, match="no audio"):
        Separator(make_model()).separate(np.zeros((2, 0), np.float32), 16000)
