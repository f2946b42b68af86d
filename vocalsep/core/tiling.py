"""Window-weighted overlap-add tiling: run any model on inputs too long to process at once.

A `TilePlan` cuts one axis into tiles whose kept regions overlap by `overlap` samples; each tile
is also given `context` extra samples on both sides that the model sees but whose output is
thrown away, so that a model with a receptive field of at most `context` gives exactly the
same result tiled as untiled. Overlapping kept regions are cross-faded with complementary
sine-squared ramps and normalised by the summed weights, which makes any overlap (including
none) reproduce a constant exactly.

`overlap_add` tiles the last axes of a tensor held in memory; `StreamingOverlapAdd` tiles the
last axis of a stream whose length is not known in advance, holding only about one tile.

Both take numpy arrays or torch tensors (on any device) and hand `fn` tiles of the same kind;
torch is imported only when the input is a torch tensor, so numpy inference needs no torch.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from .arrays import is_torch
from .errors import ConfigError

if TYPE_CHECKING:
    import torch

Array = TypeVar("Array", np.ndarray, "torch.Tensor")
TileFn = Callable[[Array], Array]


@dataclass(frozen=True)
class TilePlan:
    """How to cut one axis: `tile` kept samples per tile, `overlap` shared with the next tile,
    `context` extra input samples on each side (seen by the model, cropped from its output)."""

    tile: int
    overlap: int = 0
    context: int = 0

    def __post_init__(self) -> None:
        if self.tile < 1:
            raise ConfigError(f"tile must be >= 1, got {self.tile}")
        if not 0 <= self.overlap < self.tile:
            raise ConfigError(
                f"overlap must be in [0, tile), got {self.overlap} (tile {self.tile})"
            )
        if self.context < 0:
            raise ConfigError(f"context must be >= 0, got {self.context}")

    @property
    def step(self) -> int:
        return self.tile - self.overlap

    def num_tiles(self, length: int) -> int:
        """Tiles needed to cover `length` samples (at least one)."""
        return max(1, math.ceil((length - self.overlap) / self.step))

    def window(self, like: Array) -> Array:
        """Weights `(tile,)`: ones with sine-squared ramps over `overlap` samples at both ends,
        of the kind (numpy or torch), dtype and device of the array `like`.

        The ramps are sampled at half-sample offsets so that they never reach zero (edges of the
        signal, covered by one tile only, stay well defined) and a falling ramp plus the next
        tile's rising ramp sum to exactly one.
        """
        ops = _ops(like)
        weights = ops.ones((self.tile,), like)
        if self.overlap:
            position = (ops.xp.arange(self.overlap, dtype=ops.xp.float64) + 0.5) / self.overlap
            rise = ops.cast(ops.xp.sin(0.5 * math.pi * position) ** 2, like)  # float64 -> like
            weights[: self.overlap] = rise
            weights[-self.overlap :] = ops.xp.flip(rise, (0,))
        return weights


def overlap_add(
    fn: TileFn[Array],
    inputs: Array,
    plans: Sequence[TilePlan],
    *,
    pad_mode: str = "constant",
    origins: Sequence[int] | None = None,
    batch: int = 1,
    needed: Sequence[tuple[int, int]] | None = None,
) -> Array:
    """Apply `fn` tile by tile over the last `len(plans)` axes of `inputs` and blend the tiles.

    `fn` maps a tile `(*lead, *tile_shape)` to `(*out_lead, *tile_shape)`: the tiled axes keep
    their size, the leading axes may change (e.g. input channels -> output masks); `inputs` is a
    numpy array or a torch tensor, and `fn` takes and returns that kind. Outside the input, tiles
    see `pad_mode` padding (`torch.nn.functional.pad`'s modes, for numpy too: "constant" is
    zeros; "replicate" repeats the edge, which for torch needs `inputs` of `len(plans) + 1` or
    `len(plans) + 2` dims). Returns `(*out_lead, *inputs.shape[-len(plans):])`.

    `origins` (default all 0) gives, per tiled axis, the index that `inputs[..., 0]` has in a
    longer signal: tiles then start at multiples of `plan.step` of *that* signal's indices. Two
    overlapping excerpts of one signal so see the same tiles where they overlap, and agree
    wherever every tile covering a position lies (with its context) inside both excerpts.

    `batch` > 1 hands `fn` up to that many tiles in one call, concatenated along axis 0 (which
    `fn` must treat as a batch of independent items, as a network in eval mode does): fewer,
    larger calls run faster on a CPU than one call per tile.

    `needed` (per tiled axis, a range `(start, stop)` of input indices) runs only the tiles
    whose kept part meets that range: the output is the same there and zero where no tile ran.
    """
    ops = _ops(inputs)
    dims = len(plans)
    if dims == 0 or dims > inputs.ndim:
        raise ConfigError(f"need between 1 and {inputs.ndim} tile plans, got {dims}")
    if batch < 1 or (batch > 1 and inputs.ndim == dims):
        raise ConfigError(f"batch must be 1, or >= 1 with a leading batch axis; got {batch}")
    origins = [0] * dims if origins is None else [int(origin) for origin in origins]
    if len(origins) != dims:
        raise ConfigError(f"need one origin per tile plan, got {len(origins)} for {dims}")
    # Each axis starts `lead` samples before the input, on the grid of its origin.
    leads = [origin % plan.step for origin, plan in zip(origins, plans, strict=True)]
    sizes = [size + lead for size, lead in zip(inputs.shape[-dims:], leads, strict=True)]
    counts = [plan.num_tiles(size) for plan, size in zip(plans, sizes, strict=True)]
    covered = [
        (count - 1) * plan.step + plan.tile for plan, count in zip(plans, counts, strict=True)
    ]
    widths = [
        (plan.context + lead, cover - size + plan.context)
        for plan, size, cover, lead in zip(plans, sizes, covered, leads, strict=True)
    ]
    padded = ops.pad(inputs, widths, pad_mode)
    windows = [plan.window(inputs) for plan in plans]

    keep = tuple(slice(plan.context, plan.context + plan.tile) for plan in plans)
    weight = windows[0]
    for extra in windows[1:]:
        weight = weight[..., None] * extra
    output = weight_sum = None
    ranges = [range(count) for count in counts]
    if needed is not None:
        if len(needed) != dims:
            raise ConfigError(f"need one needed range per tile plan, got {len(needed)}")
        # tile i keeps input indices [i * step - lead, i * step - lead + tile)
        ranges = [
            range(
                max(0, (low + lead - plan.tile) // plan.step + 1),
                min(count, -(-(high + lead) // plan.step)),
            )
            for (low, high), lead, plan, count in zip(needed, leads, plans, counts, strict=True)
        ]
        if not all(ranges):
            raise ConfigError(f"the needed ranges {list(needed)} lie outside the input")
    indices = list(itertools.product(*ranges))
    for first in range(0, len(indices), batch):
        group = [
            [i * plan.step for i, plan in zip(index, plans, strict=True)]
            for index in indices[first : first + batch]
        ]
        tiles = [padded[(..., *_span(starts, plans, 2))] for starts in group]
        results = _split(fn(ops.cat(tiles, 0)), len(group)) if batch > 1 else [fn(tiles[0])]
        for starts, result in zip(group, results, strict=True):
            result = result[(..., *keep)]
            if output is None:
                output = ops.zeros((*result.shape[:-dims], *covered), result)
                weight_sum = ops.zeros(covered, result)
            place = _span(starts, plans, 0)
            output[(..., *place)] += result * weight
            weight_sum[place] += weight
    if needed is not None:  # no tile ran there: zeros
        weight_sum = ops.xp.where(weight_sum > 0, weight_sum, 1)
    output = output / weight_sum
    return output[(..., *(slice(lead, size) for lead, size in zip(leads, sizes, strict=True)))]


def _split(batched: Array, count: int) -> list[Array]:
    """`batched` cut into `count` equal parts along axis 0 (views, as `torch.chunk` gives)."""
    size = batched.shape[0] // count
    return [batched[i * size : (i + 1) * size] for i in range(count)]


def _span(starts: Sequence[int], plans: Sequence[TilePlan], contexts: int) -> tuple[slice, ...]:
    """Per axis, a tile starting at `starts` with `contexts` times its context."""
    return tuple(
        slice(s, s + plan.tile + contexts * plan.context)
        for s, plan in zip(starts, plans, strict=True)
    )


class StreamingOverlapAdd:
    """`overlap_add` along the last axis of a stream of blocks, in bounded memory.

    `push(block)` feeds input blocks `(*lead, n)` (numpy arrays or torch tensors, one kind per
    stream, which `fn` takes and returns) and returns the output samples that are final so far,
    `(*out_lead, m)`, or None before the first tile has run; `finish()` pads the end with zeros,
    runs the last tiles and returns the rest, cropped so that the output is exactly as long as
    the input. Unless `fixed_size`, tiles that reach past the end of the input are cut
    to the input plus `context` zeros (so a short input costs a short tile), and `fn` must then
    accept shorter tiles. With `positions`, `fn(tile, start)` also gets the index in the stream
    of the tile's first sample (`-context` for the first tile, whose context is zeros).
    With `cropped`, `fn` returns the output of the tile's kept part only (the tile without its
    `context` samples on either side), which need not be computed.
    """

    def __init__(
        self,
        fn: TileFn,
        plan: TilePlan,
        *,
        fixed_size: bool = False,
        positions: bool = False,
        cropped: bool = False,
    ) -> None:
        self.fn = fn
        self.plan = plan
        self.fixed_size = fixed_size
        self.positions = positions
        self.cropped = cropped
        self._ops: _NumpyOps | _TorchOps | None = None  # chosen by the first block's kind
        self._pending: np.ndarray | torch.Tensor | None = None  # input not yet consumed by any tile
        self._pending_start = -plan.context  # absolute position of _pending[..., 0]
        self._received = 0  # input samples pushed so far
        self._next_tile = 0
        self._output: np.ndarray | torch.Tensor | None = None  # weighted sums from _emitted onwards
        self._weights: np.ndarray | torch.Tensor | None = None
        self._emitted = 0
        self._window: np.ndarray | torch.Tensor | None = None

    def push(self, block: Array) -> Array | None:
        if self._pending is None:
            self._ops = _ops(block)
            context = self._ops.zeros((*block.shape[:-1], self.plan.context), block)
            self._pending = self._ops.cat([context, block], -1)
        else:
            self._pending = self._ops.cat([self._pending, block], -1)
        self._received += block.shape[-1]
        while self._tile_end(self._next_tile) + self.plan.context <= self._received:
            self._run_tile()
        return self._pop(self._next_tile * self.plan.step)

    def finish(self) -> Array | None:
        if self._pending is None:
            raise ValueError("finish() called before any input was pushed")
        total = self._received
        while self._next_tile == 0 or self._tile_end(self._next_tile - 1) < total:
            self._run_tile(total)
        return self._pop(total)

    def _tile_end(self, index: int) -> int:
        return index * self.plan.step + self.plan.tile

    def _run_tile(self, total: int | None = None) -> None:
        """Run the next tile; `total` is the input length once the stream has ended."""
        plan = self.plan
        start = self._next_tile * plan.step
        kept = plan.tile
        if total is not None and not self.fixed_size:
            kept = min(kept, total - start)
        stop = start + kept + plan.context
        offset = start - plan.context - self._pending_start
        missing = stop - self._pending_start - self._pending.shape[-1]
        if missing > 0:  # only at the end of the stream
            self._pending = self._ops.pad(self._pending, [(0, missing)])
        piece = self._pending[..., offset : offset + kept + 2 * plan.context]
        result = self.fn(piece, start - plan.context) if self.positions else self.fn(piece)
        if not self.cropped:
            result = result[..., plan.context : plan.context + kept]
        if self._output is None:
            self._output = self._ops.zeros((*result.shape[:-1], 0), result)
            self._weights = self._ops.zeros((0,), result)
            self._window = plan.window(result)
        place = start - self._emitted
        grow = place + kept - self._output.shape[-1]
        if grow > 0:
            self._output = self._ops.pad(self._output, [(0, grow)])
            self._weights = self._ops.pad(self._weights, [(0, grow)])
        window = self._window[:kept]
        self._output[..., place : place + kept] += result * window
        self._weights[place : place + kept] += window
        self._next_tile += 1
        # Drop input that no later tile will read.
        keep_from = self._next_tile * plan.step - plan.context - self._pending_start
        if keep_from > 0:
            self._pending = self._pending[..., keep_from:]
            self._pending_start += keep_from

    def _pop(self, until: int) -> Array | None:
        """Return the blended output from `_emitted` up to absolute position `until`."""
        if self._output is None:
            return None
        count = max(0, min(until, self._emitted + self._output.shape[-1]) - self._emitted)
        ready = self._output[..., :count] / self._weights[:count]
        self._output = self._output[..., count:]
        self._weights = self._weights[count:]
        self._emitted += count
        return ready


# The few array operations whose spelling differs between numpy and torch, once per kind, so
# that the tiling above is written once; `xp` is the library itself, for what both spell alike
# (`arange`, `sin`, `flip`, `float64`). The torch side makes the same torch calls as before.


class _NumpyOps:
    xp = np

    def zeros(self, shape: Sequence[int], like: np.ndarray) -> np.ndarray:
        return np.zeros(shape, dtype=like.dtype)

    def ones(self, shape: Sequence[int], like: np.ndarray) -> np.ndarray:
        return np.ones(shape, dtype=like.dtype)

    def cast(self, values: np.ndarray, like: np.ndarray) -> np.ndarray:
        return values.astype(like.dtype)

    def cat(self, parts: Sequence[np.ndarray], axis: int) -> np.ndarray:
        return np.concatenate(parts, axis=axis)

    def pad(
        self, array: np.ndarray, widths: Sequence[tuple[int, int]], mode: str = "constant"
    ) -> np.ndarray:
        """Pad the last `len(widths)` axes by `(before, after)` samples each, in axis order,
        with `torch.nn.functional.pad`'s `mode`."""
        if mode not in _NUMPY_PAD_MODES:
            raise ConfigError(f"pad_mode must be one of {sorted(_NUMPY_PAD_MODES)}, got {mode!r}")
        widths = [(0, 0)] * (array.ndim - len(widths)) + list(widths)
        return np.pad(array, widths, mode=_NUMPY_PAD_MODES[mode])


