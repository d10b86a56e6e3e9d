"""The two streams: :class:`StreamingEncoder` and :class:`StreamingDecoder` (see :mod:`..streaming`)."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ...config import TokenizerConfig
from ...modules.cache import StreamCache
from .tiling import SpatialTiling, TileBlender, TileGrid

__all__ = ["StreamingDecoder", "StreamingEncoder"]


# ----------------------------------------------------------------------------------------------- the streams
def _check_model(model: nn.Module, what: str) -> None:
    """A video tokenizer whose ``encode_pre_quant`` / ``decode_latent`` take a stream cache: a
    :class:`~nemo_cosmos_tokenizer.networks.CosmosTokenizer` or a :class:`~nemo_cosmos_tokenizer.fast.FastCosmosTokenizer`."""
    config = getattr(model, "config", None)
    if not (isinstance(model, nn.Module) and isinstance(config, TokenizerConfig)
            and callable(getattr(model, "encode_pre_quant", None)) and callable(getattr(model, "decode_latent", None))):
        raise TypeError(f"{what} takes a CosmosTokenizer (nemo_cosmos_tokenizer.build_tokenizer) or its "
                        f"nemo_cosmos_tokenizer.fast.optimize(), got {type(model).__name__}")
    if not config.is_video:
        raise ValueError(f"{what} streams video; {config.family} is an image family (encode frames directly)")


class _Stream:
    """What :class:`StreamingEncoder` and :class:`StreamingDecoder` share: the model, one :class:`StreamCache` per
    spatial tile, the ``[B, C, h, w]`` the stream continues, and a latch that refuses further chunks after one
    failed part-way (its caches may then hold some layers' state of the failed chunk)."""

    #: The body of the model this stream drives (``"encoder"`` or ``"decoder"``).
    _body: str

    def __init__(
        self,
        model: nn.Module,
        max_context_frames: int | None = None,
        *,
        tiling: SpatialTiling | None = None,
    ) -> None:
        _check_model(model, type(self).__name__)
        if getattr(model, self._body) is None:
            raise ValueError(f"{type(self).__name__}: this tokenizer was loaded without its {self._body}")
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
        self._tiles: TileGrid | None = None
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
        self._tiles = TileGrid(self.tiling, self.model.config.spatial_compression, h, w)
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
            blender = TileBlender(self._tiles, scale=blend_scale)
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
        model: a CV or DV :class:`CosmosTokenizer` or its :func:`~nemo_cosmos_tokenizer.fast.optimize` (eval mode;
            its dtype and device are used as they are).
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
        out = self._run_tiles(frames, s, 1, lambda part, cache: model.encode_pre_quant(part, cache=cache))
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
        # post_quant_conv is 1x1x1 (per frame and position), so a tile of its input gives that tile of its output.
        out = self._run_tiles(codes, 1, model.config.spatial_compression,
                              lambda part, cache: model.decode_latent(part, cache=cache))
        self.latent_frames_in += codes.shape[2]
        self.frames_out += out.shape[2]
        return out
