"""Finite scalar quantization (FSQ) of the discrete Cosmos tokenizers.

Tensor contract (channel-first, like the networks):

* ``z`` / ``codes``: ``[B, D, ...]`` with ``D = len(levels)`` (6 for released models), ``...`` = ``(h, w)``
  or ``(t, h, w)``; codes are float32 grid values in ``[-1, 1]``.
* ``indices``: ``[B, ...]``, int32 in ``0 .. prod(levels) - 1`` (0..63999), channel 0 the least
  significant digit (``basis = [1, 8, 64, 512, 2560, 12800]``).

Everything here runs in float32 with autocast disabled, whatever dtype the network runs in: a bf16
rounding of the bounded value would move values across rounding boundaries and change indices.

Per channel with ``L`` levels: ``half_l = (L - 1) * (1 + 1e-3) / 2``, ``offset = 0.5 if L even else 0``,
``shift = atanh(offset / half_l)``, ``bounded = tanh(z + shift) * half_l - offset``,
``code = round(bounded) / (L // 2)`` (round half to even; straight-through gradient).
"""

from __future__ import annotations

import contextlib
from typing import Sequence

import torch
from torch import nn

__all__ = ["FSQuantizer"]

_BOUND_EPS = 1e-3


def _channel_view(t: torch.Tensor, ndim: int) -> torch.Tensor:
    """A per-channel vector shaped to broadcast against a channel-first tensor of ``ndim`` dims."""
    return t.view(1, -1, *([1] * (ndim - 2))) if ndim >= 2 else t  # [1, D, 1, ...]


class FSQuantizer(nn.Module):
    """FSQ without projections or learnable parameters.

    Buffers (non-persistent: they are constants, present only because NVIDIA's TorchScript files hold
    them; the loader checks their values): ``_levels`` int32, ``_basis`` int32 and ``implicit_codebook``
    (``[prod(levels), D]`` codes of every index, bfloat16 as in the reference; exact in any float dtype).
    """

    def __init__(self, levels: Sequence[int]) -> None:
        super().__init__()
        levels = tuple(int(v) for v in levels)
        if not levels or any(v < 2 for v in levels):
            raise ValueError(f"FSQ levels must all be >= 2, got {levels}")
        basis = [1]
        for level in levels[:-1]:
            basis.append(basis[-1] * level)
        self.levels = levels
        self.codebook_size = basis[-1] * levels[-1]
        self.register_buffer("_levels", torch.tensor(levels, dtype=torch.int32), persistent=False)
        self.register_buffer("_basis", torch.tensor(basis, dtype=torch.int32), persistent=False)
        codebook = self.indices_to_codes(torch.arange(self.codebook_size, device=self._levels.device))
        self.register_buffer("implicit_codebook", codebook.to(torch.bfloat16), persistent=False)

    @property
    def embedding_dim(self) -> int:
        return len(self.levels)

    @staticmethod
    def _autocast_off(t: torch.Tensor) -> contextlib.AbstractContextManager:
        if not torch.amp.is_autocast_available(t.device.type):  # e.g. meta: no autocast to turn off
            return contextlib.nullcontext()
        return torch.autocast(device_type=t.device.type, enabled=False)

    def bound(self, z: torch.Tensor) -> torch.Tensor:
        """``[B, D, ...]`` any float dtype -> float32 bounded values (before rounding)."""
        with self._autocast_off(z):
            z = z.float()
            levels = _channel_view(self._levels, z.ndim)
            half_l = (levels - 1) * (1 + _BOUND_EPS) / 2
            offset = torch.where(levels % 2 == 0, 0.5, 0.0)
            shift = (offset / half_l).atanh()
            return (z + shift).tanh() * half_l - offset

    def quantize(self, z: torch.Tensor) -> torch.Tensor:
        """``[B, D, ...]`` -> float32 codes ``[B, D, ...]`` (straight-through gradient of the rounding)."""
        with self._autocast_off(z):
            bounded = self.bound(z)
            # bounded + (round - bounded) equals round(bounded) exactly in float32 for |values| <= 2**22.
            rounded = bounded + (bounded.round() - bounded).detach()
            half_width = _channel_view(self._levels // 2, z.ndim)
            return rounded / half_width

    def codes_to_indices(self, codes: torch.Tensor) -> torch.Tensor:
        """Float codes ``[B, D, ...]`` -> int32 indices ``[B, ...]``."""
        with self._autocast_off(codes):
            half_width = _channel_view(self._levels // 2, codes.ndim)
            digits = codes.float() * half_width + half_width  # [B, D, ...], integer-valued
            basis = _channel_view(self._basis, codes.ndim)
            # Integer-valued float32 terms below 2**24: the sum is exact in any order.
            return (digits * basis).sum(dim=1).to(torch.int32)

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        """Integer indices ``[B, ...]`` -> float32 codes ``[B, D, ...]`` (a 1D ``[N]`` input gives ``[N, D]``)."""
        if indices.is_floating_point() or indices.is_complex():
            raise TypeError(f"FSQ indices must be an integer tensor, got {indices.dtype}")
        with self._autocast_off(indices):
            idx = indices.unsqueeze(1)  # [B, 1, ...]
            basis = _channel_view(self._basis, idx.ndim)
            levels = _channel_view(self._levels, idx.ndim)
            digits = torch.div(idx, basis, rounding_mode="floor") % levels  # [B, D, ...]
            half_width = levels // 2
            return (digits - half_width).float() / half_width

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``[B, D, ...]`` pre-quantization tensor -> ``(indices int32 [B, ...], codes float32 [B, D, ...])``."""
        if z.shape[1] != len(self.levels):
            raise ValueError(f"FSQ input needs {len(self.levels)} channels in dim 1, got shape {tuple(z.shape)}")
        codes = self.quantize(z)
        return self.codes_to_indices(codes), codes
