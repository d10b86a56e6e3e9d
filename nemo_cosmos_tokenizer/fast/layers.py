"""Fast layers on *folded frames*: every video activation is ``[N = B*T, C, H, W]``, channels-last.

The plain video networks run ``nn.Conv3d`` on ``[B, C, T, H, W]``. Here the frames of all windows are folded into
the batch so that

* a spatial ``(1, k, k)`` causal conv is an ``F.conv2d`` over the folded frames (cuDNN's NHWC kernels);
* a temporal ``(k, 1, 1)`` causal conv is an ``F.conv2d`` with a ``(k, 1)`` kernel over the *same memory* viewed
  as ``[B, C, T, H*W]`` (channels-last ``[B, T, H*W, C]``): an implicit GEMM with ``K = k*C``; the causal
  replicate-padding is one ``cat`` of the first frame in front (fused into neighbouring kernels by
  ``torch.compile``);
* per-frame ``GroupNorm(1)`` (+ SiLU) is a per-row reduction over the contiguous ``[H, W, C]`` block of a frame;
* the spatial attention is one fused ``qkv`` GEMM + ``F.scaled_dot_product_attention`` per frame, the causal
  temporal attention the same over ``[B, H*W, T, C]`` views with ``is_causal=True``.

Nothing here copies data to change layout except where noted. Every layer is built from the corresponding plain
module by the one conversion table :data:`nemo_cosmos_tokenizer.fast.convert.FAST_MODULES` and computes the same
function; ``tests/fast`` checks that on CPU in float32. The image networks (CI/DI) reuse the same layers with
``T = 1`` (``GroupNorm(32)``, no temporal convs).

The fast module protocol: ``forward(x, b, cache=None)`` with ``x`` the folded frames ``[B*T, C, H, W]``, ``b`` the
batch size ``B`` and ``cache`` an optional :class:`~nemo_cosmos_tokenizer.modules.cache.StreamCache`: with it ``x``
holds the next chunk of a stream and the stateful layers (temporal convs, resamplers, temporal attention) keep what
they need in it, exactly as the plain modules do. Norms (``forward(x, silu)``) are called by their owner.

Layers take their already converted parts (or, for the leaves, the plain module whose weights they copy); the table
in :mod:`.convert` does the wiring. The attention kernels are in :mod:`.attention` (re-exported here).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..modules.attention import AttnBlock2d, CausalSpatialAttnBlock3d, CausalTemporalAttnBlock3d
from ..modules.cache import StreamCache
from ..modules.conv import CausalConv3d
from ..modules.resample import avg_pool_hw
from .attention import ATTENTION, Attention, materialized, sdpa  # noqa: F401  (re-exported)

__all__ = [
    "ATTENTION",
    "Attention",
    "ConvFrames",
    "FastChain",
    "FastFactorizedConv",
    "FastDownsample",
    "FastResBlock",
    "FastUpsample",
    "FrameNorm",
    "SpatialAttention",
    "TemporalAttention",
    "TemporalConv",
    "conv_frames_or_temporal",
    "fused_qkv",
    "group_norm_of",
    "linear_of",
    "frames_from_seq",
    "frames_from_video",
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


def _weight(t: torch.Tensor, memory_format: torch.memory_format) -> nn.Parameter:
    return nn.Parameter(t.detach().clone().contiguous(memory_format=memory_format), requires_grad=False)


def _vector(t: torch.Tensor | None) -> nn.Parameter | None:
    return None if t is None else nn.Parameter(t.detach().clone(), requires_grad=False)


# ------------------------------------------------------------------------------------------------- primitives
class ConvFrames(nn.Module):
    """A 2D convolution applied to every folded frame: a spatial ``(1, k, k)`` :class:`CausalConv3d` (any
    stride / padding) or an ``nn.Conv2d``. ``[N, C_in, H, W]`` -> ``[N, C_out, H', W']``."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, stride: int, padding: int,
                 memory_format: torch.memory_format) -> None:
        super().__init__()
        self.weight = _weight(weight, memory_format)  # [O, I, kh, kw]
        self.bias = _vector(bias)
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