_NUMPY_PAD_MODES = {
    "constant": "constant",
    "replicate": "edge",
    "reflect": "reflect",
    "circular": "wrap",
}


class _TorchOps:
    def __init__(self) -> None:
        import torch  # only once a caller has handed us a torch tensor
        import torch.nn.functional

        self.xp = torch
        self._pad = torch.nn.functional.pad

    def zeros(self, shape: Sequence[int], like: torch.Tensor) -> torch.Tensor:
        return like.new_zeros(shape)

    def ones(self, shape: Sequence[int], like: torch.Tensor) -> torch.Tensor:
        return like.new_ones(shape)

    def cast(self, values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return values.to(dtype=like.dtype, device=like.device)

    def cat(self, parts: Sequence[torch.Tensor], axis: int) -> torch.Tensor:
        return self.xp.cat(parts, dim=axis)

    def pad(
        self, array: torch.Tensor, widths: Sequence[tuple[int, int]], mode: str = "constant"
    ) -> torch.Tensor:
        """Pad the last `len(widths)` axes by `(before, after)` samples each, in axis order."""
        # F.pad takes the (before, after) pairs starting from the last axis.
        return self._pad(array, [width for pair in reversed(widths) for width in pair], mode=mode)


_NUMPY_OPS = _NumpyOps()


@functools.cache
def _torch_ops() -> _TorchOps:
    return _TorchOps()


def _ops(array: object) -> _NumpyOps | _TorchOps:
    """The operations for `array`'s kind: torch's for a torch tensor, numpy's otherwise."""
    return _torch_ops() if is_torch(array) else _NUMPY_OPS
