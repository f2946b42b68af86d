import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view

from vocalsep.core.errors import ConfigError
from vocalsep.core.tiling import StreamingOverlapAdd, TilePlan, overlap_add

KINDS = ["numpy", "torch"]


@pytest.fixture(params=KINDS)
def kind(request):
    """Every test taking `kind` runs on numpy arrays and on torch tensors."""
    return request.param


def make(kind, array):
    """The numpy `array` as an array of `kind`."""
    return torch.from_numpy(array) if kind == "torch" else array


def randn(kind, *shape, seed=0):
    return make(kind, np.random.default_rng(seed).standard_normal(shape, dtype=np.float32))


def as_numpy(array):
    return array.numpy() if isinstance(array, torch.Tensor) else array


def concat(parts):
    return (
        torch.cat(parts, dim=-1)
        if isinstance(parts[0], torch.Tensor)
        else np.concatenate(parts, -1)
    )


def assert_close(actual, expected, atol=1e-5):
    assert type(actual) is type(expected)  # numpy in, numpy out; torch in, torch out
    np.testing.assert_allclose(as_numpy(actual), as_numpy(expected), rtol=1e-5, atol=atol)


def stream(fn, inputs, plan, block, fixed_size=False):
    tiler = StreamingOverlapAdd(fn, plan, fixed_size=fixed_size)
    length = inputs.shape[-1]
    parts = [tiler.push(inputs[..., start : start + block]) for start in range(0, length, block)]
    parts.append(tiler.finish())
    return concat([part for part in parts if part is not None])


def numpy_conv(layer):
    """The numpy twin of a torch `Conv1d`/`Conv2d`, with its weights: a cross-correlation of
    `(batch, in, *space)` with zero padding."""
    weight, bias = layer.weight.detach().numpy(), layer.bias.detach().numpy()
    dims = weight.ndim - 2  # weight: (out, in, *kernel)

    def conv(inputs):
        assert type(inputs) is np.ndarray  # fn sees the kind it was given
        widths = [(0, 0), (0, 0)] + [(size, size) for size in layer.padding]
        spatial = tuple(range(2, 2 + dims))
        windows = sliding_window_view(np.pad(inputs, widths), weight.shape[2:], axis=spatial)
        # windows: (batch, in, *space, *kernel), summed against (out, in, *kernel)
        kernel = tuple(range(2 + dims, 2 + 2 * dims))
        output = np.tensordot(windows, weight, axes=((1, *kernel), (1, *spatial)))
        return np.moveaxis(output, -1, 1) + bias.reshape(-1, *[1] * dims)

    return conv


def model(kind, layer):
    """The torch convolution `layer` (frozen) for torch inputs, its numpy twin for numpy."""
    layer.requires_grad_(False)
    return layer if kind == "torch" else numpy_conv(layer)


@pytest.fixture
def conv1d(kind):
    torch.manual_seed(0)
    return model(kind, torch.nn.Conv1d(2, 3, kernel_size=5, padding=2))  # sees 2 each side


PLANS = [
    TilePlan(100, 0, 2),
    TilePlan(100, 30, 2),
    TilePlan(7, 3, 5),
    TilePlan(1, 0, 2),
    TilePlan(5000, 10, 2),
]


@pytest.mark.parametrize("plan", PLANS, ids=str)
def test_tiled_equals_untiled_when_context_covers_receptive_field(kind, conv1d, plan):
    inputs = randn(kind, 1, 2, 1003)
    expected = conv1d(inputs)
    assert_close(overlap_add(conv1d, inputs, [plan]), expected)
    for block in (1, 37, 2000):
        assert_close(stream(conv1d, inputs, plan, block), expected)


def test_without_enough_context_tiles_differ(kind, conv1d):
    inputs = randn(kind, 1, 2, 400)
    tiled = overlap_add(conv1d, inputs, [TilePlan(50, 0, 0)])
    assert abs(as_numpy(tiled - conv1d(inputs))).max() > 1e-3  # the test above can fail


