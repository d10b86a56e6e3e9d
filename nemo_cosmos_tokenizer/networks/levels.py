"""Containers shared by the 2D and 3D bodies; they fix the checkpoint key names
``down.<i>.block.<j>`` / ``down.<i>.downsample``, ``up.<i>.block.<j>`` / ``up.<i>.upsample`` and
``mid.{block_1,attn_1,block_2}``.

A stream ``cache`` (video only, see :mod:`nemo_cosmos_tokenizer.modules.cache`) is passed on to every child; the
2D children take none, so without a cache they are called as ``child(x)``."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..modules.cache import StreamCache

__all__ = ["DownLevel", "UpLevel", "MidBlock", "call"]


def call(module: nn.Module, x: torch.Tensor, cache: StreamCache | None) -> torch.Tensor:
    """``module(x, cache)``, or ``module(x)`` without a cache (2D modules take none)."""
    return module(x) if cache is None else module(x, cache)


class DownLevel(nn.Module):
    """Residual blocks of one encoder level, then an optional downsample (``None`` = no module, no keys)."""

    def __init__(self, blocks: Sequence[nn.Module], downsample: nn.Module | None) -> None:
        super().__init__()
        self.block = nn.ModuleList(blocks)
        self.downsample = downsample

    def forward(self, x: torch.Tensor, cache: StreamCache | None = None) -> torch.Tensor:
        for block in self.block:
            x = call(block, x, cache)
        if self.downsample is not None:
            x = call(self.downsample, x, cache)
        return x


class UpLevel(nn.Module):
    """Residual blocks of one decoder level, then an optional upsample (``None`` = no module, no keys)."""

    def __init__(self, blocks: Sequence[nn.Module], upsample: nn.Module | None) -> None:
        super().__init__()
        self.block = nn.ModuleList(blocks)
        self.upsample = upsample

    def forward(self, x: torch.Tensor, cache: StreamCache | None = None) -> torch.Tensor:
        for block in self.block:
            x = call(block, x, cache)
        if self.upsample is not None:
            x = call(self.upsample, x, cache)
        return x


class MidBlock(nn.Module):
    """``block_1 -> attn_1 -> block_2`` at the lowest resolution (the only attention in the networks)."""

    def __init__(self, block_1: nn.Module, attn_1: nn.Module, block_2: nn.Module) -> None:
        super().__init__()
        self.block_1 = block_1
        self.attn_1 = attn_1
        self.block_2 = block_2

    def forward(self, x: torch.Tensor, cache: StreamCache | None = None) -> torch.Tensor:
        return call(self.block_2, call(self.attn_1, call(self.block_1, x, cache), cache), cache)
