"""Causal 3D convolutions of the video networks.

Key layout (NVIDIA checkpoints): every causal conv keeps its ``nn.Conv3d`` one level down,
``<name>.conv3d.weight`` / ``<name>.conv3d.bias``; a factorized 3x3x3 is an ``nn.Sequential`` of a
spatial ``(1, 3, 3)`` conv (``<name>.0.conv3d``) and a temporal ``(3, 1, 1)`` conv (``<name>.1.conv3d``).
"""

from __future__ import annotations

import torch
from torch import nn

from .cache import StreamCache

__all__ = ["CausalConv3d", "FactorizedCausalConv3d"]


class CausalConv3d(nn.Module):
    """``nn.Conv3d`` that never looks at future frames.

    Time: ``time_pad = (kt - 1) + (1 - time_stride)`` copies of the **first** frame are prepended
    (replicate, never zeros) and nothing is appended, so output frame ``t`` depends on input frames
    ``<= t`` only. Space: ``padding`` zeros on each side of H and W (done by the convolution itself,
    which is the same as the reference's separate zero ``F.pad``).

    Input ``[B, C_in, T, H, W]`` -> output ``[B, C_out, T', H', W']`` with
    ``T' = (T + time_pad - kt) // time_stride + 1``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: tuple[int, int, int] = (1, 1, 1),
        *,
        stride: int = 1,
        time_stride: int = 1,
        padding: int = 0,
    ) -> None:
        super().__init__()
        kt, kh, kw = kernel_size
        time_pad = (kt - 1) + (1 - time_stride)
        if time_pad < 0:
            raise ValueError(f"time_stride {time_stride} > temporal kernel {kt} is not a causal convolution")
        self.time_pad = time_pad
        self.conv3d = nn.Conv3d(
            in_channels,
            out_channels,
            kernel_size=(kt, kh, kw),
            stride=(time_stride, stride, stride),
            padding=(0, padding, padding),
        )

    def _pad_time(self, x: torch.Tensor) -> torch.Tensor:
        if self.time_pad > 0:
            first = x[:, :, :1].expand(-1, -1, self.time_pad, -1, -1)  # [B, C, time_pad, H, W]
            x = torch.cat([first, x], dim=2)  # [B, C, time_pad + T, H, W]
        return x

    def forward(self, x: torch.Tensor, cache: StreamCache | None = None) -> torch.Tensor:
        """``x`` ``[B, C_in, T, H, W]`` -> ``[B, C_out, T', H', W']``.

        With a ``cache``, ``x`` is the next chunk of a longer input: the first chunk is padded with copies of its
        frame 0 exactly as the whole clip is; a later one continues from the trailing input frames the previous
        call kept (``kt - 1`` frames for stride 1; for ``time_stride=2`` the stride phase as well). Concatenating
        the outputs of successive chunks along T gives the output of the concatenated input.
        """
        if cache is None or (self.time_pad == 0 and self.conv3d.kernel_size[0] == 1):
            return self.conv3d(self._pad_time(x))  # whole clip, or one frame at a time: nothing to carry
        past = cache.get(self)
        if past is None:
            x = self._pad_time(x)  # [B, C, time_pad + n, H, W]
        elif past.shape[2] > 0:
            x = torch.cat([past, x], dim=2)  # [B, C, len(past) + n, H, W]
        y = self.conv3d(x)  # [B, C_out, n_out, H', W']
        consumed = y.shape[2] * self.conv3d.stride[0]  # the next output window starts at this input frame
        cache.set(self, x[:, :, consumed:].detach().clone())  # a copy, not a view keeping the chunk alive
        return y


class FactorizedCausalConv3d(nn.Sequential):
    """A 3x3x3 causal convolution split into spatial ``(1, 3, 3)`` then temporal ``(3, 1, 1)``.

    No activation in between (as in the reference). Keys ``0.conv3d.*`` and ``1.conv3d.*``.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            CausalConv3d(in_channels, out_channels, (1, 3, 3), padding=1),
            CausalConv3d(out_channels, out_channels, (3, 1, 1), padding=0),
        )

    def forward(self, x: torch.Tensor, cache: StreamCache | None = None) -> torch.Tensor:
        for conv in self:
            x = conv(x, cache)
        return x
