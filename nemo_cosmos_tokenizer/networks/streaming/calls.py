"""One-call streaming: :func:`iter_encode` / :func:`stream_encode` and :func:`iter_decode` / :func:`stream_decode`
re-cut a tensor or an iterable of pieces into chunks and drive a :class:`.streams.StreamingEncoder` /
:class:`.streams.StreamingDecoder` (see :mod:`..streaming`)."""

from __future__ import annotations

from typing import Iterable, Iterator

import torch
from torch import nn

from .streams import StreamingDecoder, StreamingEncoder
from .tiling import SpatialTiling

__all__ = ["iter_decode", "iter_encode", "stream_decode", "stream_encode"]


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
    model: nn.Module,
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
    model: nn.Module,
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
    model: nn.Module,
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
    model: nn.Module,
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
