"""Haar wavelet patchers (the first encoder / last decoder stage of every released model).

One Haar level splits an axis into low = ``(x[2i] + x[2i+1]) / sqrt2`` and high =
``(x[2i] - x[2i+1]) / sqrt2``. Per level:

* 2D: filter along W, then H; channel blocks ``[LL, LH, HL, HH]`` (first letter = W filter), each
  holding every input channel in order; divided by 2.
* 3D: filter along T, then H, then W; blocks ``[LLL, LLH, ..., HHH]`` (letters = T, H, W);
  divided by ``2*sqrt2``. Before the first level frame 0 is repeated so that it appears
  ``patch_size`` times (``T -> T - 1 + p``); the inverse drops those ``p - 1`` frames again.

``log2(patch_size)`` levels, each applied to *all* channels of the previous one, so for patch 4 in 2D
channel ``b2*12 + b1*3 + c`` holds band ``b2`` of band ``b1`` of colour ``c``.
An odd axis is reflect-padded by one sample at its end first (as the reference does); for the
sizes the models accept this never happens.

The buffers ``wavelets`` (float32 ``[1/sqrt2, 1/sqrt2]``), ``_arange`` (int64 ``[0, 1]``) and, for the
3D patcher, ``patch_size_buffer`` (int32 ``[p]``) exist only because NVIDIA's TorchScript files hold
them; they are registered non-persistent (so ``state_dict()`` holds learnable tensors only) and the
loader checks their values. The arithmetic uses the exact constants.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .cache import StreamCache

__all__ = ["HaarPatcher2d", "HaarUnpatcher2d", "HaarPatcher3d", "HaarUnpatcher3d"]

_A = 1.0 / math.sqrt(2.0)
_SCALE_3D = 2.0 * math.sqrt(2.0)


def _num_levels(patch_size: int) -> int:
    if patch_size < 2 or patch_size & (patch_size - 1):
        raise ValueError(f"Haar patch_size must be a power of two >= 2, got {patch_size}")
    return int(math.log2(patch_size))


def _analysis(x: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Low and high Haar band of ``x`` along ``dim`` (length halves, rounded up)."""
    if x.shape[dim] % 2:
        # Reflect padding by one sample at the end: the appended sample is x[L-2].
        x = torch.cat([x, x.narrow(dim, x.shape[dim] - 2, 1)], dim=dim)  # [..., L + 1, ...]
    pairs = x.unflatten(dim, (-1, 2))  # [..., L/2, 2, ...]
    even, odd = pairs.select(dim + 1, 0), pairs.select(dim + 1, 1)
    return (even + odd) * _A, (even - odd) * _A


def _synthesis(low: torch.Tensor, high: torch.Tensor, dim: int) -> torch.Tensor:
    """Inverse of :func:`_analysis` (length doubles)."""
    even = (low + high) * _A
    odd = (low - high) * _A
    return torch.stack([even, odd], dim=dim + 1).flatten(dim, dim + 1)  # [..., L, 2, ...] -> [..., 2L, ...]


def _init_haar(module: nn.Module, patch_size: int) -> None:
    """What every (un)patcher holds: ``patch_size``, ``num_levels`` and the TorchScript-compatibility buffers."""
    module.patch_size = patch_size
    module.num_levels = _num_levels(patch_size)
    module.register_buffer("wavelets", torch.tensor([_A, _A], dtype=torch.float32), persistent=False)
    module.register_buffer("_arange", torch.arange(2, dtype=torch.int64), persistent=False)


