"""Fast attention layers on folded frames: q/k/v fused into one projection and one attention kernel call
(:mod:`.attention`), spatial over the ``H*W`` positions of every frame, causal temporal over the frames of each
window at every position (with the stream cache's keys and values)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..modules.attention import AttnBlock2d, CausalSpatialAttnBlock3d, CausalTemporalAttnBlock3d
from ..modules.cache import StreamCache
from ..modules.conv import CausalConv3d
from .attention import Attention, sdpa
from .frames import FrameNorm, frames_from_seq, frozen_vector, seq_from_frames

__all__ = ["SpatialAttention", "TemporalAttention", "fused_qkv", "linear_of"]


def fused_qkv(q: nn.Module, k: nn.Module, v: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """Fused ``[3C, C]`` weight and ``[3C]`` bias of three 1x1 convs (2D or causal 3D)."""
    convs = [m.conv3d if isinstance(m, CausalConv3d) else m for m in (q, k, v)]
    weight = torch.cat([c.weight.reshape(c.weight.shape[0], -1) for c in convs])
    bias = torch.cat([c.bias for c in convs])
    return weight, bias


def linear_of(m: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """``(weight [O, I], bias [O])`` of a 1x1 conv (2D or causal 3D)."""
    c = m.conv3d if isinstance(m, CausalConv3d) else m
    return c.weight.reshape(c.weight.shape[0], -1), c.bias


def _project(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``x @ weight.T + bias`` with the bias added as a separate (rounded) step, like the eager 1x1 convs it replaces
    (``aten.convolution`` on CUDA adds the bias after the cuDNN call)."""
    return F.linear(x, weight) + bias


class _FusedAttention(nn.Module):
    """Weights of an attention layer: the block's norm, q/k/v fused into one projection, proj_out; the kernel."""

    def __init__(self, block: AttnBlock2d | CausalSpatialAttnBlock3d | CausalTemporalAttnBlock3d, norm: FrameNorm,
                 attention: Attention = sdpa) -> None:
        super().__init__()
        self.norm = norm
        w, bias = fused_qkv(block.q, block.k, block.v)
        self.qkv_weight, self.qkv_bias = frozen_vector(w), frozen_vector(bias)
        w, bias = linear_of(block.proj_out)
        self.proj_weight, self.proj_bias = frozen_vector(w), frozen_vector(bias)
        self.attention = attention


class SpatialAttention(_FusedAttention):
    """``x + proj_out(softmax(q k^T / sqrt(C)) v)`` over the ``H*W`` positions of every folded frame.

    From :class:`AttnBlock2d` (GroupNorm 32) or :class:`CausalSpatialAttnBlock3d` (per-frame GroupNorm 1).
    """

    def forward(self, x: torch.Tensor, b: int, cache: StreamCache | None = None) -> torch.Tensor:
        n, c, h, w = x.shape
        tokens = self.norm(x, silu=False).permute(0, 2, 3, 1).reshape(n, 1, h * w, c)  # [N, 1, HW, C]
        q, k, v = _project(tokens, self.qkv_weight, self.qkv_bias).chunk(3, dim=-1)  # 3 x [N, 1, HW, C]
        out = self.attention(q, k, v, False)  # [N, 1, HW, C]
        out = _project(out, self.proj_weight, self.proj_bias)  # [N, 1, HW, C]
        return x + out.reshape(n, h, w, c).permute(0, 3, 1, 2)


class TemporalAttention(_FusedAttention):
    """Causal attention over the frames of each window at every spatial position (:class:`CausalTemporalAttnBlock3d`):
    ``[B, T, HW, C]`` is viewed as ``[B, HW (heads), T, C]``, no copy. With a stream ``cache`` it keeps the keys and
    values of earlier frames (at most ``max_context_frames - 1``) like the plain block."""

    def forward(self, x: torch.Tensor, b: int, cache: StreamCache | None = None) -> torch.Tensor:
        h, w = x.shape[2:]
        s = seq_from_frames(self.norm(x, silu=False), b)  # [B, T, HW, C]
        q, k, v = _project(s, self.qkv_weight, self.qkv_bias).transpose(1, 2).chunk(3, dim=-1)  # 3 x [B, HW, T, C]
        if cache is None:
            out = self.attention(q, k, v, True)  # [B, HW, T, C]
        else:
            out, state = _cached_causal_attention(q, k, v, cache.get(self), cache.max_context_frames, self.attention)
            cache.set(self, state)
        out = _project(out.transpose(1, 2), self.proj_weight, self.proj_bias)  # [B, T, HW, C]
        return x + frames_from_seq(out, h, w)


def _cached_causal_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, past: tuple[torch.Tensor, torch.Tensor] | None,
    window: int | None, attention: Attention,
) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """Causal attention of the next ``n`` frames ``q, k, v`` ``[B, HW, n, C]`` over the ``c`` cached ones ``past``
    (``[B, HW, c, C]`` keys and values) and themselves, limited to ``window`` frames; returns the output and the keys
    and values to keep (the same rule as the plain :class:`CausalTemporalAttnBlock3d`)."""
    t = q.shape[2]
    if past is not None and past[0].shape[2] > 0:
        k = torch.cat([past[0], k], dim=2)  # [B, HW, c + n, C]
        v = torch.cat([past[1], v], dim=2)
    num_past = k.shape[2] - t
    if num_past == 0 and (window is None or t <= window):
        out = attention(q, k, v, True)  # a first chunk: as the whole clip
    else:
        query_pos = torch.arange(num_past, num_past + t, device=q.device)[:, None]  # [n, 1]
        key_pos = torch.arange(num_past + t, device=q.device)[None, :]  # [1, c + n]
        mask = key_pos <= query_pos
        if window is not None:
            mask = mask & (key_pos > query_pos - window)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # [B, HW, n, C]
    keep = k.shape[2] if window is None else min(k.shape[2], window - 1)
    start = k.shape[2] - keep
    if start > 0:  # copy the kept frames so the dropped ones can be freed
        k, v = k[:, :, start:].clone(), v[:, :, start:].clone()
    return out, (k.detach(), v.detach())
