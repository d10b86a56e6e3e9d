"""Spatial tiling of streamed video: overlapping tiles over very large frames, blended linearly.

Used by :mod:`.streaming` (``tiling=SpatialTiling(...)``): each tile is streamed with its own cache, and the
overlaps are blended in latent space when encoding, in pixel space when decoding. It is **not exact**: tiles see
zero padding at their borders and the mid-block spatial attention sees only its tile;
``tests/networks/test_streaming.py`` measures how far off it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["SpatialTiling", "TileGrid", "TileBlender"]


@dataclass(frozen=True)
class SpatialTiling:
    """Overlapping spatial tiles for very large frames (not exact; see the module docstring).

    ``tile`` and ``overlap`` are ``(height, width)`` in pixels (an int means both), multiples of the model's
    spatial compression, ``0 <= overlap < tile``. Tiles step by ``tile - overlap``; the last one along each axis
    is aligned to the frame's end. Overlaps are blended with linear ramps.
    """

    tile: tuple[int, int] | int = 512
    overlap: tuple[int, int] | int = 64

    def sizes(self, multiple: int) -> tuple[tuple[int, int], tuple[int, int]]:
        """``(tile, overlap)`` as ``(h, w)`` in units of ``multiple`` pixels, validated."""
        tile = (self.tile, self.tile) if isinstance(self.tile, int) else tuple(self.tile)
        overlap = (self.overlap, self.overlap) if isinstance(self.overlap, int) else tuple(self.overlap)
        for n, o in zip(tile, overlap):
            if n <= 0 or n % multiple or o < 0 or o % multiple or o >= n:
                raise ValueError(
                    f"SpatialTiling(tile={self.tile}, overlap={self.overlap}): tile and overlap must be multiples of "
                    f"the spatial compression {multiple} with 0 <= overlap < tile"
                )
        return (tile[0] // multiple, tile[1] // multiple), (overlap[0] // multiple, overlap[1] // multiple)


def _tile_spans(length: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    if length <= tile:
        return [(0, length)]
    step = tile - overlap
    starts = list(range(0, length - tile, step)) + [length - tile]
    return [(s, s + tile) for s in starts]


def _ramp(start: int, stop: int, length: int, overlap: int, scale: int) -> torch.Tensor:
    """Blend weights ``[n*scale]`` of one tile ``[start, stop)`` (in latent units) along one axis."""
    n = (stop - start) * scale
    ramp_len = overlap * scale
    w = torch.ones(n, dtype=torch.float64)
    if ramp_len > 0:
        up = torch.arange(1, n + 1, dtype=torch.float64) / (ramp_len + 1)
        if start > 0:
            w = torch.minimum(w, up)
        if stop < length:
            w = torch.minimum(w, up.flip(0))
    return w


class TileGrid:
    """The tile grid over a latent plane ``h x w``; ``scale`` converts latent units to the blended space."""

    def __init__(self, tiling: SpatialTiling | None, multiple: int, h: int, w: int) -> None:
        if tiling is None:
            self.spans = [((0, h), (0, w))]
            self.tile_sizes, self.overlaps = (h, w), (0, 0)
        else:
            self.tile_sizes, self.overlaps = tiling.sizes(multiple)
            rows = _tile_spans(h, self.tile_sizes[0], self.overlaps[0])
            cols = _tile_spans(w, self.tile_sizes[1], self.overlaps[1])
            self.spans = [(r, c) for r in rows for c in cols]
        self.h, self.w = h, w

    def weights(self, index: int, scale: int, like: torch.Tensor) -> torch.Tensor:
        """Blend weights ``[H_tile, W_tile]`` of tile ``index`` at ``scale`` pixels per latent unit."""
        (r0, r1), (c0, c1) = self.spans[index]
        wr = _ramp(r0, r1, self.h, self.overlaps[0], scale)
        wc = _ramp(c0, c1, self.w, self.overlaps[1], scale)
        return (wr[:, None] * wc[None, :]).to(device=like.device, dtype=torch.float32)


class TileBlender:
    """Accumulates weighted tiles into a float32 canvas and normalises by the summed weights."""

    def __init__(self, tiles: TileGrid, scale: int) -> None:
        self.tiles, self.scale = tiles, scale
        self.canvas: torch.Tensor | None = None
        self.total: torch.Tensor | None = None
        self.dtype: torch.dtype | None = None

    def add(self, index: int, part: torch.Tensor) -> None:
        (r0, r1), (c0, c1) = self.tiles.spans[index]
        s = self.scale
        self.dtype = part.dtype
        if len(self.tiles.spans) == 1:
            self.canvas = part
            return
        w = self.tiles.weights(index, s, part)
        if self.canvas is None:
            b, c, t = part.shape[:3]
            self.canvas = part.new_zeros((b, c, t, self.tiles.h * s, self.tiles.w * s), dtype=torch.float32)
            self.total = part.new_zeros((self.tiles.h * s, self.tiles.w * s), dtype=torch.float32)
        self.canvas[..., r0 * s:r1 * s, c0 * s:c1 * s] += part.float() * w
        self.total[r0 * s:r1 * s, c0 * s:c1 * s] += w

    def result(self) -> torch.Tensor:
        """The blended tensor in the dtype of the parts (the single part itself when there is one tile)."""
        assert self.canvas is not None and self.dtype is not None
        if self.total is None:
            return self.canvas
        return (self.canvas / self.total).to(self.dtype)


