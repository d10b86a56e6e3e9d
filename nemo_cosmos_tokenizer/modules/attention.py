"""Single-head self-attention blocks of the mid blocks (the only attention in released models).

All compute ``x + proj_out(attention(norm(x)))`` with 1x1 q/k/v/proj_out convolutions and scale
``C ** -0.5`` (the default of :func:`torch.nn.functional.scaled_dot_product_attention`, used here so
no ``N x N`` score matrix has to be materialised where a fused kernel exists).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .cache import StreamCache
from .conv import CausalConv3d
from .norm import CausalGroupNorm, group_norm_2d

__all__ = ["AttnBlock2d", "CausalSpatialAttnBlock3d", "CausalTemporalAttnBlock3d", "CausalAttnBlock3d"]


class AttnBlock2d(nn.Module):
    """Attention over the ``H*W`` positions of an image. ``[B, C, H, W]`` -> same shape."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = group_norm_2d(channels)
        self.q = nn.Conv2d(channels, channels, kernel_size=1)
        self.k = nn.Conv2d(channels, channels, kernel_size=1)
        self.v = nn.Conv2d(channels, channels, kernel_size=1)
        self.proj_out = nn.Conv2d(channels, channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        hn = self.norm(x)

        def tokens(t: torch.Tensor) -> torch.Tensor:
            return t.flatten(2).transpose(1, 2).unsqueeze(1)  # [B, 1, H*W, C]

        out = F.scaled_dot_product_attention(tokens(self.q(hn)), tokens(self.k(hn)), tokens(self.v(hn)))
        out = out.squeeze(1).transpose(1, 2).reshape(b, c, h, w)  # [B, C, H, W]
        return x + self.proj_out(out)


class _CausalAttn3d(nn.Module):
    """Parameters of both video attention blocks: per-frame norm and 1x1x1 q/k/v/proj_out convolutions.

    Keys ``norm.norm``, ``{q,k,v,proj_out}.conv3d``.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = CausalGroupNorm(channels)
        self.q = CausalConv3d(channels, channels, (1, 1, 1))
        self.k = CausalConv3d(channels, channels, (1, 1, 1))
        self.v = CausalConv3d(channels, channels, (1, 1, 1))
        self.proj_out = CausalConv3d(channels, channels, (1, 1, 1))


def _positions_as_heads(y: torch.Tensor) -> torch.Tensor:
    """``[B, C, T, H, W]`` -> ``[B, H*W, T, C]``: every spatial position attends over time on its own."""
    b, c, t, h, w = y.shape
    return y.permute(0, 3, 4, 2, 1).reshape(b, h * w, t, c)  # [B, H*W, T, C]


class CausalSpatialAttnBlock3d(_CausalAttn3d):
    """Attention over the ``H*W`` positions of each frame separately (NVIDIA's ``CausalAttnBlock``).

    ``[B, C, T, H, W]`` -> same shape; keys ``norm.norm``, ``{q,k,v,proj_out}.conv3d``.
    """

    def forward(self, x: torch.Tensor, cache: StreamCache | None = None) -> torch.Tensor:
        """Per frame: a ``cache`` (streaming) changes nothing."""
        b, c, t, h, w = x.shape
        hn = self.norm(x)

        def tokens(y: torch.Tensor) -> torch.Tensor:
            return y.permute(0, 2, 3, 4, 1).reshape(b, t, h * w, c)  # [B, T, H*W, C]: frames act as heads

        out = F.scaled_dot_product_attention(tokens(self.q(hn)), tokens(self.k(hn)), tokens(self.v(hn)))
        out = out.reshape(b, t, h, w, c).permute(0, 4, 1, 2, 3)  # [B, C, T, H, W]
        return x + self.proj_out(out)


class CausalTemporalAttnBlock3d(_CausalAttn3d):
    """Causal attention over time at each spatial position: frame ``t`` sees frames ``<= t``.

    ``[B, C, T, H, W]`` -> same shape; same keys as :class:`CausalSpatialAttnBlock3d`.
    """

    def forward(self, x: torch.Tensor, cache: StreamCache | None = None) -> torch.Tensor:
        """With a ``cache`` (streaming), ``x`` ``[B, C, n, H, W]`` holds the next ``n`` frames and the cache the keys
        and values ``[B, H*W, c, C]`` of the ``c`` frames before them. Frame ``i`` attends to frames ``<= i`` or,
        with the cache's ``max_context_frames=N``, to the ``N`` frames ``i-N+1 .. i`` only (a sliding window,
        whatever the chunking; then only ``N - 1`` frames are kept)."""
        b, c, t, h, w = x.shape
        hn = self.norm(x)
        tokens = _positions_as_heads  # [B, H*W, n, C]
        q, k, v = tokens(self.q(hn)), tokens(self.k(hn)), tokens(self.v(hn))
        window = None if cache is None else cache.max_context_frames
        past = None if cache is None else cache.get(self)
        if past is not None and past[0].shape[2] > 0:
            k = torch.cat([past[0], k], dim=2)  # [B, H*W, c + n, C]
            v = torch.cat([past[1], v], dim=2)  # [B, H*W, c + n, C]
        num_past = k.shape[2] - t
        if num_past == 0 and (window is None or t <= window):
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # [B, H*W, n, C]
        else:
            query_pos = torch.arange(num_past, num_past + t, device=x.device)[:, None]  # [n, 1]
            key_pos = torch.arange(num_past + t, device=x.device)[None, :]  # [1, c + n]
            mask = key_pos <= query_pos
            if window is not None:
                mask = mask & (key_pos > query_pos - window)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # [B, H*W, n, C]
        out = out.reshape(b, h, w, t, c).permute(0, 4, 3, 1, 2)  # [B, C, n, H, W]
        if cache is not None:
            keep = k.shape[2] if window is None else min(k.shape[2], window - 1)
            start = k.shape[2] - keep
            if start > 0:  # copy the kept frames so the dropped ones can be freed
                k, v = k[:, :, start:].clone(), v[:, :, start:].clone()
            cache.set(self, (k.detach(), v.detach()))
        return x + self.proj_out(out)


class CausalAttnBlock3d(nn.Sequential):
    """The video mid-block attention: spatial (``0.*``) then causal temporal (``1.*``), each residual."""

    def __init__(self, channels: int) -> None:
        super().__init__(CausalSpatialAttnBlock3d(channels), CausalTemporalAttnBlock3d(channels))

    def forward(self, x: torch.Tensor, cache: StreamCache | None = None) -> torch.Tensor:
        for block in self:
            x = block(x, cache)
        return x