class TemporalConv(nn.Module):
    """Causal ``(k, 1, 1)`` convolution with ``time_pad`` replicated first frames and a time stride.

    Runs on the sequence view ``[B, T, H*W, C]`` as an ``F.conv2d`` with a ``(k, 1)`` kernel over
    ``[B, C, T + time_pad, H*W]`` channels-last — the same memory, no transpose.
    """

    def __init__(self, conv: CausalConv3d, memory_format: torch.memory_format) -> None:
        super().__init__()
        c3 = conv.conv3d
        if c3.kernel_size[1:] != (1, 1) or c3.padding[1:] != (0, 0):
            raise ValueError(f"not a temporal conv: kernel {c3.kernel_size}, padding {c3.padding}")
        self.weight = _weight(c3.weight[..., 0], memory_format)  # [O, I, kt, 1]
        self.bias = _vector(c3.bias)
        self.time_pad = conv.time_pad
        self.time_stride = c3.stride[0]

    def forward_seq(self, s: torch.Tensor, cache: StreamCache | None = None) -> torch.Tensor:
        """``[B, T, H*W, C]`` -> ``[B, T', H*W, C_out]``; with a ``cache`` as :meth:`CausalConv3d.forward`."""
        b, _, hw, c = s.shape
        past = None if cache is None else cache.get(self)
        if past is None:
            if self.time_pad:
                s = torch.cat([s[:, :1].expand(b, self.time_pad, hw, c), s], dim=1)  # [B, pad + T, HW, C]
        elif past.shape[1] > 0:
            s = torch.cat([past, s], dim=1)  # [B, len(past) + n, HW, C]
        y = F.conv2d(s.permute(0, 3, 1, 2), self.weight, self.bias, stride=(self.time_stride, 1))  # [B, O, T', HW]
        if cache is not None:
            consumed = y.shape[2] * self.time_stride  # the next output window starts at this input frame
            cache.set(self, s[:, consumed:].detach().clone())
        return y.permute(0, 2, 3, 1)  # [B, T', HW, O]

    def forward(self, x: torch.Tensor, b: int, cache: StreamCache | None = None) -> torch.Tensor:
        """``[B*T, C, H, W]`` -> ``[B*T', C_out, H, W]``."""
        h, w = x.shape[2:]
        return frames_from_seq(self.forward_seq(seq_from_frames(x, b), cache), h, w)

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
        self.weight = _vector(norm.weight)
        self.bias = _vector(norm.bias)

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


# ----------------------------------------------------------------------------------------------------- blocks
class FastChain(nn.Module):
    """Fast layers run one after the other (a level, a mid block, the video attention pair)."""

    def __init__(self, layers: list[nn.Module]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor, b: int, cache: StreamCache | None = None) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, b, cache)
        return x


class FastFactorizedConv(nn.Module):
    """:class:`FactorizedCausalConv3d`: a per-frame 3x3 :class:`ConvFrames` then a :class:`TemporalConv`."""

    def __init__(self, spatial: ConvFrames, temporal: TemporalConv) -> None:
        super().__init__()
        self.spatial = spatial
        self.temporal = temporal

    def forward(self, x: torch.Tensor, b: int, cache: StreamCache | None = None) -> torch.Tensor:
        return self.temporal(self.spatial(x), b, cache)


class FastResBlock(nn.Module):
    """``shortcut(x) + conv2(silu(norm2(conv1(silu(norm1(x))))))`` on folded frames.

    Each conv is a :class:`ConvFrames` (3x3, images) or a :class:`FastFactorizedConv` (video); the shortcut a
    1x1 :class:`ConvFrames` or ``None`` (identity).
    """

    def __init__(self, norm1: FrameNorm, conv1: nn.Module, norm2: FrameNorm, conv2: nn.Module,
                 nin_shortcut: ConvFrames | None) -> None:
        super().__init__()
        self.norm1 = norm1
        self.conv1 = conv1
        self.norm2 = norm2
        self.conv2 = conv2
        self.nin_shortcut = nin_shortcut

    def forward(self, x: torch.Tensor, b: int, cache: StreamCache | None = None) -> torch.Tensor:
        h = self.conv1(self.norm1(x, silu=True), b, cache)
        h = self.conv2(self.norm2(h, silu=True), b, cache)
        skip = x if self.nin_shortcut is None else self.nin_shortcut(x)
        return skip + h


