import pytest
import torch

from vocalsep.core.errors import ConfigError
from vocalsep.core.tiling import StreamingOverlapAdd, TilePlan, overlap_add


def stream(fn, inputs, plan, block):
    tiler = StreamingOverlapAdd(fn, plan)
    parts = [tiler.push(piece) for piece in inputs.split(block, dim=-1)]
    parts.append(tiler.finish())
    return torch.cat([part for part in parts if part is not None], dim=-1)


@pytest.fixture
def conv1d():
    torch.manual_seed(0)
    return torch.nn.Conv1d(2, 3, kernel_size=5, padding=2)  # receptive field: 2 each side


PLANS = [
    TilePlan(100, 0, 2),
    TilePlan(100, 30, 2),
    TilePlan(7, 3, 5),
    TilePlan(1, 0, 2),
    TilePlan(5000, 10, 2),
]


@pytest.mark.parametrize("plan", PLANS, ids=str)
@torch.no_grad()
def test_tiled_equals_untiled_when_context_covers_receptive_field(conv1d, plan):
    inputs = torch.randn(1, 2, 1003)
    expected = conv1d(inputs)
    assert torch.allclose(overlap_add(conv1d, inputs, [plan]), expected, atol=1e-5)
    for block in (1, 37, 2000):
        assert torch.allclose(stream(conv1d, inputs, plan, block), expected, atol=1e-5)


@torch.no_grad()
def test_without_enough_context_tiles_differ(conv1d):
    inputs = torch.randn(1, 2, 400)
    tiled = overlap_add(conv1d, inputs, [TilePlan(50, 0, 0)])
    assert (tiled - conv1d(inputs)).abs().max() > 1e-3  # the test above can fail


@pytest.mark.parametrize("overlap", [0, 1, 13, 63])
def test_constant_is_reproduced_for_any_overlap(overlap):
    inputs = torch.full((3, 500), 2.5)
    output = overlap_add(lambda tile: tile, inputs, [TilePlan(64, overlap)])
    assert torch.allclose(output, inputs, atol=1e-6)


def test_window_ramps_are_complementary():
    window = TilePlan(16, 6).window()
    assert torch.allclose(window[-6:] + window[:6], torch.ones(6))
    assert window.min() > 0


@torch.no_grad()
def test_two_dimensional_tiles():
    torch.manual_seed(1)
    conv = torch.nn.Conv2d(1, 4, kernel_size=3, padding=1)
    image = torch.randn(2, 1, 50, 71)
    tiled = overlap_add(conv, image, [TilePlan(16, 4, 1), TilePlan(20, 5, 1)])
    assert tiled.shape == (2, 4, 50, 71)
    assert torch.allclose(tiled, conv(image), atol=1e-5)


def test_stream_output_length_matches_input_for_short_and_odd_lengths():
    for length in (1, 5, 63, 64, 65, 1000):
        inputs = torch.randn(2, length)
        output = stream(lambda tile: tile * 2, inputs, TilePlan(64, 16, 3), block=17)
        assert output.shape == (2, length)
        assert torch.allclose(output, inputs * 2, atol=1e-6)


def test_stream_holds_about_one_tile():
    plan = TilePlan(100, 20, 10)
    tiler = StreamingOverlapAdd(lambda tile: tile, plan)
    for _ in range(500):
        tiler.push(torch.randn(1, 50))
        assert tiler._pending.shape[-1] <= plan.tile + 2 * plan.context + 50
        if tiler._output is not None:
            assert tiler._output.shape[-1] <= plan.tile + 50


@pytest.mark.parametrize("arguments", [(0, 0, 0), (10, 10, 0), (10, -1, 0), (10, 2, -1)], ids=str)
def test_invalid_plans(arguments):
    with pytest.raises(ConfigError):
        TilePlan(*arguments)


def test_finish_without_input_is_an_error():
    with pytest.raises(ValueError):
        StreamingOverlapAdd(lambda tile: tile, TilePlan(4)).finish()


def test_last_tile_is_cut_short_unless_fixed_size():
    plan = TilePlan(100, 10, 3)
    for fixed, expected in ((False, [106, 26]), (True, [106, 106])):
        sizes = []
        tiler = StreamingOverlapAdd(
            lambda tile, sizes=sizes: sizes.append(tile.shape[-1]) or tile, plan, fixed_size=fixed
        )
        tiler.push(torch.ones(1, 110))
        output = tiler.finish()
        assert sizes == expected and torch.allclose(output, torch.ones(1, 110)[..., 90:])


