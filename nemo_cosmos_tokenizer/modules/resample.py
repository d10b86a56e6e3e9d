"""Down- and up-sampling between resolution levels.

2D: ``Downsample2d`` (zero pad right/bottom, 3x3 conv stride 2) and ``Upsample2d`` (nearest x2, 3x3 conv).
3D: NVIDIA's hybrid samplers, which add a learned conv to a parameter-free resampling and finish with a
1x1x1 conv. Their convs exist only for the active directions (the layout of the released checkpoints);
a level that samples in neither direction gets no module at all (the parent uses the identity).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .cache import StreamCache
from .conv import CausalConv3d

__all__ = ["Downsample2d", "Upsample2d", "CausalHybridDownsample3d", "CausalHybridUpsample3d", "avg_pool_hw"]


class Downsample2d(nn.Module):
    """``[B, C, H, W]`` -> ``[B, C, H/2, W/2]``. Key ``conv``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, stride=2, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))  # zero pad right and bottom only


class Upsample2d(nn.Module):
    """``[B, C, H, W]`` -> ``[B, C, 2H, 2W]``. Key ``conv``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, stride=1, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


def avg_pool_hw(x: torch.Tensor) -> torch.Tensor:
    """``F.avg_pool3d(x, (1, 2, 2))`` / ``F.avg_pool2d(x, 2)`` (floor mode, this summation order) over the last two
    dims of ``[..., H, W]``, for every dtype (the fast layers use it on folded frames ``[N, C, H, W]``).

    CPU ``avg_pool3d`` has no bfloat16 kernel; strided slices work everywhere and compile to one fused kernel.
    """
    h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2
    x = x[..., :h, :w]
    return (x[..., 0::2, 0::2] + x[..., 0::2, 1::2] + x[..., 1::2, 0::2] + x[..., 1::2, 1::2]) / 4


def _avg_pool_t(x: torch.Tensor) -> torch.Tensor:
    """``F.avg_pool3d(x, (2, 1, 1))`` (floor mode) for every dtype."""
    t = x.shape[2] // 2 * 2
    return (x[:, :, 0:t:2] + x[:, :, 1:t:2]) / 2


class CausalHybridDownsample3d(nn.Module):
    """``[B, C, T, H, W]`` -> ``[B, C, T', H', W']`` with ``H' = H/2`` if ``spatial``, ``T' = (T+1)/2`` if ``temporal``.

    * spatial: zero pad W right / H bottom by 1, ``conv1 (1,3,3) stride 2 + avg_pool(1,2,2)``;
    * temporal: prepend frame 0 once, ``conv2 (3,1,1) time-stride 2 + avg_pool(2,1,1)``;
    * then ``conv3`` (1x1x1).
    Keys ``conv1`` (spatial only), ``conv2`` (temporal only), ``conv3``.
    """

    def __init__(self, channels: int, *, spatial: bool, temporal: bool) -> None:
        super().__init__()
        if not (spatial or temporal):
            raise ValueError("a hybrid downsample needs at least one active direction; use nn.Identity()")
        self.spatial = spatial
        self.temporal = temporal
        if spatial:
            self.conv1 = CausalConv3d(channels, channels, (1, 3, 3), stride=2, padding=0)
        if temporal:
            self.conv2 = CausalConv3d(channels, channels, (3, 1, 1), time_stride=2, padding=0)
        self.conv3 = CausalConv3d(channels, channels, (1, 1, 1))

    def forward(self, x: torch.Tensor, cache: StreamCache | None = None) -> torch.Tensor:
        """With a ``cache`` (streaming) the first chunk (odd length ``n``) gives ``(n+1)/2`` frames and a later one
        (even ``n``) ``n/2``, so the stride phase of the whole clip is kept: the pool pairs stay aligned and
        ``conv2`` continues from the frame it kept. Spatial work is per frame."""
        if self.spatial:
            x = F.pad(x, (0, 1, 0, 1, 0, 0))  # [B, C, T, H+1, W+1]
            x = self.conv1(x) + avg_pool_hw(x)  # [B, C, T, H/2, W/2]
        if self.temporal:
            first_chunk = cache is None or cache.get(self.conv2) is None
            if cache is not None and x.shape[2] % 2 != (1 if first_chunk else 0):
                raise ValueError(
                    f"temporal downsample: the {'first' if first_chunk else 'a later'} chunk needs an "
                    f"{'odd' if first_chunk else 'even'} number of frames, got {x.shape[2]}"
                )
            if first_chunk:
                x = torch.cat([x[:, :, :1], x], dim=2)  # [B, C, T+1, H, W]: frame 0 once more
            x = self.conv2(x, cache) + _avg_pool_t(x)  # [B, C, (T+1)/2 (or n/2 in a later chunk), H, W]
        return self.conv3(x)


class CausalHybridUpsample3d(nn.Module):
    """``[B, C, t, h, w]`` -> ``[B, C, t', h', w']`` with ``t' = 2t - 1`` if ``temporal`` (and ``t > 1``), ``h' = 2h`` if ``spatial``.

    * temporal: repeat every frame twice and drop the first (skipped for a single frame), then
      ``x = conv1(x) + x`` with a causal (3,1,1) conv;
    * spatial: nearest x2 on H and W, then ``x = conv2(x) + x`` with a (1,3,3) conv;
    * then ``conv3`` (1x1x1, no residual).
    Keys ``conv1`` (temporal only), ``conv2`` (spatial only), ``conv3``.
    """

    def __init__(self, channels: int, *, spatial: bool, temporal: bool) -> None:
        super().__init__()
        if not (spatial or temporal):
            raise ValueError("a hybrid upsample needs at least one active direction; use nn.Identity()")
        self.spatial = spatial
        self.temporal = temporal
        if temporal:
            self.conv1 = CausalConv3d(channels, channels, (3, 1, 1), padding=0)
        if spatial:
            self.conv2 = CausalConv3d(channels, channels, (1, 3, 3), padding=1)
        self.conv3 = CausalConv3d(channels, channels, (1, 1, 1))

    def forward(self, x: torch.Tensor, cache: StreamCache | None = None) -> torch.Tensor:
        """With a ``cache`` (streaming) the first copy of frame 0 is dropped in the first chunk only (``n -> 2n - 1``,
        later chunks ``n -> 2n``) and ``conv1`` continues from the frames it kept."""
        if self.temporal:
            first_chunk = cache is None or cache.get(self.conv1) is None
            # Repeat every frame twice, drop the first copy of frame 0; a single frame stays single (no branch).
            x = x.repeat_interleave(2, dim=2)  # [B, C, 2t, h, w]
            if first_chunk:
                x = x[:, :, 1:]  # [B, C, 2t-1, h, w]
            x = self.conv1(x, cache) + x
        if self.spatial:
            x = F.interpolate(x, scale_factor=(1.0, 2.0, 2.0), mode="nearest")  # [B, C, t, 2h, 2w]
            x = self.conv2(x) + x
        return self.conv3(x)