class FastDownsample(nn.Module):
    """Video (``conv3`` given): NVIDIA's hybrid downsample (spatial conv + 2x2 mean, temporal conv + 2-frame mean,
    1x1 conv). Image (``conv3=None``): zero pad right/bottom, 3x3 conv ``conv1`` with stride 2."""

    def __init__(self, conv1: ConvFrames | None, conv2: TemporalConv | None, conv3: ConvFrames | None) -> None:
        super().__init__()
        self.video = conv3 is not None
        self.conv1 = conv1
        self.conv2 = conv2
        self.conv3 = conv3

    def forward(self, x: torch.Tensor, b: int, cache: StreamCache | None = None) -> torch.Tensor:
        if self.conv1 is not None:
            xp = F.pad(x, (0, 1, 0, 1))  # [N, C, H+1, W+1]: zero pad right and bottom only
            x = self.conv1(xp)
            if not self.video:
                return x
            x = x + avg_pool_hw(xp)  # [N, C, H/2, W/2]
        if self.conv2 is not None:
            h, w = x.shape[2:]
            s = seq_from_frames(x, b)  # [B, T, HW, C]
            first_chunk = cache is None or cache.get(self.conv2) is None
            if cache is not None and s.shape[1] % 2 != (1 if first_chunk else 0):
                raise ValueError(
                    f"temporal downsample: the {'first' if first_chunk else 'a later'} chunk needs an "
                    f"{'odd' if first_chunk else 'even'} number of frames, got {s.shape[1]}"
                )
            if first_chunk:
                s = torch.cat([s[:, :1], s], dim=1)  # [B, T+1, HW, C]: frame 0 once more
            t = s.shape[1] // 2 * 2
            s = self.conv2.forward_seq(s, cache) + (s[:, 0:t:2] + s[:, 1:t:2]) / 2  # [B, (T+1)/2, HW, C]
            x = frames_from_seq(s, h, w)
        return self.conv3(x)


class FastUpsample(nn.Module):
    """Video (``conv3`` given): NVIDIA's hybrid upsample (frame doubling + causal temporal conv, nearest x2 + conv,
    1x1 conv, each resampling with a residual). Image (``conv3=None``): nearest x2 then the 3x3 conv ``conv2``."""

    def __init__(self, conv1: TemporalConv | None, conv2: ConvFrames | None, conv3: ConvFrames | None) -> None:
        super().__init__()
        self.video = conv3 is not None
        self.conv1 = conv1
        self.conv2 = conv2
        self.conv3 = conv3

    def forward(self, x: torch.Tensor, b: int, cache: StreamCache | None = None) -> torch.Tensor:
        if self.conv1 is not None:
            h, w = x.shape[2:]
            first_chunk = cache is None or cache.get(self.conv1) is None
            s = seq_from_frames(x, b).repeat_interleave(2, dim=1)  # [B, 2t, HW, C]
            if first_chunk:
                s = s[:, 1:]  # [B, 2t-1, HW, C]: the first copy of frame 0 is dropped
            x = frames_from_seq(self.conv1.forward_seq(s, cache) + s, h, w)
        if self.conv2 is not None:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")  # [N, C, 2h, 2w]
            if not self.video:
                return self.conv2(x)
            x = self.conv2(x) + x
        return self.conv3(x)


