"""2D encoder / decoder bodies of the image tokenizers (CI, DI).

Mirrors :mod:`.video` level by level. With ``R = len(channels_mult)`` and ``D = num_downsamples``
(``log2(spatial_compression / patch_size)``):

* encoder: Haar patcher -> ``conv_in`` -> levels ``0..R-1`` (``num_res_blocks`` blocks each, a
  downsample after level ``i`` iff ``i < D``) -> mid -> GroupNorm, SiLU, ``conv_out`` (-> ``z_channels``);
* decoder: ``conv_in`` -> mid -> levels ``R-1..0`` (``num_res_blocks + 1`` blocks each, an upsample after
  level ``i`` iff ``i >= R - D``) -> GroupNorm, SiLU, ``conv_out`` -> Haar unpatcher.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..modules.attention import AttnBlock2d
from ..modules.norm import group_norm_2d
from ..modules.patching import HaarPatcher2d, HaarUnpatcher2d
from ..modules.resample import Downsample2d, Upsample2d
from ..modules.resnet import ResnetBlock2d
from .levels import DownLevel, MidBlock, UpLevel

__all__ = ["ImageEncoder", "ImageDecoder"]


def _mid(width: int) -> MidBlock:
    return MidBlock(ResnetBlock2d(width, width), AttnBlock2d(width), ResnetBlock2d(width, width))


class ImageEncoder(nn.Module):
    """``[B, in_channels, H, W]`` in [-1, 1] -> ``[B, z_channels, H/s, W/s]``, ``s = patch_size * 2**num_downsamples``."""

    def __init__(
        self,
        *,
        in_channels: int,
        channels: int,
        channels_mult: Sequence[int],
        num_res_blocks: int,
        z_channels: int,
        patch_size: int,
        num_downsamples: int,
    ) -> None:
        super().__init__()
        num_levels = len(channels_mult)
        if not 0 <= num_downsamples <= num_levels:
            raise ValueError(f"num_downsamples must be in [0, {num_levels}], got {num_downsamples}")
        self.patcher = HaarPatcher2d(patch_size)
        self.conv_in = nn.Conv2d(in_channels * patch_size**2, channels, kernel_size=3, padding=1)
        widths_in = [channels * m for m in (1, *channels_mult[:-1])]
        levels = []
        for i, mult in enumerate(channels_mult):
            width = channels * mult
            blocks = [ResnetBlock2d(widths_in[i] if j == 0 else width, width) for j in range(num_res_blocks)]
            levels.append(DownLevel(blocks, Downsample2d(width) if i < num_downsamples else None))
        self.down = nn.ModuleList(levels)
        width = channels * channels_mult[-1]
        self.mid = _mid(width)
        self.norm_out = group_norm_2d(width)
        self.conv_out = nn.Conv2d(width, z_channels, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(self.patcher(x))  # [B, ch, H/p, W/p]
        for level in self.down:
            h = level(h)
        h = self.mid(h)
        return self.conv_out(F.silu(self.norm_out(h)))  # [B, z, H/s, W/s]


class ImageDecoder(nn.Module):
    """``[B, z_channels, h, w]`` -> ``[B, out_channels, h*s, w*s]`` (not clamped)."""

    def __init__(
        self,
        *,
        out_channels: int,
        channels: int,
        channels_mult: Sequence[int],
        num_res_blocks: int,
        z_channels: int,
        patch_size: int,
        num_upsamples: int,
    ) -> None:
        super().__init__()
        num_levels = len(channels_mult)
        if not 0 <= num_upsamples <= num_levels:
            raise ValueError(f"num_upsamples must be in [0, {num_levels}], got {num_upsamples}")
        self.unpatcher = HaarUnpatcher2d(patch_size)
        width = channels * channels_mult[-1]
        self.conv_in = nn.Conv2d(z_channels, width, kernel_size=3, padding=1)
        self.mid = _mid(width)
        levels: list[UpLevel] = []
        for i in reversed(range(num_levels)):  # built deepest first, as it runs
            blocks = []
            for _ in range(num_res_blocks + 1):
                blocks.append(ResnetBlock2d(width, channels * channels_mult[i]))
                width = channels * channels_mult[i]
            upsample = Upsample2d(width) if i >= num_levels - num_upsamples else None
            levels.insert(0, UpLevel(blocks, upsample))
        self.up = nn.ModuleList(levels)  # indexed by level: up.0 is the full-resolution level
        self.norm_out = group_norm_2d(width)
        self.conv_out = nn.Conv2d(width, out_channels * patch_size**2, kernel_size=3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.conv_in(z))
        for i in reversed(range(len(self.up))):
            h = self.up[i](h)
        h = self.conv_out(F.silu(self.norm_out(h)))  # [B, 3*p*p, H/p, W/p]
        return self.unpatcher(h)  # [B, 3, H, W]
