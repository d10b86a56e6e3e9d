"""The folded-frame layout of the fast path and its primitive layers (see :mod:`.layers` for the whole idea).

Every video activation is ``[N = B*T, C, H, W]``, channels-last; the helpers below fold and unfold it. The
primitives work on that layout: :class:`ConvFrames` (a per-frame or 2D conv as ``F.conv2d``), :class:`TemporalConv`
(a causal ``(k, 1, 1)`` conv as a ``(k, 1)`` ``F.conv2d`` over the same memory viewed as ``[B, C, T, H*W]``) and
:class:`FrameNorm` (per-frame ``GroupNorm`` + SiLU).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..modules.cache import StreamCache
from ..modules.conv import CausalConv3d

__all__ = [
    "CausalTimeConv",
    "ConvFrames",
    "FrameNorm",
    "TemporalConv",
    "conv_frames_or_temporal",
    "frames_from_seq",
    "frames_from_video",
    "frozen_vector",
    "frozen_weight",
    "group_norm_of",
    "seq_from_frames",
    "video_from_frames",
]

# ----------------------------------------------------------------------------------------------------- layout
def frames_from_video(x: torch.Tensor) -> torch.Tensor:
    """``[B, C, T, H, W]`` -> ``[B*T, C, H, W]`` channels-last (a copy unless ``x`` is channels-last-3d)."""
    b, c, t, h, w = x.shape
    return x.permute(0, 2, 3, 4, 1).reshape(b * t, h, w, c).permute(0, 3, 1, 2)  # [B*T, C, H, W]


def video_from_frames(x: torch.Tensor, b: int) -> torch.Tensor:
    """``[B*T, C, H, W]`` -> ``[B, C, T, H, W]`` (a view for channels-last ``x``)."""
    n, c, h, w = x.shape
    return x.permute(0, 2, 3, 1).reshape(b, n // b, h, w, c).permute(0, 4, 1, 2, 3)  # [B, C, T, H, W]


def seq_from_frames(x: torch.Tensor, b: int) -> torch.Tensor:
    """``[B*T, C, H, W]`` -> ``[B, T, H*W, C]`` (a view for channels-last ``x``)."""
    n, c, h, w = x.shape
    return x.permute(0, 2, 3, 1).reshape(b, n // b, h * w, c)  # [B, T, H*W, C]


def frames_from_seq(s: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """``[B, T, H*W, C]`` -> ``[B*T, C, H, W]`` (channels-last view for contiguous ``s``)."""
    b, t, _, c = s.shape
    return s.reshape(b * t, h, w, c).permute(0, 3, 1, 2)  # [B*T, C, H, W]


def group_norm_of(module: nn.Module) -> nn.GroupNorm:
    """The ``nn.GroupNorm`` inside a plain norm module (``CausalGroupNorm.norm`` or the GroupNorm itself)."""
    return module if isinstance(module, nn.GroupNorm) else module.norm


def frozen_weight(t: torch.Tensor, memory_format: torch.memory_format) -> nn.Parameter:
    return nn.Parameter(t.detach().clone().contiguous(memory_format=memory_format), requires_grad=False)


def frozen_vector(t: torch.Tensor | None) -> nn.Parameter | None:
    return None if t is None else nn.Parameter(t.detach().clone(), requires_grad=False)


# ------------------------------------------------------------------------------------------------- primitives
class ConvFrames(nn.Module):
    """A 2D convolution applied to every folded frame: a spatial ``(1, k, k)`` :class:`CausalConv3d` (any
    stride / padding) or an ``nn.Conv2d``. ``[N, C_in, H, W]`` -> ``[N, C_out, H', W']``."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, stride: int, padding: int,
                 memory_format: torch.memory_format) -> None:
        super().__init__()
        self.weight = frozen_weight(weight, memory_format)  # [O, I, kh, kw]
        self.bias = frozen_vector(bias)
        self.stride = stride
        self.padding = padding

    @classmethod
    def from_plain(cls, conv: CausalConv3d | nn.Conv2d, memory_format: torch.memory_format) -> "ConvFrames":
        if isinstance(conv, CausalConv3d):
            c3 = conv.conv3d
            if c3.kernel_size[0] != 1 or conv.time_pad != 0:
                raise ValueError(f"not a per-frame conv: kernel {c3.kernel_size}, time_pad {conv.time_pad}")
            return cls(c3.weight[:, :, 0], c3.bias, c3.stride[1], c3.padding[1], memory_format)
        return cls(conv.weight, conv.bias, conv.stride[0], conv.padding[0], memory_format)

    def forward(self, x: torch.Tensor, b: int = 0, cache: StreamCache | None = None) -> torch.Tensor:
        """Per frame: ``b`` and ``cache`` change nothing."""
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding)

    def extra_repr(self) -> str:
        o, i, kh, kw = self.weight.shape
        return f"{i}, {o}, kernel=({kh}, {kw}), stride={self.stride}, padding={self.padding}"