def fused_qkv(q: nn.Module, k: nn.Module, v: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """Fused ``[3C, C]`` weight and ``[3C]`` bias of three 1x1 convs (2D or causal 3D)."""
    convs = [m.conv3d if isinstance(m, CausalConv3d) else m for m in (q, k, v)]
    weight = torch.cat([c.weight.reshape(c.weight.shape[0], -1) for c in convs])
    bias = torch.cat([c.bias for c in convs])
    return weight, bias


def linear_of(m: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """``(weight [O, I], bias [O])`` of a 1x1 conv (2D or causal 3D)."""
    c = m.conv3d if isinstance(m, CausalConv3d) else m
    return c.weight.reshape(c.weight.shape[0], -1), c.bias


def _project(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``x @ weight.T + bias`` with the bias added as a separate (rounded) step, like the eager 1x1 convs it replaces
    (``aten.convolution`` on CUDA adds the bias after the cuDNN call)."""
    return F.linear(x, weight) + bias


class _FusedAttention(nn.Module):
    """Weights of an attention layer: the block's norm, q/k/v fused into one projection, proj_out; the kernel."""

    def __init__(self, block: AttnBlock2d | CausalSpatialAttnBlock3d | CausalTemporalAttnBlock3d, norm: FrameNorm,
                 attention: Attention = sdpa) -> None:
        super().__init__()
        self.norm = norm
        w, bias = fused_qkv(block.q, block.k, block.v)
        self.qkv_weight, self.qkv_bias = _vector(w), _vector(bias)
        w, bias = linear_of(block.proj_out)
        self.proj_weight, self.proj_bias = _vector(w), _vector(bias)
        self.attention = attention


class SpatialAttention(_FusedAttention):
    """``x + proj_out(softmax(q k^T / sqrt(C)) v)`` over the ``H*W`` positions of every folded frame.

    From :class:`AttnBlock2d` (GroupNorm 32) or :class:`CausalSpatialAttnBlock3d` (per-frame GroupNorm 1).
    """

    def forward(self, x: torch.Tensor, b: int, cache: StreamCache | None = None) -> torch.Tensor:
        n, c, h, w = x.shape
        tokens = self.norm(x, silu=False).permute(0, 2, 3, 1).reshape(n, 1, h * w, c)  # [N, 1, HW, C]
        q, k, v = _project(tokens, self.qkv_weight, self.qkv_bias).chunk(3, dim=-1)  # 3 x [N, 1, HW, C]
        out = self.attention(q, k, v, False)  # [N, 1, HW, C]
        out = _project(out, self.proj_weight, self.proj_bias)  # [N, 1, HW, C]
        return x + out.reshape(n, h, w, c).permute(0, 3, 1, 2)


class TemporalAttention(_FusedAttention):
    """Causal attention over the frames of each window at every spatial position (:class:`CausalTemporalAttnBlock3d`):
    ``[B, T, HW, C]`` is viewed as ``[B, HW (heads), T, C]``, no copy. With a stream ``cache`` it keeps the keys and
    values of earlier frames (at most ``max_context_frames - 1``) like the plain block."""

    def forward(self, x: torch.Tensor, b: int, cache: StreamCache | None = None) -> torch.Tensor:
        h, w = x.shape[2:]
        s = seq_from_frames(self.norm(x, silu=False), b)  # [B, T, HW, C]
        q, k, v = _project(s, self.qkv_weight, self.qkv_bias).transpose(1, 2).chunk(3, dim=-1)  # 3 x [B, HW, T, C]
        if cache is None:
            out = self.attention(q, k, v, True)  # [B, HW, T, C]
        else:
            out, state = _cached_causal_attention(q, k, v, cache.get(self), cache.max_context_frames, self.attention)
            cache.set(self, state)
        out = _project(out.transpose(1, 2), self.proj_weight, self.proj_bias)  # [B, T, HW, C]
        return x + frames_from_seq(out, h, w)


def _cached_causal_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, past: tuple[torch.Tensor, torch.Tensor] | None,
    window: int | None, attention: Attention,
) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """Causal attention of the next ``n`` frames ``q, k, v`` ``[B, HW, n, C]`` over the ``c`` cached ones ``past``
    (``[B, HW, c, C]`` keys and values) and themselves, limited to ``window`` frames; returns the output and the keys
    and values to keep (the same rule as the plain :class:`CausalTemporalAttnBlock3d`)."""
    t = q.shape[2]
    if past is not None and past[0].shape[2] > 0:
        k = torch.cat([past[0], k], dim=2)  # [B, HW, c + n, C]
        v = torch.cat([past[1], v], dim=2)
    num_past = k.shape[2] - t
    if num_past == 0 and (window is None or t <= window):
        out = attention(q, k, v, True)  # a first chunk: as the whole clip
    else:
        query_pos = torch.arange(num_past, num_past + t, device=q.device)[:, None]  # [n, 1]
        key_pos = torch.arange(num_past + t, device=q.device)[None, :]  # [1, c + n]
        mask = key_pos <= query_pos
        if window is not None:
            mask = mask & (key_pos > query_pos - window)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # [B, HW, n, C]
    keep = k.shape[2] if window is None else min(k.shape[2], window - 1)
    start = k.shape[2] - keep
    if start > 0:  # copy the kept frames so the dropped ones can be freed
        k, v = k[:, :, start:].clone(), v[:, :, start:].clone()
    return out, (k.detach(), v.detach())