@torch.no_grad()
def test_replicate_padding_reproduces_a_padded_whole_input():
    """Outside the input, tiles see the edge repeated: the same as running on the input padded
    by its edge values, whatever the tiling."""
    torch.manual_seed(2)
    conv = torch.nn.Conv2d(2, 3, kernel_size=5, padding=0)  # sees 2 pixels on each side
    image = torch.randn(1, 2, 23, 30)
    expected = conv(torch.nn.functional.pad(image, [2, 2, 2, 2], mode="replicate"))

    def fn(tile):  # a "valid" conv, padded back to the tile's size
        return torch.nn.functional.pad(conv(tile), [2, 2, 2, 2])

    plans = [TilePlan(8, 2, 2), TilePlan(12, 4, 2)]
    tiled = overlap_add(fn, image, plans, pad_mode="replicate")
    assert torch.allclose(tiled, expected, atol=1e-5)
    assert not torch.allclose(overlap_add(fn, image, plans), expected, atol=1e-3)


def tile_mean(tile: torch.Tensor) -> torch.Tensor:
    """A "model" whose every output depends on the whole tile."""
    return tile - tile.mean(dim=-1, keepdim=True)


@pytest.mark.parametrize("offset", [0, 7, 20, 45, 100])
def test_origins_put_an_excerpt_on_the_whole_signal_tiles(offset):
    torch.manual_seed(0)
    signal = torch.randn(3, 400)
    plan = TilePlan(tile=30, overlap=10, context=4)
    whole = overlap_add(tile_mean, signal, [plan])
    excerpt = overlap_add(tile_mean, signal[:, offset:], [plan], origins=[offset])
    assert excerpt.shape == signal[:, offset:].shape
    # Positions whose tiles (step 20, with their context) all lie inside the excerpt agree.
    first_clean = ((offset + plan.context + plan.step - 1) // plan.step) * plan.step
    first_clean += plan.overlap  # ... past the overlap with the tile before it
    last_clean = 400 - plan.tile - plan.context  # the whole signal's zero padding at the end
    torch.testing.assert_close(
        excerpt[:, first_clean - offset : last_clean - offset],
        whole[:, first_clean:last_clean],
        rtol=0,
        atol=1e-6,
    )
    if offset % plan.step:  # without the origin, the excerpt's tiles fall elsewhere
        plain = overlap_add(tile_mean, signal[:, offset:], [plan])
        assert not torch.allclose(plain[:, first_clean - offset :], whole[:, first_clean:])


def test_stream_passes_positions():
    seen = []

    def fn(tile, start):
        seen.append((start, tile.shape[-1]))
        return tile

    stream = StreamingOverlapAdd(fn, TilePlan(tile=10, overlap=2, context=3), positions=True)
    out = [stream.push(torch.arange(25.0)[None]), stream.finish()]
    joined = torch.cat([o for o in out if o is not None], dim=-1)[0]
    torch.testing.assert_close(joined, torch.arange(25.0))
    assert [start for start, _ in seen] == [-3, 5, 13]  # kept [0, 10), [8, 18), [16, 25)


@pytest.mark.parametrize("batch", [2, 3, 8, 100])
@torch.no_grad()
def test_batched_tiles_give_the_same_output_in_fewer_calls(batch):
    torch.manual_seed(2)
    conv = torch.nn.Conv2d(1, 4, kernel_size=3, padding=1)
    image = torch.randn(2, 1, 50, 71)
    plans = [TilePlan(16, 4, 1), TilePlan(20, 5, 1)]
    calls = []

    def fn(tile):
        calls.append(tile.shape[0])
        return conv(tile)

    expected = overlap_add(fn, image, plans, origins=[3, 7])
    tiles = len(calls)
    assert tiles == 25 and set(calls) == {2}  # one call per tile of both images (5 x 5)
    calls.clear()
    batched = overlap_add(fn, image, plans, origins=[3, 7], batch=batch)
    assert torch.allclose(batched, expected, atol=1e-6)
    assert sum(calls) == 2 * tiles  # every tile once
    assert max(calls) == 2 * min(batch, tiles)
    assert len(calls) == -(-tiles // batch)


def test_batched_tiles_need_a_batch_axis():
    with pytest.raises(ConfigError, match="batch"):
        overlap_add(lambda tile: tile, torch.ones(100), [TilePlan(10)], batch=2)
    with pytest.raises(ConfigError, match="batch"):
        overlap_add(lambda tile: tile, torch.ones(1, 100), [TilePlan(10)], batch=0)