class CausalTimeConv(nn.Module):
    """What every causal ``(k, 1, 1)`` convolution of the fast path shares: the replicate padding of the first frame,
    the stream cache, and the sequence layout. Subclasses give :meth:`conv`, the ``(k, 1)`` 2D convolution itself
    (:class:`TemporalConv` in the model dtype; :class:`.fp8.Fp8TemporalConv` in FP8), and set ``time_pad`` and
    ``time_stride``."""

    time_pad: int
    time_stride: int

    def conv(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, T + pad, H*W]`` (channels-last) -> ``[B, C_out, T', H*W]``."""
        raise NotImplementedError

    def forward_seq(self, s: torch.Tensor, cache: StreamCache | None = None) -> torch.Tensor:
        """``[B, T, H*W, C]`` -> ``[B, T', H*W, C_out]``; with a ``cache`` as :meth:`CausalConv3d.forward`."""
        b, _, hw, c = s.shape
        past = None if cache is None else cache.get(self)
        if past is None:
            if self.time_pad:
                s = torch.cat([s[:, :1].expand(b, self.time_pad, hw, c), s], dim=1)  # [B, pad + T, HW, C]
        elif past.shape[1] > 0:
            s = torch.cat([past, s], dim=1)  # [B, len(past) + n, HW, C]
        y = self.conv(s.permute(0, 3, 1, 2))  # [B, O, T', HW]
        if cache is not None:
            consumed = y.shape[2] * self.time_stride  # the next output window starts at this input frame
            cache.set(self, s[:, consumed:].detach().clone())
        return y.permute(0, 2, 3, 1)  # [B, T', HW, O]

    def forward(self, x: torch.Tensor, b: int, cache: StreamCache | None = None) -> torch.Tensor:
        """``[B*T, C, H, W]`` -> ``[B*T', C_out, H, W]``."""
        h, w = x.shape[2:]
        return frames_from_seq(self.forward_seq(seq_from_frames(x, b), cache), h, w)


class TemporalConv(CausalTimeConv):
    """Causal ``(k, 1, 1)`` convolution with ``time_pad`` replicated first frames and a time stride.

    Runs on the sequence view ``[B, T, H*W, C]`` as an ``F.conv2d`` with a ``(k, 1)`` kernel over
    ``[B, C, T + time_pad, H*W]`` channels-last — the same memory, no transpose.
    """

    def __init__(self, conv: CausalConv3d, memory_format: torch.memory_format) -> None:
        super().__init__()
        c3 = conv.conv3d
        if c3.kernel_size[1:] != (1, 1) or c3.padding[1:] != (0, 0):
            raise ValueError(f"not a temporal conv: kernel {c3.kernel_size}, padding {c3.padding}")
        self.weight = frozen_weight(c3.weight[..., 0], memory_format)  # [O, I, kt, 1]
        self.bias = frozen_vector(c3.bias)
        self.time_pad = conv.time_pad
        self.time_stride = c3.stride[0]

    def conv(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, self.bias, stride=(self.time_stride, 1))  # [B, O, T', HW]

    def extra_repr(self) -> str:
        o, i, kt, _ = self.weight.shape
        return f"{i}, {o}, kernel=({kt}, 1, 1), time_pad={self.time_pad}, time_stride={self.time_stride}"


class FrameNorm(nn.Module):
    """``GroupNorm(groups)`` of every folded frame (+ optional SiLU), statistics in float32.

    ``groups=1`` is the video networks' per-frame norm; ``groups=32`` the image networks' GroupNorm.
    ``[N, C, H, W]`` -> same shape, layout and dtype.
    """

    def __init__(self, norm: nn.GroupNorm) -> None:
        super().__init__()
        self.groups = norm.num_groups
        self.eps = norm.eps
        self.weight = frozen_vector(norm.weight)
        self.bias = frozen_vector(norm.bias)

    def forward(self, x: torch.Tensor, silu: bool) -> torch.Tensor:
        n, c, h, w = x.shape
        g = self.groups
        weight, bias = self.weight.float(), self.bias.float()
        if x.is_contiguous(memory_format=torch.channels_last):
            # Reduce in memory order ([N, H*W, G, C/G] is a view): coalesced loads in the generated kernels.
            xf = x.permute(0, 2, 3, 1).float().reshape(n, h * w, g, c // g)
            var, mean = torch.var_mean(xf, dim=(1, 3), correction=0, keepdim=True)  # [N, 1, G, 1]
            shape = (1, 1, g, c // g)
        else:
            xf = x.float().reshape(n, g, c // g, h * w)
            var, mean = torch.var_mean(xf, dim=(2, 3), correction=0, keepdim=True)  # [N, G, 1, 1]
            shape = (1, g, c // g, 1)
        # y = x * a + b with a = rstd * gamma, b = beta - mean * a: the arithmetic of PyTorch's GroupNorm kernels.
        a = torch.rsqrt(var + self.eps) * weight.view(shape)
        y = (xf * a + (bias.view(shape) - mean * a)).to(x.dtype)  # rounded like the eager GroupNorm output
        if silu:
            y = F.silu(y)
        if x.is_contiguous(memory_format=torch.channels_last):
            return y.reshape(n, h, w, c).permute(0, 3, 1, 2)  # [N, C, H, W] channels-last
        return y.reshape(n, c, h, w)


def conv_frames_or_temporal(conv: CausalConv3d, memory_format: torch.memory_format) -> ConvFrames | TemporalConv:
    """The fast layer of one causal conv: :class:`ConvFrames` for a per-frame ``(1, k, k)`` kernel, :class:`TemporalConv`
    for a ``(k, 1, 1)`` one (a full 3D kernel has no fast layer: none of the released networks has one)."""
    c3 = conv.conv3d
    if c3.kernel_size[0] == 1 and conv.time_pad == 0:
        return ConvFrames.from_plain(conv, memory_format)
    if c3.kernel_size[1:] == (1, 1):
        return TemporalConv(conv, memory_format)
    raise TypeError(f"the fast path has no layer for a full 3D causal conv (kernel {tuple(c3.kernel_size)}); "
                    "factorize it into (1, k, k) and (k, 1, 1) convs (FactorizedCausalConv3d)")