@pytest.mark.parametrize("overlap", [0, 1, 13, 63])
def test_constant_is_reproduced_for_any_overlap(kind, overlap):
    inputs = make(kind, np.full((3, 500), 2.5, dtype=np.float32))
    output = overlap_add(lambda tile: tile, inputs, [TilePlan(64, overlap)])
    assert_close(output, inputs, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_window_ramps_are_complementary(kind, dtype):
    like = make(kind, np.zeros(0, dtype=dtype))
    window = TilePlan(16, 6).window(like)
    assert type(window) is type(like) and window.dtype == like.dtype and window.shape == (16,)
    np.testing.assert_allclose(as_numpy(window[-6:] + window[:6]), np.ones(6), atol=1e-6)
    assert window.min() > 0


def test_two_dimensional_tiles(kind):
    torch.manual_seed(1)
    conv = model(kind, torch.nn.Conv2d(1, 4, kernel_size=3, padding=1))
    image = randn(kind, 2, 1, 50, 71, seed=1)
    tiled = overlap_add(conv, image, [TilePlan(16, 4, 1), TilePlan(20, 5, 1)])
    assert tiled.shape == (2, 4, 50, 71)
    assert_close(tiled, conv(image))


def test_stream_output_length_matches_input_for_short_and_odd_lengths(kind):
    for length in (1, 5, 63, 64, 65, 1000):
        inputs = randn(kind, 2, length)
        output = stream(lambda tile: tile * 2, inputs, TilePlan(64, 16, 3), block=17)
        assert output.shape == (2, length)
        assert_close(output, inputs * 2, atol=1e-6)


def test_stream_holds_about_one_tile(kind):
    plan = TilePlan(100, 20, 10)
    tiler = StreamingOverlapAdd(lambda tile: tile, plan)
    signal = randn(kind, 1, 500 * 50)
    for start in range(0, 500 * 50, 50):
        tiler.push(signal[..., start : start + 50])
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


def test_last_tile_is_cut_short_unless_fixed_size(kind):
    plan = TilePlan(100, 10, 3)
    ones = make(kind, np.ones((1, 110), dtype=np.float32))
    for fixed, expected in ((False, [106, 26]), (True, [106, 106])):
        sizes = []
        tiler = StreamingOverlapAdd(
            lambda tile, sizes=sizes: sizes.append(tile.shape[-1]) or tile, plan, fixed_size=fixed
        )
        tiler.push(ones)
        output = tiler.finish()
        assert sizes == expected
        assert_close(output, ones[..., 90:], atol=1e-6)


def pad_last_two(array, width, mode):
    """`array` padded by `width` on both sides of its last two axes, in torch's `mode`."""
    if isinstance(array, torch.Tensor):
        return torch.nn.functional.pad(array, [width] * 4, mode=mode)
    numpy_mode = {"constant": "constant", "replicate": "edge"}[mode]
    return np.pad(array, [(0, 0)] * (array.ndim - 2) + [(width, width)] * 2, mode=numpy_mode)


def test_replicate_padding_reproduces_a_padded_whole_input(kind):
    """Outside the input, tiles see the edge repeated: the same as running on the input padded
    by its edge values, whatever the tiling."""
    torch.manual_seed(2)
    conv = model(kind, torch.nn.Conv2d(2, 3, kernel_size=5, padding=0))  # sees 2 on each side
    image = randn(kind, 1, 2, 23, 30, seed=2)
    expected = conv(pad_last_two(image, 2, "replicate"))

    def fn(tile):  # a "valid" conv, padded back to the tile's size
        return pad_last_two(conv(tile), 2, "constant")

    plans = [TilePlan(8, 2, 2), TilePlan(12, 4, 2)]
    tiled = overlap_add(fn, image, plans, pad_mode="replicate")
    assert_close(tiled, expected)
    assert not np.allclose(as_numpy(overlap_add(fn, image, plans)), as_numpy(expected), atol=1e-3)


def tile_mean(tile):
    """A "model" whose every output depends on the whole tile (numpy or torch)."""
    return tile - tile.mean(axis=-1, keepdims=True)


@pytest.mark.parametrize("offset", [0, 7, 20, 45, 100])
def test_origins_put_an_excerpt_on_the_whole_signal_tiles(kind, offset):
    signal = randn(kind, 3, 400)
    plan = TilePlan(tile=30, overlap=10, context=4)
    whole = overlap_add(tile_mean, signal, [plan])
    excerpt = overlap_add(tile_mean, signal[:, offset:], [plan], origins=[offset])
    assert excerpt.shape == signal[:, offset:].shape
    # Positions whose tiles (step 20, with their context) all lie inside the excerpt agree.
    first_clean = ((offset + plan.context + plan.step - 1) // plan.step) * plan.step
    first_clean += plan.overlap  # ... past the overlap with the tile before it
    last_clean = 400 - plan.tile - plan.context  # the whole signal's zero padding at the end
    np.testing.assert_allclose(
        as_numpy(excerpt[:, first_clean - offset : last_clean - offset]),
        as_numpy(whole[:, first_clean:last_clean]),
        rtol=0,
        atol=1e-6,
    )
    if offset % plan.step:  # without the origin, the excerpt's tiles fall elsewhere
        plain = as_numpy(overlap_add(tile_mean, signal[:, offset:], [plan]))
        assert not np.allclose(plain[:, first_clean - offset :], as_numpy(whole[:, first_clean:]))


def test_stream_passes_positions(kind):
    seen = []

    def fn(tile, start):
        seen.append((start, tile.shape[-1]))
        return tile

    signal = make(kind, np.arange(25.0, dtype=np.float32)[None])
    tiler = StreamingOverlapAdd(fn, TilePlan(tile=10, overlap=2, context=3), positions=True)
    out = [tiler.push(signal), tiler.finish()]
    joined = concat([o for o in out if o is not None])
    assert_close(joined, signal, atol=1e-6)
    assert [start for start, _ in seen] == [-3, 5, 13]  # kept [0, 10), [8, 18), [16, 25)


@pytest.mark.parametrize("batch", [2, 3, 8, 100])
def test_batched_tiles_give_the_same_output_in_fewer_calls(kind, batch):
    torch.manual_seed(2)
    conv = model(kind, torch.nn.Conv2d(1, 4, kernel_size=3, padding=1))
    image = randn(kind, 2, 1, 50, 71, seed=2)
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
    assert_close(batched, expected, atol=1e-6)
    assert sum(calls) == 2 * tiles  # every tile once
    assert max(calls) == 2 * min(batch, tiles)
    assert len(calls) == -(-tiles // batch)


def test_batched_tiles_need_a_batch_axis(kind):
    ones = make(kind, np.ones((1, 100), dtype=np.float32))
    with pytest.raises(ConfigError, match="batch"):
        overlap_add(lambda tile: tile, ones[0], [TilePlan(10)], batch=2)
    with pytest.raises(ConfigError, match="batch"):
        overlap_add(lambda tile: tile, ones, [TilePlan(10)], batch=0)


@pytest.mark.parametrize(
    "options", [{}, {"batch": 3}, {"origins": [3, 7]}, {"pad_mode": "replicate"}], ids=str
)
def test_numpy_and_torch_give_the_same_result(options):
    torch.manual_seed(3)
    layer = torch.nn.Conv2d(2, 3, kernel_size=3, padding=1)
    image = randn("numpy", 2, 2, 40, 53, seed=3)
    plans = [TilePlan(16, 4, 1), TilePlan(20, 5, 1)]
    for fn in (lambda kind: model(kind, layer), lambda kind: tile_mean):
        arrays, tensors = (overlap_add(fn(k), make(k, image), plans, **options) for k in KINDS)
        assert type(arrays) is np.ndarray and type(tensors) is torch.Tensor
        np.testing.assert_allclose(arrays, tensors.numpy(), rtol=1e-5, atol=1e-5)
    plan = TilePlan(30, 10, 4)
    arrays, tensors = (stream(tile_mean, make(k, image[0, 0]), plan, block=17) for k in KINDS)
    np.testing.assert_allclose(arrays, tensors.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("block", [1, 29, 1000])
def test_stream_equals_one_pass(kind, block):
    """With `fixed_size` the stream runs the very tiles `overlap_add` runs, so any `fn` (here
    one that depends on the whole tile) gives the same output."""
    signal = randn(kind, 3, 401)
    plan = TilePlan(tile=30, overlap=10, context=4)
    streamed = stream(tile_mean, signal, plan, block, fixed_size=True)
    assert_close(streamed, overlap_add(tile_mean, signal, [plan]), atol=1e-6)


def test_numpy_tiling_never_imports_torch():
    code = textwrap.dedent(
        """
        import sys
        import numpy as np
        from vocalsep.core.tiling import StreamingOverlapAdd, TilePlan, overlap_add

        def double(tile):
            assert type(tile) is np.ndarray
            return tile * 2

        signal = np.ones((2, 3, 300), dtype=np.float32)
        plan = TilePlan(64, 16, 4)
        whole = overlap_add(double, signal, [plan], batch=2, pad_mode="replicate")
        tiler = StreamingOverlapAdd(double, plan)
        parts = [tiler.push(signal[..., :100]), tiler.push(signal[..., 100:]), tiler.finish()]
        streamed = np.concatenate([part for part in parts if part is not None], axis=-1)
        assert np.allclose(whole, 2) and np.allclose(streamed, 2), "wrong output"
        print("torch" in sys.modules)
        """
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root
    )
    assert result.stdout.split() == ["False"]


@pytest.mark.parametrize("needed", [(0, 1), (37, 38), (50, 170), (0, 400), (395, 400)])
@pytest.mark.parametrize("origin", [0, 13])
def test_needed_runs_only_the_tiles_that_reach_it(kind, needed, origin):
    signal = randn(kind, 3, 400)
    plan = TilePlan(tile=30, overlap=10, context=4)
    calls = []

    def fn(tile):
        calls.append(1)
        return tile_mean(tile)

    whole = overlap_add(fn, signal, [plan], origins=[origin])
    every = len(calls)
    calls.clear()
    part = overlap_add(fn, signal, [plan], origins=[origin], needed=[needed])
    low, high = needed
    assert part.shape == whole.shape
    assert_close(part[:, low:high], whole[:, low:high], atol=1e-6)
    # only the tiles whose kept 30 samples (step 20) meet the range: one or two per 20 samples
    assert len(calls) <= (high - low) // plan.step + 2 < every or high - low > 300
    ran = as_numpy(part) != 0
    assert not ran[:, : max(0, low - plan.tile)].any()  # no tile reaches that far: zeros
    assert not ran[:, high + plan.tile :].any()


def test_needed_outside_the_input_is_refused():
    with pytest.raises(ConfigError, match="outside the input"):
        overlap_add(tile_mean, np.ones((1, 50)), [TilePlan(10, 2)], needed=[(60, 70)])


def test_a_cropping_fn_gives_the_same_stream(kind):
    signal = randn(kind, 2, 97)
    plan = TilePlan(tile=20, overlap=4, context=6)

    def full(tile, start):
        return tile * 2 + start

    def cropped(tile, start):
        return full(tile, start)[..., plan.context : tile.shape[-1] - plan.context]

    outputs = []
    for fn, crops in [(full, False), (cropped, True)]:
        tiler = StreamingOverlapAdd(fn, plan, positions=True, cropped=crops)
        parts = [tiler.push(signal[..., i : i + 30]) for i in range(0, 97, 30)]
        outputs.append(concat([p for p in [*parts, tiler.finish()] if p is not None]))
    assert outputs[0].shape == signal.shape
    assert_close(outputs[1], outputs[0], atol=1e-6)
