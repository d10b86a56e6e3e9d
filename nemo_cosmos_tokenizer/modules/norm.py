"""Normalisation layers: GroupNorm(32) for images, per-frame GroupNorm(1) for causal video."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["group_norm_2d", "CausalGroupNorm"]

#: Both network families use eps=1e-6 (not PyTorch's default 1e-5).
NORM_EPS = 1e-6


def group_norm_2d(channels: int) -> nn.GroupNorm:
    """``GroupNorm(32, channels, eps=1e-6)`` of the image networks (keys ``<name>.weight|bias``)."""
    return nn.GroupNorm(num_groups=32, num_channels=channels, eps=NORM_EPS, affine=True)


class CausalGroupNorm(nn.Module):
    """GroupNorm(1) applied to every frame on its own: normalises over (C, H, W) of each frame.

    Statistics never mix frames, which keeps the video networks causal. Parameters sit one level
    down, ``<name>.norm.weight|bias``, as in NVIDIA's ``CausalNormalize``.
    Input and output ``[B, C, T, H, W]``.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(num_groups=1, num_channels=channels, eps=NORM_EPS, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        y = x.transpose(1, 2).reshape(b * t, c, h, w)  # [B*T, C, H, W]
        y = self.norm(y)
        return y.reshape(b, t, c, h, w).transpose(1, 2)  # [B, C, T, H, W]
