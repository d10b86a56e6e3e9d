"""A patch discriminator on frames (PatchGAN, as VQGAN / taming-transformers use it) for the hinge GAN loss.

Four strided 4x4 convolutions (widths ``c, 2c, 4c, 8c``) with LeakyReLU(0.2) and GroupNorm (no batch statistics:
the same in every process and at any batch size), then a 1-channel 4x4 convolution: one logit per overlapping
patch of about 70x70 pixels. Video clips are judged frame by frame (``[B*T, 3, H, W]``).
"""

from __future__ import annotations

import torch
from torch import nn

from .losses import frames_of

__all__ = ["PatchDiscriminator"]


def _groups(channels: int) -> int:
    return next(g for g in (32, 16, 8, 4, 2, 1) if channels % g == 0)


class PatchDiscriminator(nn.Module):
    """``forward(x)``: image ``[B, 3, H, W]`` or video ``[B, 3, T, H, W]`` in [-1, 1] -> logits ``[N, 1, h, w]``
    (``N = B`` or ``B*T``)."""

    def __init__(self, channels: int = 64, num_layers: int = 3, in_channels: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, channels, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        width = channels
        for i in range(1, num_layers + 1):
            out = channels * min(2**i, 8)
            stride = 2 if i < num_layers else 1
            layers += [nn.Conv2d(width, out, 4, stride=stride, padding=1, bias=False),
                       nn.GroupNorm(_groups(out), out), nn.LeakyReLU(0.2)]
            width = out
        layers.append(nn.Conv2d(width, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(frames_of(x))
