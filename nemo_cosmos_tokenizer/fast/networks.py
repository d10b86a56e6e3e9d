"""Fast encoder / decoder bodies and the tokenizer-side wrappers that add ``quant_conv`` / ``post_quant_conv``.

Same order of operations as :mod:`nemo_cosmos_tokenizer.networks.video` / ``.image``, on folded channels-last
frames (see :mod:`.layers`). They are built from a plain :class:`~nemo_cosmos_tokenizer.networks.CosmosTokenizer`
by the conversion table of :mod:`.convert`. The Haar patcher / unpatcher are the plain modules (pure element-wise
arithmetic that ``torch.compile`` fuses with the layout change into one kernel).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..modules.cache import StreamCache
from .frames import ConvFrames, FrameNorm, frames_from_video, video_from_frames

__all__ = ["FastDecoder", "FastDecoderBody", "FastEncoder", "FastEncoderBody"]


def _call(module: nn.Module, x: torch.Tensor, cache: StreamCache | None) -> torch.Tensor:
    """A plain (un)patcher: ``module(x, cache)`` with a cache, else ``module(x)`` (the 2D ones take none)."""
    return module(x) if cache is None else module(x, cache)


class FastEncoderBody(nn.Module):
    """The fast layers of a ``VideoEncoder`` / ``ImageEncoder``: ``[B, 3, T, H, W]`` (or ``[B, 3, H, W]``) -> folded
    frames ``[B*t, z, h, w]`` (channels-last)."""

    def __init__(self, patcher: nn.Module, conv_in: nn.Module, down: Sequence[nn.Module], mid: nn.Module,
                 norm_out: FrameNorm, conv_out: nn.Module, *, video: bool, memory_format: torch.memory_format) -> None:
        super().__init__()
        self.patcher = patcher
        self.conv_in = conv_in
        self.down = nn.ModuleList(down)
        self.mid = mid
        self.norm_out = norm_out
        self.conv_out = conv_out
        self.video = video
        self.memory_format = memory_format

    def forward(self, x: torch.Tensor, cache: StreamCache | None = None) -> torch.Tensor:
        b = x.shape[0]
        p = _call(self.patcher, x, cache)  # [B, 3p^3, T', H/p, W/p] or [B, 3p^2, H/p, W/p]
        h = (frames_from_video(p) if self.video else p).contiguous(memory_format=self.memory_format)  # [N, C, h, w]
        h = self.conv_in(h, b, cache)
        for level in self.down:
            h = level(h, b, cache)
        h = self.mid(h, b, cache)
        return self.conv_out(self.norm_out(h, silu=True), b, cache)  # [N, z, h, w]


class FastDecoderBody(nn.Module):
    """The fast layers of a ``VideoDecoder`` / ``ImageDecoder``: folded frames ``[B*t, z, h, w]`` -> reconstruction
    ``[B, 3, T, H, W]`` (or ``[B, 3, H, W]``). ``up`` is in execution order (the deepest level first)."""

    def __init__(self, conv_in: nn.Module, mid: nn.Module, up: Sequence[nn.Module], norm_out: FrameNorm,
                 conv_out: nn.Module, unpatcher: nn.Module, *, video: bool) -> None:
        super().__init__()
        self.conv_in = conv_in
        self.mid = mid
        self.up = nn.ModuleList(up)
        self.norm_out = norm_out
        self.conv_out = conv_out
        self.unpatcher = unpatcher
        self.video = video

    def forward(self, h: torch.Tensor, b: int, cache: StreamCache | None = None) -> torch.Tensor:
        h = self.mid(self.conv_in(h, b, cache), b, cache)
        for level in self.up:
            h = level(h, b, cache)
        h = self.conv_out(self.norm_out(h, silu=True), b, cache)
        y = video_from_frames(h, b) if self.video else h  # [B, 3p^3, T', H/p, W/p] or [B, 3p^2, H/p, W/p]
        return _call(self.unpatcher, y, cache).contiguous()  # [B, 3, T, H, W] or [B, 3, H, W]


class FastEncoder(nn.Module):
    """``encoder`` + ``quant_conv`` of a tokenizer: ``[B, 3, T, H, W]`` (or ``[B, 3, H, W]``) -> the pre-quantization
    tensor ``[B, C, t, h, w]`` (or ``[B, C, h, w]``), the output of the plain ``encode_pre_quant``."""

    def __init__(self, body: FastEncoderBody, quant_conv: ConvFrames) -> None:
        super().__init__()
        self.body = body
        self.quant_conv = quant_conv

    def forward(self, x: torch.Tensor, cache: StreamCache | None = None) -> torch.Tensor:
        b = x.shape[0]
        h = self.quant_conv(self.body(x, cache))  # [N, C, h, w]
        return video_from_frames(h, b) if self.body.video else h


class FastDecoder(nn.Module):
    """``post_quant_conv`` + ``decoder``: latent / FSQ codes ``[B, C, t, h, w]`` (or ``[B, C, h, w]``), in the model
    dtype -> reconstruction ``[B, 3, T, H, W]`` (or ``[B, 3, H, W]``), the output of the plain ``decode``."""

    def __init__(self, post_quant_conv: ConvFrames, body: FastDecoderBody, memory_format: torch.memory_format) -> None:
        super().__init__()
        self.post_quant_conv = post_quant_conv
        self.body = body
        self.memory_format = memory_format

    def forward(self, z: torch.Tensor, cache: StreamCache | None = None) -> torch.Tensor:
        b = z.shape[0]
        h = (frames_from_video(z) if self.body.video else z).contiguous(memory_format=self.memory_format)
        return self.body(self.post_quant_conv(h), b, cache)  # [N, C, h, w] -> [B, 3, (T), H, W]
