"""Exact streaming encode and decode of arbitrarily long videos (CV and DV models) in bounded memory.

Every operation of the video networks is causal in time: causal convolutions that replicate frame 0, per-frame
norms, per-frame spatial attention and causal temporal attention. So a clip can be fed chunk by chunk, each layer
keeping only what it needs from the previous chunk, and the result is the result of encoding the whole clip at
once (not the 17-frame windows of the reference, each restarting with its own replicated first frame):

* every causal conv keeps its last ``kt - 1`` input frames (the stride-2 temporal conv of a down-sampler keeps
  the stride phase: whatever input frame its next output window starts at);
* the Haar patcher repeats frame 0, and the unpatcher drops the repeated frames, in the first chunk only; the
  temporal up-sampler drops its first frame in the first chunk only;
* the causal temporal attention of the mid block keeps the keys and values of earlier latent frames.

Chunk sizes: the encoder takes ``1 + k*t`` frames first (``t`` = temporal compression, ``k >= 0``), then any
positive multiple of ``t`` frames per chunk, and returns the latent frames each chunk completes (``1 + k``, then
``m`` for ``m*t`` frames). The decoder takes any positive number of latent frames per chunk and returns
``1 + (n-1)*t`` frames for the first chunk, ``n*t`` afterwards. Concatenated outputs equal
``model.encode`` / ``model.decode`` of the whole clip (float32: up to kernel rounding, ~1e-6; FSQ indices equal).

**Maximum context** (``max_context_frames=N``, default ``None`` = unlimited): the key/value cache of the temporal
attention is the only state that grows with the clip (``2 * C * h * w`` values per latent frame, e.g. 29 MB per
latent frame for a 720p CV8x8x8 model in bf16). With ``N`` set, latent frame ``i`` attends to latent frames
``i-N+1 .. i`` only (a sliding window, independent of the chunking) and memory is bounded. This is the one place
where streamed results can differ from whole-clip encoding: they are equal when the clip has at most ``N`` latent
frames (``1 + (N-1)*t`` input frames), and the first ``N`` latent frames are always equal.

**Spatial tiling** (``tiling=SpatialTiling(...)``, off by default) splits very large frames into overlapping tiles,
each streamed with its own caches, and blends the overlaps linearly (in latent space when encoding, in pixel space
when decoding). It is **not exact**: tiles see zero padding at their borders and the mid-block spatial attention
sees only its tile; ``tests/networks/test_streaming.py`` measures how far off it is.

Streaming is for inference: the caches are detached, so no gradient flows from one chunk into earlier ones.

Example::

    enc = StreamingEncoder(model)                       # CV or DV CosmosTokenizer
    latents = [enc.encode_chunk(video[:, :, :17])[0]]   # 1 + 2*8 frames first
    for start in range(17, video.shape[2], 16):         # then 16 at a time
        latents.append(enc.encode_chunk(video[:, :, start:start + 16])[0])
    # == model.encode(video)[0] when concatenated along dim 2
    latent, = stream_encode(model, video, chunk_frames=16)   # the same in one call (also takes an iterable)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from ..modules.attention import CausalAttnBlock3d, CausalSpatialAttnBlock3d, CausalTemporalAttnBlock3d
from ..modules.conv import CausalConv3d, FactorizedCausalConv3d
from ..modules.norm import CausalGroupNorm
from ..modules.patching import HaarPatcher3d, HaarUnpatcher3d
from ..modules.resample import CausalHybridDownsample3d, CausalHybridUpsample3d
from ..modules.resnet import CausalResnetBlock3d
from .levels import DownLevel, MidBlock, UpLevel
from .tokenizer import CosmosTokenizer
from .video import VideoDecoder, VideoEncoder

__all__ = [
    "SpatialTiling",
    "StreamCache",
    "StreamingDecoder",
    "StreamingEncoder",
    "iter_decode",
    "iter_encode",
    "stream_decode",
    "stream_encode",
]

#: The module types the streaming walkers below know how to drive (exact types: a subclass may change forward).
_SUPPORTED = (
    VideoEncoder, VideoDecoder, HaarPatcher3d, HaarUnpatcher3d, FactorizedCausalConv3d, CausalConv3d, nn.Conv3d,
    nn.ModuleList, DownLevel, UpLevel, MidBlock, CausalResnetBlock3d, CausalGroupNorm, nn.GroupNorm, nn.Identity,
    CausalHybridDownsample3d, CausalHybridUpsample3d, CausalAttnBlock3d, CausalSpatialAttnBlock3d,
    CausalTemporalAttnBlock3d,
)


# --------------------------------------------------------------------------------------------- per-layer state
class StreamCache:
    """The state of one stream through one video encoder or decoder body: per-layer tensors keyed by module.

    The modules themselves hold no state (their plain ``forward`` is untouched); the walkers below pass each
    stateful module its own entry through the module's ``forward_chunk`` and store what it returns.
    """

    def __init__(self, max_context_frames: int | None) -> None:
        if max_context_frames is not None and max_context_frames < 1:
            raise ValueError(f"max_context_frames must be a positive number of latent frames or None, "
                             f"got {max_context_frames}")
        self.max_context_frames = max_context_frames
        self.first_chunk = True
        self._state: dict[nn.Module, Any] = {}

    def conv(self, conv: CausalConv3d, x: torch.Tensor) -> torch.Tensor:
        if conv.time_pad == 0 and conv.conv3d.kernel_size[0] == 1:
            return conv(x)  # looks at one frame at a time: nothing to carry
        y, self._state[conv] = conv.forward_chunk(x, self._state.get(conv))
        return y

    def resample(self, module: CausalHybridDownsample3d | CausalHybridUpsample3d, x: torch.Tensor) -> torch.Tensor:
        y, self._state[module] = module.forward_chunk(x, self._state.get(module))
        return y

    def temporal_attention(self, module: CausalTemporalAttnBlock3d, x: torch.Tensor) -> torch.Tensor:
        y, self._state[module] = module.forward_chunk(x, self._state.get(module), self.max_context_frames)
        return y

    def nbytes(self) -> int:
        """Bytes held by the cached tensors."""
        total = 0
        for value in self._state.values():
            for t in value if isinstance(value, tuple) else (value,):
                if isinstance(t, torch.Tensor):
                    total += t.numel() * t.element_size()
        return total


def _check_supported(body: nn.Module) -> None:
    for name, module in body.named_modules():
        if type(module) not in _SUPPORTED:
            raise TypeError(
                f"streaming drives the plain video networks built by build_tokenizer; {name or 'the body'} is a "
                f"{type(module).__name__}"
            )


# ------------------------------------------------------------------------ walkers (mirror the plain forwards)
def _factorized(conv: FactorizedCausalConv3d, x: torch.Tensor, cache: StreamCache) -> torch.Tensor:
    for layer in conv:
        x = cache.conv(layer, x)
    return x


def _resnet(block: CausalResnetBlock3d, x: torch.Tensor, cache: StreamCache) -> torch.Tensor:
    # CausalResnetBlock3d.forward; norms are per frame, nin_shortcut is 1x1x1.
    h = _factorized(block.conv1, F.silu(block.norm1(x)), cache)
    h = _factorized(block.conv2, F.silu(block.norm2(h)), cache)
    return block.nin_shortcut(x) + h


def _mid(mid: MidBlock, x: torch.Tensor, cache: StreamCache) -> torch.Tensor:
    spatial, temporal = mid.attn_1  # CausalAttnBlock3d: per-frame spatial, then causal temporal attention
    x = _resnet(mid.block_1, x, cache)
    x = cache.temporal_attention(temporal, spatial(x))
    return _resnet(mid.block_2, x, cache)


def _encode_body(encoder: VideoEncoder, x: torch.Tensor, cache: StreamCache) -> torch.Tensor:
    # VideoEncoder.forward, chunk by chunk.
    h = _factorized(encoder.conv_in, encoder.patcher3d.forward_chunk(x, cache.first_chunk), cache)
    for level in encoder.down:
        for block in level.block:
            h = _resnet(block, h, cache)
        if level.downsample is not None:
            h = cache.resample(level.downsample, h)
    h = _mid(encoder.mid, h, cache)
    h = _factorized(encoder.conv_out, F.silu(encoder.norm_out(h)), cache)
    cache.first_chunk = False
    return h


def _decode_body(decoder: VideoDecoder, z: torch.Tensor, cache: StreamCache) -> torch.Tensor:
    # VideoDecoder.forward, chunk by chunk.
    h = _mid(decoder.mid, _factorized(decoder.conv_in, z, cache), cache)
    for i in reversed(range(len(decoder.up))):
        level = decoder.up[i]
        for block in level.block:
            h = _resnet(block, h, cache)
        if level.upsample is not None:
            h = cache.resample(level.upsample, h)
    h = _factorized(decoder.conv_out, F.silu(decoder.norm_out(h)), cache)
    h = decoder.unpatcher3d.forward_chunk(h, cache.first_chunk)
    cache.first_chunk = False
    return h


# ------------------------------------------------------------------------------------------- spatial tiling
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


class _Tiles:
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


class _Blender:
    """Accumulates weighted tiles into a float32 canvas and normalises by the summed weights."""

    def __init__(self, tiles: _Tiles, scale: int) -> None:
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


# ----------------------------------------------------------------------------------------------- the streams
def _check_model(model: CosmosTokenizer, what: str) -> None:
    if not isinstance(model, CosmosTokenizer):
        raise TypeError(f"{what} takes a CosmosTokenizer (nemo_cosmos_tokenizer.build_tokenizer), "
                        f"got {type(model).__name__}")
    if not model.config.is_video:
        raise ValueError(f"{what} streams video; {model.config.family} is an image family (encode frames directly)")


class _Stream:
    """What :class:`StreamingEncoder` and :class:`StreamingDecoder` share: the model, one :class:`StreamCache` per
    spatial tile, the ``[B, C, h, w]`` the stream continues, and a latch that refuses further chunks after one
    failed part-way (its caches may then hold some layers' state of the failed chunk)."""

    #: The body of the model this stream drives (``"encoder"`` or ``"decoder"``).
    _body: str

    def __init__(
        self,
        model: CosmosTokenizer,
        max_context_frames: int | None = None,
        *,
        tiling: SpatialTiling | None = None,
    ) -> None:
        _check_model(model, type(self).__name__)
        _check_supported(getattr(model, self._body))
        StreamCache(max_context_frames)  # validates
        self.model = model
        self.max_context_frames = max_context_frames
        self.tiling = tiling
        self.reset()

    @property
    def temporal_compression(self) -> int:
        return self.model.config.temporal_compression

    def reset(self) -> None:
        self._shape: tuple[int, ...] | None = None
        self._caches: list[StreamCache] = []
        self._tiles: _Tiles | None = None
        self._failed = False

    def cache_nbytes(self) -> int:
        """Bytes held by the per-layer caches (all tiles)."""
        return sum(c.nbytes() for c in self._caches)

    def _check_alive(self) -> None:
        if self._failed:
            raise RuntimeError("a previous chunk failed part-way, so the stream state is inconsistent; call reset()")

    def _start(self, shape: tuple[int, ...], h: int, w: int) -> None:
        """First chunk: remember ``[B, C, H, W]`` and lay out the tiles over the latent plane ``h x w``."""
        self._shape = shape
        self._tiles = _Tiles(self.tiling, self.model.config.spatial_compression, h, w)
        self._caches = [StreamCache(self.max_context_frames) for _ in self._tiles.spans]

    def _run_tiles(
        self,
        x: torch.Tensor,
        crop_scale: int,
        blend_scale: int,
        body: Callable[[torch.Tensor, StreamCache], torch.Tensor],
    ) -> torch.Tensor:
        """``body(tile of x, its cache)`` on every tile, blended; tile spans (latent units) are multiplied by
        ``crop_scale`` to crop ``x`` and by ``blend_scale`` to place the outputs."""
        assert self._tiles is not None
        s = crop_scale
        try:
            blender = _Blender(self._tiles, scale=blend_scale)
            for i, ((r0, r1), (c0, c1)) in enumerate(self._tiles.spans):
                part = x if len(self._tiles.spans) == 1 else x[..., r0 * s:r1 * s, c0 * s:c1 * s]
                blender.add(i, body(part, self._caches[i]))
            return blender.result()
        except BaseException:
            self._failed = True
            raise


class StreamingEncoder(_Stream):
    """Encode a video chunk by chunk; the concatenated outputs equal ``model.encode`` of the whole clip.

    Args:
        model: a CV or DV :class:`CosmosTokenizer` (eval mode; its dtype and device are used as they are).
        max_context_frames: latent frames the mid-block temporal attention looks back over (``None``: all, which
            is exact; see the module docstring for the one place this can differ from whole-clip encoding).
        tiling: optional :class:`SpatialTiling` for very large frames (not exact).

    Feed :meth:`encode_chunk` ``[B, 3, n, H, W]`` in [-1, 1] with ``n = 1 + k*t`` first and then any positive
    multiple of ``t`` (``t`` = temporal compression). :meth:`reset` starts a new clip.
    """

    _body = "encoder"

    def reset(self) -> None:
        """Forget the clip streamed so far; the next chunk is a first chunk."""
        super().reset()
        self.frames_in = 0
        self.latent_frames_out = 0

    def _check_chunk(self, x: torch.Tensor) -> None:
        self._check_alive()
        t = self.temporal_compression
        if not isinstance(x, torch.Tensor) or x.ndim != 5:
            raise ValueError(f"encode_chunk takes frames [B, 3, n, H, W], got "
                             f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
        n = x.shape[2]
        if self.frames_in == 0:
            if n < 1 or (n - 1) % t:
                raise ValueError(
                    f"the first chunk must hold 1 + k*{t} frames (1, {1 + t}, {1 + 2 * t}, ...), got {n}; "
                    f"then feed multiples of {t} frames"
                )
            self.model.config.check_input_shape(tuple(x.shape))
        else:
            if n < 1 or n % t:
                raise ValueError(
                    f"after the first chunk every chunk must hold a positive multiple of {t} frames "
                    f"({t}, {2 * t}, ...), got {n} (frames streamed so far: {self.frames_in})"
                )
            shape = (x.shape[0], x.shape[1], *x.shape[3:])
            if shape != self._shape:
                raise ValueError(f"chunk of shape {tuple(x.shape)} does not continue the clip of [B, C, H, W] = "
                                 f"{list(self._shape or ())}")

    def encode_pre_quant_chunk(self, frames: torch.Tensor) -> torch.Tensor:
        """The next frames ``[B, 3, n, H, W]`` -> the next ``quant_conv`` output frames ``[B, C, n', H/s, W/s]``
        (latent of a continuous model, FSQ input of a discrete one), model dtype."""
        self._check_chunk(frames)
        model, s = self.model, self.model.config.spatial_compression
        if self.frames_in == 0:
            self._start((frames.shape[0], frames.shape[1], *frames.shape[3:]), frames.shape[3] // s,
                        frames.shape[4] // s)
        out = self._run_tiles(frames, s, 1,
                              lambda part, cache: model.quant_conv(_encode_body(model.encoder, part, cache)))
        self.frames_in += frames.shape[2]
        self.latent_frames_out += out.shape[2]
        return out

    def encode_chunk(self, frames: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The next frames -> the next latent frames, as ``model.encode`` returns them: ``(latent,)`` for CV,
        ``(indices int32 [B, n', h, w], codes float32 [B, 6, n', h, w])`` for DV."""
        h = self.encode_pre_quant_chunk(frames)
        if self.model.quantizer is None:
            return (h,)
        indices, codes = self.model.quantizer(h)
        return indices, codes


class StreamingDecoder(_Stream):
    """Decode latent frames chunk by chunk; the concatenated outputs equal ``model.decode`` of the whole latent.

    Args: as :class:`StreamingEncoder` (``tiling`` tiles the latent plane; sizes are given in pixels).

    Feed :meth:`decode_chunk` what ``model.decode`` takes (CV latents ``[B, C, n, h, w]``, DV integer indices
    ``[B, n, h, w]``) with any ``n >= 1``; it returns ``1 + (n-1)*t`` frames for the first chunk and ``n*t``
    frames afterwards, ``[B, 3, frames, H, W]`` (not clamped).
    """

    _body = "decoder"

    def reset(self) -> None:
        """Forget the latent frames streamed so far; the next chunk is a first chunk."""
        super().reset()
        self.latent_frames_in = 0
        self.frames_out = 0

    def decode_chunk(self, latent_or_indices: torch.Tensor) -> torch.Tensor:
        """The next latent frames (CV latent, DV indices) -> the next video frames ``[B, 3, frames, H, W]``."""
        z = latent_or_indices
        cfg, quantizer = self.model.config, self.model.quantizer
        if quantizer is None:
            if z.ndim != 5 or z.shape[1] != cfg.latent_channels or z.is_complex() or not z.is_floating_point():
                raise ValueError(f"{cfg.family} decode_chunk takes a latent [B, {cfg.latent_channels}, n, h, w], "
                                 f"got {z.dtype} of shape {tuple(z.shape)}")
            return self.decode_codes_chunk(z)
        if z.ndim != 4 or z.is_floating_point():
            raise ValueError(f"{cfg.family} decode_chunk takes integer indices [B, n, h, w], got {z.dtype} of shape "
                             f"{tuple(z.shape)} (use decode_codes_chunk for FSQ codes)")
        return self.decode_codes_chunk(quantizer.indices_to_codes(z))

    def decode_codes_chunk(self, codes: torch.Tensor) -> torch.Tensor:
        """The next ``post_quant_conv`` inputs ``[B, C, n, h, w]`` (CV latent or DV FSQ codes) -> video frames."""
        self._check_alive()
        if codes.ndim != 5 or codes.shape[2] < 1:
            raise ValueError(f"decode takes latent frames [B, C, n >= 1, h, w], got shape {tuple(codes.shape)}")
        shape = (codes.shape[0], codes.shape[1], *codes.shape[3:])
        model = self.model
        if self.latent_frames_in == 0:
            self._start(shape, codes.shape[3], codes.shape[4])
        elif shape != self._shape:
            raise ValueError(f"latent chunk of shape {tuple(codes.shape)} does not continue the stream of "
                             f"[B, C, h, w] = {list(self._shape or ())}")
        dtype = next(model.post_quant_conv.parameters()).dtype
        try:
            z = model.post_quant_conv(codes.to(dtype))  # 1x1x1: per frame and position, so tiles can crop after it
        except BaseException:
            self._failed = True
            raise
        out = self._run_tiles(z, 1, model.config.spatial_compression,
                              lambda part, cache: _decode_body(model.decoder, part, cache))
        self.latent_frames_in += codes.shape[2]
        self.frames_out += out.shape[2]
        return out


# ------------------------------------------------------------------------------------------ one-call helpers
def _rechunk(
    source: torch.Tensor | Iterable[torch.Tensor], dim: int, first: int, rest: int
) -> Iterator[torch.Tensor]:
    """Chunks of ``first`` and then ``rest`` entries along ``dim`` (the last may be shorter) from a tensor or an
    iterable of tensors of any lengths along ``dim``."""
    if isinstance(source, torch.Tensor):
        length, start, size = source.shape[dim], 0, first
        while start < length:
            yield source.narrow(dim, start, min(size, length - start))
            start, size = start + size, rest
        return
    buffer: list[torch.Tensor] = []
    buffered, size = 0, first
    for piece in source:
        if not isinstance(piece, torch.Tensor):
            raise TypeError(f"expected tensors, got {type(piece).__name__}")
        buffer.append(piece)
        buffered += piece.shape[dim]
        while buffered >= size:
            joined = torch.cat(buffer, dim=dim) if len(buffer) > 1 else buffer[0]
            yield joined.narrow(dim, 0, size)
            tail = joined.narrow(dim, size, buffered - size)
            buffer, buffered, size = ([tail] if tail.shape[dim] else []), buffered - size, rest
    if buffered:
        yield torch.cat(buffer, dim=dim) if len(buffer) > 1 else buffer[0]


def iter_encode(
    model: CosmosTokenizer,
    video: torch.Tensor | Iterable[torch.Tensor],
    chunk_frames: int,
    *,
    max_context_frames: int | None = None,
    tiling: SpatialTiling | None = None,
) -> Iterator[tuple[torch.Tensor, ...]]:
    """Stream ``video`` through the encoder: yields ``model.encode``-style outputs chunk by chunk.

    ``video`` is ``[B, 3, T, H, W]`` or an iterable of such pieces of any lengths (e.g. frames as they are
    decoded); it is re-cut into ``1 + chunk_frames`` frames first and then ``chunk_frames`` at a time
    (``chunk_frames`` a positive multiple of the temporal compression ``t``). The whole clip must have
    ``1 + k*t`` frames, as for whole-clip encoding.
    """
    t = model.config.temporal_compression
    if chunk_frames < 1 or chunk_frames % t:
        raise ValueError(f"chunk_frames must be a positive multiple of the temporal compression {t}, "
                         f"got {chunk_frames}")
    encoder = StreamingEncoder(model, max_context_frames, tiling=tiling)
    for chunk in _rechunk(video, 2, 1 + chunk_frames, chunk_frames):
        total = encoder.frames_in + chunk.shape[2]
        if chunk.shape[2] < (1 + chunk_frames if encoder.frames_in == 0 else chunk_frames) and (total - 1) % t:
            raise ValueError(
                f"the clip has {total} frames; streaming, like whole-clip encoding, needs 1 + k*{t} frames. Pad the "
                "end by repeating the last frame (nemo_cosmos_tokenizer.inference.preprocess.pad_frames), which "
                "leaves the latents of the real frames exact"
            )
        yield encoder.encode_chunk(chunk)


def stream_encode(
    model: CosmosTokenizer,
    video: torch.Tensor | Iterable[torch.Tensor],
    chunk_frames: int,
    *,
    max_context_frames: int | None = None,
    tiling: SpatialTiling | None = None,
) -> tuple[torch.Tensor, ...]:
    """:func:`iter_encode` with the chunks concatenated: the same tuple as ``model.encode(video)``."""
    parts = list(iter_encode(model, video, chunk_frames, max_context_frames=max_context_frames, tiling=tiling))
    if not parts:
        raise ValueError("the video has no frames")
    # latents / codes [B, C, n, h, w] join along dim 2, indices [B, n, h, w] along dim 1.
    return tuple(torch.cat([p[i] for p in parts], dim=parts[0][i].ndim - 3) for i in range(len(parts[0])))


def iter_decode(
    model: CosmosTokenizer,
    latents: torch.Tensor | Iterable[torch.Tensor],
    chunk_latent_frames: int,
    *,
    max_context_frames: int | None = None,
    tiling: SpatialTiling | None = None,
) -> Iterator[torch.Tensor]:
    """Stream what ``model.decode`` takes (CV latents ``[B, C, n, h, w]``, DV indices ``[B, n, h, w]``, or an
    iterable of such pieces) through the decoder, ``chunk_latent_frames`` latent frames at a time; yields video
    frames ``[B, 3, frames, H, W]``."""
    if chunk_latent_frames < 1:
        raise ValueError(f"chunk_latent_frames must be >= 1, got {chunk_latent_frames}")
    decoder = StreamingDecoder(model, max_context_frames, tiling=tiling)
    dim = 2 if model.quantizer is None else 1
    for chunk in _rechunk(latents, dim, chunk_latent_frames, chunk_latent_frames):
        yield decoder.decode_chunk(chunk)


def stream_decode(
    model: CosmosTokenizer,
    latents: torch.Tensor | Iterable[torch.Tensor],
    chunk_latent_frames: int,
    *,
    max_context_frames: int | None = None,
    tiling: SpatialTiling | None = None,
) -> torch.Tensor:
    """:func:`iter_decode` with the chunks concatenated: the same as ``model.decode(latents)``."""
    parts = list(iter_decode(model, latents, chunk_latent_frames, max_context_frames=max_context_frames,
                             tiling=tiling))
    if not parts:
        raise ValueError("no latent frames to decode")
    return torch.cat(parts, dim=2)  # [B, 3, T, H, W]
