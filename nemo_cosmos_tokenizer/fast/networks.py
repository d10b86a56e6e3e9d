"""Fast encoder / decoder bodies built from a plain :class:`~nemo_cosmos_tokenizer.networks.CosmosTokenizer`.

Same order of operations as :mod:`nemo_cosmos_tokenizer.networks.video` / ``.image``, on folded channels-last
frames (see :mod:`.layers`). The Haar patcher / unpatcher are the plain modules (pure element-wise arithmetic that
``torch.compile`` fuses with the layout change into one kernel).
"""

from __future__ import annotations

import torch
from torch import nn

from ..networks.tokenizer import CosmosTokenizer
from .layers import (
    Attention,
    ConvFrames,
    FastDownsample,
    FastResBlock,
    FastUpsample,
    FrameNorm,
    SpatialAttention,
    TemporalAttention,
    TemporalConv,
    _group_norm,
    frames_from_video,
    sdpa,
    video_from_frames,
)

__all__ = ["FastEncoder", "FastDecoder"]


def _factorized(conv: nn.Module, video: bool, memory_format: torch.memory_format) -> tuple[ConvFrames, TemporalConv | None]:
    """A plain ``conv_in`` / ``conv_out``: ``(spatial, temporal)`` for video (``FactorizedCausalConv3d``), ``(conv, None)``
    for images (``nn.Conv2d``)."""
    if video:
        return ConvFrames.from_plain(conv[0], memory_format), TemporalConv(conv[1], memory_format)
    return ConvFrames.from_plain(conv, memory_format), None


def _mid(mid: nn.Module, video: bool, memory_format: torch.memory_format, attention: Attention) -> list[nn.Module]:
    if video:
        attn = [SpatialAttention(mid.attn_1[0], attention), TemporalAttention(mid.attn_1[1], attention)]
    else:
        attn = [SpatialAttention(mid.attn_1, attention)]
    return [FastResBlock(mid.block_1, memory_format), *attn, FastResBlock(mid.block_2, memory_format)]


class FastEncoder(nn.Module):
    """``encoder`` + ``quant_conv`` of a tokenizer: ``[B, 3, T, H, W]`` (or ``[B, 3, H, W]``) -> the pre-quantization
    tensor ``[B, C, t, h, w]`` (or ``[B, C, h, w]``), the output of the plain ``encode_pre_quant``."""

    def __init__(self, model: CosmosTokenizer, *, memory_format: torch.memory_format = torch.channels_last,
                 attention: Attention = sdpa) -> None:
        super().__init__()
        enc = model.encoder
        self.video = model.config.is_video
        self.memory_format = memory_format
        self.patcher = enc.patcher3d if self.video else enc.patcher
        self.conv_in, self.conv_in_t = _factorized(enc.conv_in, self.video, memory_format)
        body: list[nn.Module] = []
        for level in enc.down:
            body += [FastResBlock(block, memory_format) for block in level.block]
            if level.downsample is not None:
                body.append(FastDownsample(level.downsample, memory_format))
        body += _mid(enc.mid, self.video, memory_format, attention)
        self.body = nn.ModuleList(body)
        self.norm_out = FrameNorm(_group_norm(enc.norm_out))
        self.conv_out, self.conv_out_t = _factorized(enc.conv_out, self.video, memory_format)
        self.quant_conv = ConvFrames.from_plain(model.quant_conv, memory_format)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        p = self.patcher(x)  # [B, 3p^3, T', H/p, W/p] or [B, 3p^2, H/p, W/p]
        h = (frames_from_video(p) if self.video else p).contiguous(memory_format=self.memory_format)  # [N, C, h, w]
        h = self.conv_in(h)
        if self.conv_in_t is not None:
            h = self.conv_in_t(h, b)
        for module in self.body:
            h = module(h, b)
        h = self.conv_out(self.norm_out(h, silu=True))
        if self.conv_out_t is not None:
            h = self.conv_out_t(h, b)
        h = self.quant_conv(h)  # [N, C, h, w]
        return video_from_frames(h, b) if self.video else h


class FastDecoder(nn.Module):
    """``post_quant_conv`` + ``decoder``: latent / FSQ codes ``[B, C, t, h, w]`` (or ``[B, C, h, w]``), in the model
    dtype -> reconstruction ``[B, 3, T, H, W]`` (or ``[B, 3, H, W]``), the output of the plain ``decode``."""

    def __init__(self, model: CosmosTokenizer, *, memory_format: torch.memory_format = torch.channels_last,
                 attention: Attention = sdpa) -> None:
        super().__init__()
        dec = model.decoder
        self.video = model.config.is_video
        self.memory_format = memory_format
        self.post_quant_conv = ConvFrames.from_plain(model.post_quant_conv, memory_format)
        self.conv_in, self.conv_in_t = _factorized(dec.conv_in, self.video, memory_format)
        body: list[nn.Module] = _mid(dec.mid, self.video, memory_format, attention)
        for i in reversed(range(len(dec.up))):  # the deepest level runs first
            level = dec.up[i]
            body += [FastResBlock(block, memory_format) for block in level.block]
            if level.upsample is not None:
                body.append(FastUpsample(level.upsample, memory_format))
        self.body = nn.ModuleList(body)
        self.norm_out = FrameNorm(_group_norm(dec.norm_out))
        self.conv_out, self.conv_out_t = _factorized(dec.conv_out, self.video, memory_format)
        self.unpatcher = dec.unpatcher3d if self.video else dec.unpatcher

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        b = z.shape[0]
        h = (frames_from_video(z) if self.video else z).contiguous(memory_format=self.memory_format)  # [N, C, h, w]
        h = self.post_quant_conv(h)
        h = self.conv_in(h)
        if self.conv_in_t is not None:
            h = self.conv_in_t(h, b)
        for module in self.body:
            h = module(h, b)
        h = self.conv_out(self.norm_out(h, silu=True))
        if self.conv_out_t is not None:
            h = self.conv_out_t(h, b)
        y = video_from_frames(h, b) if self.video else h  # [B, 3p^3, T', H/p, W/p] or [B, 3p^2, H/p, W/p]
        return self.unpatcher(y).contiguous()  # [B, 3, T, H, W] or [B, 3, H, W]
