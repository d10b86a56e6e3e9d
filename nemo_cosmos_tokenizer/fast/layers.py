"""Fast layers on *folded frames*: every video activation is ``[N = B*T, C, H, W]``, channels-last.

The plain video networks run ``nn.Conv3d`` on ``[B, C, T, H, W]``. Here the frames of all windows are folded into
the batch so that

* a spatial ``(1, k, k)`` causal conv is an ``F.conv2d`` over the folded frames (cuDNN's NHWC kernels);
* a temporal ``(k, 1, 1)`` causal conv is an ``F.conv2d`` with a ``(k, 1)`` kernel over the *same memory* viewed
  as ``[B, C, T, H*W]`` (channels-last ``[B, T, H*W, C]``): an implicit GEMM with ``K = k*C``; the causal
  replicate-padding is one ``cat`` of the first frame in front (fused into neighbouring kernels by
  ``torch.compile``);
* per-frame ``GroupNorm(1)`` (+ SiLU) is a per-row reduction over the contiguous ``[H, W, C]`` block of a frame;
* the spatial attention is one fused ``qkv`` GEMM + ``F.scaled_dot_product_attention`` per frame, the causal
  temporal attention the same over ``[B, H*W, T, C]`` views with ``is_causal=True``.

Nothing here copies data to change layout except where noted. Every layer is built from the corresponding plain
module by the one conversion table :data:`nemo_cosmos_tokenizer.fast.convert.FAST_MODULES` and computes the same
function; ``tests/fast`` checks that on CPU in float32. The image networks (CI/DI) reuse the same layers with
``T = 1`` (``GroupNorm(32)``, no temporal convs).

The fast module protocol: ``forward(x, b, cache=None)`` with ``x`` the folded frames ``[B*T, C, H, W]``, ``b`` the
batch size ``B`` and ``cache`` an optional :class:`~nemo_cosmos_tokenizer.modules.cache.StreamCache`: with it ``x``
holds the next chunk of a stream and the stateful layers (temporal convs, resamplers, temporal attention) keep what
they need in it, exactly as the plain modules do. Norms (``forward(x, silu)``) are called by their owner.

Layers take their already converted parts (or, for the leaves, the plain module whose weights they copy); the table
in :mod:`.convert` does the wiring. This module holds the blocks; the layout helpers and primitive layers are in
:mod:`.frames`, the attention layers in :mod:`.attention_layers`, their kernels in :mod:`.attention` (all
re-exported here).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..modules.cache import StreamCache
from ..modules.resample import avg_pool_hw
from .attention import ATTENTION, Attention, materialized, sdpa  # noqa: F401  (re-exported)
from .attention_layers import SpatialAttention, TemporalAttention, fused_qkv, linear_of  # noqa: F401  (re-exported)
from .frames import (  # noqa: F401  (re-exported)
    ConvFrames,
    FrameNorm,
    TemporalConv,
    conv_frames_or_temporal,
    frames_from_seq,
    frames_from_video,
    group_norm_of,
    seq_from_frames,
    video_from_frames,
)

__all__ = [
    "ATTENTION",
    "Attention",
    "ConvFrames",
    "FastChain",
    "FastFactorizedConv",
    "FastDownsample",
    "FastResBlock",
    "FastUpsample",
    "FrameNorm",
    "SpatialAttention",
    "TemporalAttention",
    "TemporalConv",
    "conv_frames_or_temporal",
    "fused_qkv",
    "group_norm_of",
    "linear_of",
    "frames_from_seq",
    "frames_from_video",
    "seq_from_frames",
    "video_from_frames",
]

# ----------------------------------------------------------------------------------------------------- blocks
class FastChain(nn.Module):
    """Fast layers run one after the other (a level, a mid block, the video attention pair)."""

    def __init__(self, layers: list[nn.Module]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor, b: int, cache: StreamCache | None = None) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, b, cache)
        return x


class FastFactorizedConv(nn.Module):
    """:class:`FactorizedCausalConv3d`: a per-frame 3x3 :class:`ConvFrames` then a :class:`TemporalConv`."""

    def __init__(self, spatial: ConvFrames, temporal: TemporalConv) -> None:
        super().__init__()
        self.spatial = spatial
        self.temporal = temporal

    def forward(self, x: torch.Tensor, b: int, cache: StreamCache | None = None) -> torch.Tensor:
        return self.temporal(self.spatial(x), b, cache)


class FastResBlock(nn.Module):
    """``shortcut(x) + conv2(silu(norm2(conv1(silu(norm1(x))))))`` on folded frames.

    Each conv is a :class:`ConvFrames` (3x3, images) or a :class:`FastFactorizedConv` (video); the shortcut a
    1x1 :class:`ConvFrames` or ``None`` (identity).
    """

    def __init__(self, norm1: FrameNorm, conv1: nn.Module, norm2: FrameNorm, conv2: nn.Module,
                 nin_shortcut: ConvFrames | None) -> None:
        super().__init__()
        self.norm1 = norm1
        self.conv1 = conv1
        self.norm2 = norm2
        self.conv2 = conv2
        self.nin_shortcut = nin_shortcut

    def forward(self, x: torch.Tensor, b: int, cache: StreamCache | None = None) -> torch.Tensor:
        h = self.conv1(self.norm1(x, silu=True), b, cache)
        h = self.conv2(self.norm2(h, silu=True), b, cache)
        skip = x if self.nin_shortcut is None else self.nin_shortcut(x)
        return skip + h


class FastDownsample(nn.Module):
    """Video (``conv3`` given): NVIDIA's hybrid downsample (spatial conv + 2x2 mean, temporal conv + 2-frame mean,
    1x1 conv). Image (``conv3=None``): zero pad right/bottom, 3x3 conv ``conv1`` with stride 2."""

    def __init__(self, conv1: ConvFrames | None, conv2: TemporalConv | None, conv3: ConvFrames | None) -> None:
        super().__init__()
        self.video = conv3 is not None
        self.conv1 = conv1
        self.conv2 = conv2
        self.conv3 = conv3

    def forward(self, x: torch.Tensor, b: int, cache: StreamCache | None = None) -> torch.Tensor:
        if self.conv1 is not None:
            xp = F.pad(x, (0, 1, 0, 1))  # [N, C, H+1, W+1]: zero pad right and bottom only
            x = self.conv1(xp)
            if not self.video:
                return x
            x = x + avg_pool_hw(xp)  # [N, C, H/2, W/2]
        if self.conv2 is not None:
            h, w = x.shape[2:]
            s = seq_from_frames(x, b)  # [B, T, HW, C]
            first_chunk = cache is None or cache.get(self.conv2) is None
            if cache is not None and s.shape[1] % 2 != (1 if first_chunk else 0):
                raise ValueError(
                    f"temporal downsample: the {'first' if first_chunk else 'a later'} chunk needs an "
                    f"{'odd' if first_chunk else 'even'} number of frames, got {s.shape[1]}"
                )
            if first_chunk:
                s = torch.cat([s[:, :1], s], dim=1)  # [B, T+1, HW, C]: frame 0 once more
            t = s.shape[1] // 2 * 2
            s = self.conv2.forward_seq(s, cache) + (s[:, 0:t:2] + s[:, 1:t:2]) / 2  # [B, (T+1)/2, HW, C]
            x = frames_from_seq(s, h, w)
        return self.conv3(x)


class FastUpsample(nn.Module):
    """Video (``conv3`` given): NVIDIA's hybrid upsample (frame doubling + causal temporal conv, nearest x2 + conv,
    1x1 conv, each resampling with a residual). Image (``conv3=None``): nearest x2 then the 3x3 conv ``conv2``."""

    def __init__(self, conv1: TemporalConv | None, conv2: ConvFrames | None, conv3: ConvFrames | None) -> None:
        super().__init__()
        self.video = conv3 is not None
        self.conv1 = conv1
        self.conv2 = conv2
        self.conv3 = conv3

    def forward(self, x: torch.Tensor, b: int, cache: StreamCache | None = None) -> torch.Tensor:
        if self.conv1 is not None:
            h, w = x.shape[2:]
            first_chunk = cache is None or cache.get(self.conv1) is None
            s = seq_from_frames(x, b).repeat_interleave(2, dim=1)  # [B, 2t, HW, C]
            if first_chunk:
                s = s[:, 1:]  # [B, 2t-1, HW, C]: the first copy of frame 0 is dropped
            x = frames_from_seq(self.conv1.forward_seq(s, cache) + s, h, w)
        if self.conv2 is not None:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")  # [N, C, 2h, 2w]
            if not self.video:
                return self.conv2(x)
            x = self.conv2(x) + x
        return self.conv3(x)
