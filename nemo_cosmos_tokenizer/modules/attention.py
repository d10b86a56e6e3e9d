"""Single-head self-attention blocks of the mid blocks (the only attention in released models).

All compute ``x + proj_out(attention(norm(x)))`` with 1x1 q/k/v/proj_out convolutions and scale
``C ** -0.5`` (the default of :func:`torch.nn.functional.scaled_dot_product_attention`, used here so
no ``N x N`` score matrix has to be materialised where a fused kernel exists).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

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


class CausalSpatialAttnBlock3d(nn.Module):
    """Attention over the ``H*W`` positions of each frame separately (NVIDIA's ``CausalAttnBlock``).

    ``[B, C, T, H, W]`` -> same shape; keys ``norm.norm``, ``{q,k,v,proj_out}.conv3d``.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = CausalGroupNorm(channels)
        self.q = CausalConv3d(channels, channels, (1, 1, 1))
        self.k = CausalConv3d(channels, channels, (1, 1, 1))
        self.v = CausalConv3d(channels, channels, (1, 1, 1))
        self.proj_out = CausalConv3d(channels, channels, (1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        hn = self.norm(x)

        def tokens(y: torch.Tensor) -> torch.Tensor:
            return y.permute(0, 2, 3, 4, 1).reshape(b, t, h * w, c)  # [B, T, H*W, C]: frames act as heads

        out = F.scaled_dot_product_attention(tokens(self.q(hn)), tokens(self.k(hn)), tokens(self.v(hn)))
        out = out.reshape(b, t, h, w, c).permute(0, 4, 1, 2, 3)  # [B, C, T, H, W]
        return x + self.proj_out(out)


class CausalTemporalAttnBlock3d(nn.Module):
    """Causal attention over time at each spatial position: frame ``t`` sees frames ``<= t``.

    ``[B, C, T, H, W]`` -> same shape; same keys as :class:`CausalSpatialAttnBlock3d`.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = CausalGroupNorm(channels)
        self.q = CausalConv3d(channels, channels, (1, 1, 1))
        self.k = CausalConv3d(channels, channels, (1, 1, 1))
        self.v = CausalConv3d(channels, channels, (1, 1, 1))
        self.proj_out = CausalConv3d(channels, channels, (1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        hn = self.norm(x)

        def tokens(y: torch.Tensor) -> torch.Tensor:
            return y.permute(0, 3, 4, 2, 1).reshape(b, h * w, t, c)  # [B, H*W, T, C]: positions act as heads

        out = F.scaled_dot_product_attention(
            tokens(self.q(hn)), tokens(self.k(hn)), tokens(self.v(hn)), is_causal=True
        )
        out = out.reshape(b, h, w, t, c).permute(0, 4, 3, 1, 2)  # [B, C, T, H, W]
        return x + self.proj_out(out)


class CausalAttnBlock3d(nn.Sequential):
    """The video mid-block attention: spatial (``0.*``) then causal temporal (``1.*``), each residual."""

    def __init__(self, channels: int) -> None:
        super().__init__(CausalSpatialAttnBlock3d(channels), CausalTemporalAttnBlock3d(channels))