class HaarPatcher2d(nn.Module):
    """``[B, C, H, W]`` -> ``[B, C*p*p, H/p, W/p]``."""

    def __init__(self, patch_size: int) -> None:
        super().__init__()
        _init_haar(self, patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(self.num_levels):
            low, high = _analysis(x, dim=3)  # W filter
            ll, lh = _analysis(low, dim=2)  # H filter
            hl, hh = _analysis(high, dim=2)
            x = torch.cat([ll, lh, hl, hh], dim=1) / 2  # [B, 4C, H/2, W/2]
        return x


class HaarUnpatcher2d(nn.Module):
    """``[B, C*p*p, h, w]`` -> ``[B, C, h*p, w*p]`` (exact inverse of :class:`HaarPatcher2d`)."""

    def __init__(self, patch_size: int) -> None:
        super().__init__()
        _init_haar(self, patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(self.num_levels):
            ll, lh, hl, hh = torch.chunk(x, 4, dim=1)  # 4 x [B, C/4, h, w]
            low = _synthesis(ll, lh, dim=2)  # H first
            high = _synthesis(hl, hh, dim=2)
            x = _synthesis(low, high, dim=3) * 2  # [B, C/4, 2h, 2w]
        return x


class HaarPatcher3d(nn.Module):
    """``[B, C, T, H, W]`` -> ``[B, C*p^3, (T-1)/p + 1, H/p, W/p]``; output frame 0 depends on input frame 0 only."""

    def __init__(self, patch_size: int) -> None:
        super().__init__()
        _init_haar(self, patch_size)
        self.register_buffer("patch_size_buffer", torch.tensor([patch_size], dtype=torch.int32), persistent=False)

    def forward(self, x: torch.Tensor, cache: StreamCache | None = None) -> torch.Tensor:
        """With a ``cache`` (streaming), frame 0 is repeated in the first chunk only and a later chunk must hold a
        multiple of ``p`` frames (each output frame is one aligned group of ``p`` input frames; the cache holds
        only a first-chunk marker): ``[B, C, n, H, W]`` -> ``[B, C*p^3, n/p (+1 in the first chunk), H/p, W/p]``."""
        if cache is not None:
            if cache.get(self) is not None:  # a later chunk
                if x.shape[2] % self.patch_size:
                    raise ValueError(f"after the first chunk the Haar patcher takes multiples of {self.patch_size} "
                                     f"frames, got {x.shape[2]}")
                return self._transform(x)
            cache.set(self, True)
        first = x[:, :, :1].expand(-1, -1, self.patch_size - 1, -1, -1)  # [B, C, p - 1, H, W]
        x = torch.cat([first, x], dim=2)  # [B, C, T - 1 + p, H, W]
        return self._transform(x)

    def _transform(self, x: torch.Tensor) -> torch.Tensor:
        """The ``log2(p)`` Haar levels on ``[B, C, T, H, W]`` (T a multiple of p) -> ``[B, C*p^3, T/p, H/p, W/p]``."""
        for _ in range(self.num_levels):
            low_t, high_t = _analysis(x, dim=2)
            bands = []
            for band_t in (low_t, high_t):
                low_h, high_h = _analysis(band_t, dim=3)
                for band_h in (low_h, high_h):
                    bands.extend(_analysis(band_h, dim=4))
            x = torch.cat(bands, dim=1) / _SCALE_3D  # [B, 8C, T/2, H/2, W/2]
        return x


class HaarUnpatcher3d(nn.Module):
    """``[B, C*p^3, t, h, w]`` -> ``[B, C, (t-1)*p + 1, h*p, w*p]`` (exact inverse of :class:`HaarPatcher3d`)."""

    def __init__(self, patch_size: int) -> None:
        super().__init__()
        _init_haar(self, patch_size)

    def forward(self, x: torch.Tensor, cache: StreamCache | None = None) -> torch.Tensor:
        """With a ``cache`` (streaming), the ``p - 1`` repeated frames are dropped from the first chunk only:
        ``[B, C*p^3, n, h, w]`` -> ``[B, C, n*p (- p + 1 in the first chunk), h*p, w*p]``."""
        if cache is not None:
            if cache.get(self) is not None:  # a later chunk
                return self._transform(x)
            cache.set(self, True)
        return self._transform(x)[:, :, self.patch_size - 1 :]  # [B, C, T, H, W]: drop the repeated first frames

    def _transform(self, x: torch.Tensor) -> torch.Tensor:
        """The ``log2(p)`` inverse Haar levels: ``[B, C*p^3, t, h, w]`` -> ``[B, C, t*p, h*p, w*p]``."""
        for _ in range(self.num_levels):
            lll, llh, lhl, lhh, hll, hlh, hhl, hhh = torch.chunk(x, 8, dim=1)  # 8 x [B, C/8, t, h, w]
            ll = _synthesis(lll, llh, dim=4)  # W first
            lh = _synthesis(lhl, lhh, dim=4)
            hl = _synthesis(hll, hlh, dim=4)
            hh = _synthesis(hhl, hhh, dim=4)
            low = _synthesis(ll, lh, dim=3)  # then H
            high = _synthesis(hl, hh, dim=3)
            x = _synthesis(low, high, dim=2) * _SCALE_3D  # [B, C/8, 2t, 2h, 2w]
        return x
