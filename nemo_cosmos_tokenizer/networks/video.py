"""Factorized causal 3D encoder / decoder bodies of the video tokenizers (CV, DV).

Mirrors :mod:`.image`. With ``R = len(channels_mult)``, ``S = num_spatial_downs`` and
``Tn = num_temporal_downs`` (``log2(compression / patch_size)``):

* encoder: 3D Haar patcher -> ``conv_in`` -> levels ``0..R-1`` with a hybrid downsample after every
  level but the last, spatial iff ``i < S``, temporal iff ``i < Tn`` -> mid -> norm, SiLU, ``conv_out``;
* decoder: ``conv_in`` -> mid -> levels ``R-1..0`` with a hybrid upsample after every level but level 0;
  with ``r = R-1-i``: temporal iff ``0 < r < Tn + 1``, spatial iff temporal or (``r < S`` and ``S > Tn``)
  -> norm, SiLU, ``conv_out`` -> 3D Haar unpatcher.

Every operation is causal in time, so latent frame ``k`` depends on input frames ``<= 1 + k*t`` only.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..modules.attention import CausalAttnBlock3d
from ..modules.cache import StreamCache
from ..modules.conv import FactorizedCausalConv3d
from ..modules.norm import CausalGroupNorm
from ..modules.patching import HaarPatcher3d, HaarUnpatcher3d
from ..modules.resample import CausalHybridDownsample3d, CausalHybridUpsample3d
from ..modules.resnet import CausalResnetBlock3d
from .levels import DownLevel, MidBlock, UpLevel

__all__ = ["VideoEncoder", "VideoDecoder", "encoder_sampling", "decoder_sampling"]


def encoder_sampling(num_levels: int, num_spatial_downs: int, num_temporal_downs: int) -> list[tuple[bool, bool]]:
    """``(spatial, temporal)`` down-sampling after each encoder level (the last level never samples)."""
    return [
        (i < num_spatial_downs, i < num_temporal_downs) if i < num_levels - 1 else (False, False)
        for i in range(num_levels)
    ]


def decoder_sampling(num_levels: int, num_spatial_ups: int, num_temporal_ups: int) -> list[tuple[bool, bool]]:
    """``(spatial, temporal)`` up-sampling after each decoder level, indexed by level (level 0 never samples).

    The rule of NVIDIA's ``DecoderFactorized`` with ``legacy_mode=False`` (all released models).
    """
    flags = []
    for i in range(num_levels):
        r = num_levels - 1 - i  # execution position: the deepest level runs first
        temporal = i != 0 and 0 < r < num_temporal_ups + 1
        spatial = i != 0 and (temporal or (r < num_spatial_ups and num_spatial_ups > num_temporal_ups))
        flags.append((spatial, temporal))
    return flags


def _mid(width: int) -> MidBlock:
    return MidBlock(CausalResnetBlock3d(width, width), CausalAttnBlock3d(width), CausalResnetBlock3d(width, width))


class VideoEncoder(nn.Module):
    """``[B, in_channels, T, H, W]`` in [-1, 1], ``T = 1 + k*t`` -> ``[B, z_channels, 1 + k, H/s, W/s]``."""

    def __init__(
        self,
        *,
        in_channels: int,
        channels: int,
        channels_mult: Sequence[int],
        num_res_blocks: int,
        z_channels: int,
        patch_size: int,
        num_spatial_downs: int,
        num_temporal_downs: int,
    ) -> None:
        super().__init__()
        num_levels = len(channels_mult)
        sampling = encoder_sampling(num_levels, num_spatial_downs, num_temporal_downs)
        if sum(s for s, _ in sampling) != num_spatial_downs or sum(t for _, t in sampling) != num_temporal_downs:
            raise ValueError(
                f"{num_levels} levels cannot hold {num_spatial_downs} spatial / {num_temporal_downs} temporal "
                "down-samplings (at most one per level, none after the last)"
            )
        self.patcher3d = HaarPatcher3d(patch_size)
        self.conv_in = FactorizedCausalConv3d(in_channels * patch_size**3, channels)
        widths_in = [channels * m for m in (1, *channels_mult[:-1])]
        levels = []
        for i, (mult, (spatial, temporal)) in enumerate(zip(channels_mult, sampling)):
            width = channels * mult
            blocks = [CausalResnetBlock3d(widths_in[i] if j == 0 else width, width) for j in range(num_res_blocks)]
            down = CausalHybridDownsample3d(width, spatial=spatial, temporal=temporal) if spatial or temporal else None
            levels.append(DownLevel(blocks, down))
        self.down = nn.ModuleList(levels)
        width = channels * channels_mult[-1]
        self.mid = _mid(width)
        self.norm_out = CausalGroupNorm(width)
        self.conv_out = FactorizedCausalConv3d(width, z_channels)

    def forward(self, x: torch.Tensor, cache: StreamCache | None = None) -> torch.Tensor:
        """The whole clip, or with a ``cache`` the next chunk of a stream (see :mod:`..modules.cache`)."""
        h = self.conv_in(self.patcher3d(x, cache), cache)  # [B, ch, 1 + (T-1)/p, H/p, W/p]
        for level in self.down:
            h = level(h, cache)
        h = self.mid(h, cache)
        return self.conv_out(F.silu(self.norm_out(h)), cache)  # [B, z, 1 + (T-1)/t, H/s, W/s]


class VideoDecoder(nn.Module):
    """``[B, z_channels, t', h, w]`` -> ``[B, out_channels, 1 + (t'-1)*t, h*s, w*s]`` (not clamped)."""

    def __init__(
        self,
        *,
        out_channels: int,
        channels: int,
        channels_mult: Sequence[int],
        num_res_blocks: int,
        z_channels: int,
        patch_size: int,
        num_spatial_ups: int,
        num_temporal_ups: int,
    ) -> None:
        super().__init__()
        num_levels = len(channels_mult)
        sampling = decoder_sampling(num_levels, num_spatial_ups, num_temporal_ups)
        if sum(s for s, _ in sampling) != num_spatial_ups or sum(t for _, t in sampling) != num_temporal_ups:
            raise ValueError(
                f"{num_levels} levels cannot hold {num_spatial_ups} spatial / {num_temporal_ups} temporal "
                "up-samplings with the reference placement rule"
            )
        self.unpatcher3d = HaarUnpatcher3d(patch_size)
        width = channels * channels_mult[-1]
        self.conv_in = FactorizedCausalConv3d(z_channels, width)
        self.mid = _mid(width)
        levels: list[UpLevel] = []
        for i in reversed(range(num_levels)):  # built deepest first, as it runs
            blocks = []
            for _ in range(num_res_blocks + 1):
                blocks.append(CausalResnetBlock3d(width, channels * channels_mult[i]))
                width = channels * channels_mult[i]
            spatial, temporal = sampling[i]
            up = CausalHybridUpsample3d(width, spatial=spatial, temporal=temporal) if spatial or temporal else None
            levels.insert(0, UpLevel(blocks, up))
        self.up = nn.ModuleList(levels)  # indexed by level: up.0 is the full-resolution level
        self.norm_out = CausalGroupNorm(width)
        self.conv_out = FactorizedCausalConv3d(width, out_channels * patch_size**3)

    def forward(self, z: torch.Tensor, cache: StreamCache | None = None) -> torch.Tensor:
        """The whole latent, or with a ``cache`` the next latent frames of a stream (see :mod:`..modules.cache`)."""
        h = self.mid(self.conv_in(z, cache), cache)
        for i in reversed(range(len(self.up))):
            h = self.up[i](h, cache)
        h = self.conv_out(F.silu(self.norm_out(h)), cache)  # [B, 3*p^3, 1 + (T-1)/p, H/p, W/p]
        return self.unpatcher3d(h, cache)  # [B, 3, T, H, W]
