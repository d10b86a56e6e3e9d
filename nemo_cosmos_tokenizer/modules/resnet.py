"""Residual blocks: 2D (images) and factorized causal 3D (video).

Both compute ``shortcut(x) + conv2(dropout(silu(norm2(conv1(silu(norm1(x)))))))`` with dropout 0 in every
released model (so it is left out); ``shortcut`` is a 1x1 convolution ``nin_shortcut`` when the width
changes, else the identity (no parameters).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .cache import StreamCache
from .conv import CausalConv3d, FactorizedCausalConv3d
from .norm import CausalGroupNorm, group_norm_2d

__all__ = ["ResnetBlock2d", "CausalResnetBlock3d"]


class ResnetBlock2d(nn.Module):
    """``[B, C_in, H, W]`` -> ``[B, C_out, H, W]``; 3x3 convs, GroupNorm(32)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.norm1 = group_norm_2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1)
        self.norm2 = group_norm_2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, stride=1, padding=1)
        self.nin_shortcut = (
            nn.Conv2d(in_channels, out_channels, kernel_size=1) if in_channels != out_channels else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return self.nin_shortcut(x) + h


class CausalResnetBlock3d(nn.Module):
    """``[B, C_in, T, H, W]`` -> ``[B, C_out, T, H, W]``; factorized causal convs, per-frame GroupNorm(1).

    Key layout of NVIDIA's ``CausalResnetBlockFactorized3d``: ``norm1.norm``, ``conv1.{0,1}.conv3d``,
    ``norm2.norm``, ``conv2.{0,1}.conv3d``, ``nin_shortcut.conv3d``.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.norm1 = CausalGroupNorm(in_channels)
        self.conv1 = FactorizedCausalConv3d(in_channels, out_channels)
        self.norm2 = CausalGroupNorm(out_channels)
        self.conv2 = FactorizedCausalConv3d(out_channels, out_channels)
        self.nin_shortcut = (
            CausalConv3d(in_channels, out_channels, (1, 1, 1)) if in_channels != out_channels else nn.Identity()
        )

    def forward(self, x: torch.Tensor, cache: StreamCache | None = None) -> torch.Tensor:
        # Norms are per frame and nin_shortcut is 1x1x1: only the factorized convs see the cache.
        h = self.conv1(F.silu(self.norm1(x)), cache)
        h = self.conv2(F.silu(self.norm2(h)), cache)
        return self.nin_shortcut(x) + h
