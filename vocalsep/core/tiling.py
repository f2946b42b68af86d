"""Window-weighted overlap-add tiling: run any model on inputs too long to process at once.

A `TilePlan` cuts one axis into tiles whose kept regions overlap by `overlap` samples; each tile
is also given `context` extra samples on both sides that the model sees but whose output is
thrown away, so that a model with a receptive field of at most `context` gives exactly the
same result tiled as untiled. Overlapping kept regions are cross-faded with complementary
sine-squared ramps and normalised by the summed weights, which makes any overlap (including
none) reproduce a constant exactly.

`overlap_add` tiles the last axes of a tensor held in memory; `StreamingOverlapAdd` tiles the
last axis of a stream whose length is not known in advance, holding only about one tile.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .errors import ConfigError

TileFn = Callable[[torch.Tensor], torch.Tensor]


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

    def window(self, dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
        """Weights `(tile,)`: ones with sine-squared ramps over `overlap` samples at both ends.

        The ramps are sampled at half-sample offsets so that they never reach zero (edges of the
        signal, covered by one tile only, stay well defined) and a falling ramp plus the next
        tile's rising ramp sum to exactly one.
        """
        weights = torch.ones(self.tile, dtype=dtype, device=device)
        if self.overlap:
            position = (torch.arange(self.overlap, dtype=torch.float64) + 0.5) / self.overlap
            rise = torch.sin(0.5 * math.pi * position).pow(2).to(dtype=dtype, device=device)
            weights[: self.overlap] = rise
            weights[-self.overlap :] = rise.flip(0)
        return weights


def overlap_add(
    fn: TileFn,
    inputs: torch.Tensor,
    plans: Sequence[TilePlan],
    *,
    pad_mode: str = "constant",
    origins: Sequence[int] | None = None,
    batch: int = 1,
) -> torch.Tensor:
    """Apply `fn` tile by tile over the last `len(plans)` axes of `inputs` and blend the tiles.

    `fn` maps a tile `(*lead, *tile_shape)` to `(*out_lead, *tile_shape)`: the tiled axes keep
    their size, the leading axes may change (e.g. input channels -> output masks). Outside the
    input, tiles see `pad_mode` padding (`torch.nn.functional.pad`'s modes: "constant" is
    zeros; "replicate" repeats the edge, which needs `inputs` of `len(plans) + 1` or
    `len(plans) + 2` dims). Returns `(*out_lead, *inputs.shape[-len(plans):])`.

    `origins` (default all 0) gives, per tiled axis, the index that `inputs[..., 0]` has in a
    longer signal: tiles then start at multiples of `plan.step` of *that* signal's indices. Two
    overlapping excerpts of one signal so see the same tiles where they overlap, and agree
    wherever every tile covering a position lies (with its context) inside both excerpts.

    `batch` > 1 hands `fn` up to that many tiles in one call, concatenated along axis 0 (which
    `fn` must treat as a batch of independent items, as a network in eval mode does): fewer,
    larger calls run faster on a CPU than one call per tile.
    """
    dims = len(plans)
    if dims == 0 or dims > inputs.dim():
        raise ConfigError(f"need between 1 and {inputs.dim()} tile plans, got {dims}")
    if batch < 1 or (batch > 1 and inputs.dim() == dims):
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
    # F.pad takes (left, right) pairs starting from the last axis.
    padding: list[int] = []
    for plan, size, cover, lead in reversed(list(zip(plans, sizes, covered, leads, strict=True))):
        padding += [plan.context + lead, cover - size + plan.context]
    padded = F.pad(inputs, padding, mode=pad_mode)
    windows = [plan.window(inputs.dtype, inputs.device) for plan in plans]

    keep = tuple(slice(plan.context, plan.context + plan.tile) for plan in plans)
    weight = windows[0]
    for extra in windows[1:]:
        weight = weight[..., None] * extra
    output = weight_sum = None
    indices = list(itertools.product(*(range(count) for count in counts)))
    for first in range(0, len(indices), batch):
        group = [
            [i * plan.step for i, plan in zip(index, plans, strict=True)]
            for index in indices[first : first + batch]
        ]
        tiles = [padded[(..., *_span(starts, plans, 2))] for starts in group]
        results = fn(torch.cat(tiles)).chunk(len(group)) if batch > 1 else [fn(tiles[0])]
        for starts, result in zip(group, results, strict=True):
            result = result[(..., *keep)]
            if output is None:
                output = result.new_zeros((*result.shape[:-dims], *covered))
                weight_sum = result.new_zeros(covered)
            place = _span(starts, plans, 0)
            output[(..., *place)] += result * weight
            weight_sum[place] += weight
    output = output / weight_sum
    return output[(..., *(slice(lead, size) for lead, size in zip(leads, sizes, strict=True)))]


def _span(starts: Sequence[int], plans: Sequence[TilePlan], contexts: int) -> tuple[slice, ...]:
    """Per axis, a tile starting at `starts` with `contexts` times its context."""
    return tuple(
        slice(s, s + plan.tile + contexts * plan.context)
        for s, plan in zip(starts, plans, strict=True)
    )


class StreamingOverlapAdd:
    """`overlap_add` along the last axis of a stream of blocks, in bounded memory.

    `push(block)` feeds input blocks `(*lead, n)` and returns the output samples that are final
    so far, `(*out_lead, m)`, or None before the first tile has run; `finish()` pads the end with
    zeros, runs the last tiles and returns the rest, cropped so that the output is exactly as
    long as the input. Unless `fixed_size`, tiles that reach past the end of the input are cut
    to the input plus `context` zeros (so a short input costs a short tile), and `fn` must then
    accept shorter tiles. With `positions`, `fn(tile, start)` also gets the index in the stream
    of the tile's first sample (`-context` for the first tile, whose context is zeros).
    """

    def __init__(
        self, fn: TileFn, plan: TilePlan, *, fixed_size: bool = False, positions: bool = False
    ) -> None:
        self.fn = fn
        self.plan = plan
        self.fixed_size = fixed_size
        self.positions = positions
        self._pending: torch.Tensor | None = None  # input not yet consumed by any tile
        self._pending_start = -plan.context  # absolute position of _pending[..., 0]
        self._received = 0  # input samples pushed so far
        self._next_tile = 0
        self._output: torch.Tensor | None = None  # weighted sums from _emitted onwards
        self._weights: torch.Tensor | None = None
        self._emitted = 0
        self._window: torch.Tensor | None = None

    def push(self, block: torch.Tensor) -> torch.Tensor | None:
        if self._pending is None:
            context = block.new_zeros((*block.shape[:-1], self.plan.context))
            self._pending = torch.cat([context, block], dim=-1)
        else:
            self._pending = torch.cat([self._pending, block], dim=-1)
        self._received += block.shape[-1]
        while self._tile_end(self._next_tile) + self.plan.context <= self._received:
            self._run_tile()
        return self._pop(self._next_tile * self.plan.step)

    def finish(self) -> torch.Tensor | None:
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
            self._pending = F.pad(self._pending, (0, missing))
        piece = self._pending[..., offset : offset + kept + 2 * plan.context]
        result = self.fn(piece, start - plan.context) if self.positions else self.fn(piece)
        result = result[..., plan.context : plan.context + kept]
        if self._output is None:
            self._output = result.new_zeros((*result.shape[:-1], 0))
            self._weights = result.new_zeros(0)
            self._window = plan.window(result.dtype, result.device)
        place = start - self._emitted
        grow = place + kept - self._output.shape[-1]
        if grow > 0:
            self._output = F.pad(self._output, (0, grow))
            self._weights = F.pad(self._weights, (0, grow))
        window = self._window[:kept]
        self._output[..., place : place + kept] += result * window
        self._weights[place : place + kept] += window
        self._next_tile += 1
        # Drop input that no later tile will read.
        keep_from = self._next_tile * plan.step - plan.context - self._pending_start
        if keep_from > 0:
            self._pending = self._pending[..., keep_from:]
            self._pending_start += keep_from

    def _pop(self, until: int) -> torch.Tensor | None:
        """Return the blended output from `_emitted` up to absolute position `until`."""
        if self._output is None:
            return None
        count = max(0, min(until, self._emitted + self._output.shape[-1]) - self._emitted)
        ready = self._output[..., :count] / self._weights[:count]
        self._output = self._output[..., count:]
        self._weights = self._weights[count:]
        self._emitted += count
        return ready
