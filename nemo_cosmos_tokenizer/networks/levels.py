"""Containers shared by the 2D and 3D bodies; they fix the checkpoint key names
``down.<i>.block.<j>`` / ``down.<i>.downsample``, ``up.<i>.block.<j>`` / ``up.<i>.upsample`` and
``mid.{block_1,attn_1,block_2}``."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

__all__ = ["DownLevel", "UpLevel", "MidBlock"]


class DownLevel(nn.Module):
    """Residual blocks of one encoder level, then an optional downsample (``None`` = no module, no keys)."""

    def __init__(self, blocks: Sequence[nn.Module], downsample: nn.Module | None) -> None:
        super().__init__()
        self.block = nn.ModuleList(blocks)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.block:
            x = block(x)
        if self.downsample is not None:
            x = self.downsample(x)
        return x


class UpLevel(nn.Module):
    """Residual blocks of one decoder level, then an optional upsample (``None`` = no module, no keys)."""

    def __init__(self, blocks: Sequence[nn.Module], upsample: nn.Module | None) -> None:
        super().__init__()
        self.block = nn.ModuleList(blocks)
        self.upsample = upsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.block:
            x = block(x)
        if self.upsample is not None:
            x = self.upsample(x)
        return x


class MidBlock(nn.Module):
    """``block_1 -> attn_1 -> block_2`` at the lowest resolution (the only attention in the networks)."""

    def __init__(self, block_1: nn.Module, attn_1: nn.Module, block_2: nn.Module) -> None:
        super().__init__()
        self.block_1 = block_1
        self.attn_1 = attn_1
        self.block_2 = block_2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block_2(self.attn_1(self.block_1(x)))
