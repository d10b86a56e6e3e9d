"""FP8 convolution layers of the fast path (``FastOptions(precision="fp8")``, issue 24) and the conversion step that
puts them in place of the bf16 ones.

:class:`Fp8ConvFrames` / :class:`Fp8TemporalConv` compute what :class:`.frames.ConvFrames` /
:class:`.frames.TemporalConv` compute, on the same folded channels-last layout, with the numerics of
:mod:`.fp8_numerics`: the weight is stored once as E4M3 with per-output-channel scales, each call quantizes its
input with the calibrated per-tensor scale (an element-wise op that ``torch.compile`` fuses into the kernel that
produced the input, e.g. norm + SiLU) and runs :func:`.fp8_kernels.fp8_conv2d`. The output has the input's dtype.

:class:`Fp8Conversion` is the hook :func:`.convert.convert_tokenizer` calls for every plain convolution: it swaps
in an FP8 layer for the layers the calibration holds (those :func:`.fp8_plan.fp8_layer_plan` mapped) and keeps the
others. It checks the scales against the weights it quantizes: scales calibrated for other weights are refused.
"""

from __future__ import annotations

import torch
from torch import nn

from ..modules.cache import StreamCache
from ..networks.tokenizer import CosmosTokenizer
from .fp8_calibration import Fp8Calibration
from .fp8_kernels import fp8_conv2d
from .fp8_numerics import quantize_e4m3, weight_scales
from .fp8_plan import conv_modules
from .frames import CausalTimeConv, ConvFrames, TemporalConv

__all__ = ["Fp8Conversion", "Fp8ConvFrames", "Fp8TemporalConv", "WEIGHT_SCALE_RTOL"]

#: Relative difference allowed between a stored weight scale and the one of the weights being converted: the scales
#: are calibrated in any dtype and the fast path may hold the weights in bf16, whose rounding moves a channel's
#: largest |w| by at most half a bf16 step, 2^-9 relative; 2^-8 leaves room for float16 as well (2^-11).
WEIGHT_SCALE_RTOL = 2.0**-8


class _Fp8Weights(nn.Module):
    """The FP8 state shared by both layers: E4M3 weight, the combined output scale, float32 bias, input scale."""

    def _set_weights(self, weight: torch.Tensor, bias: torch.Tensor | None, w_scale: torch.Tensor,
                     input_scale: float, kernel: str) -> None:
        w_scale = w_scale.to(device=weight.device, dtype=torch.float32)
        w_q = quantize_e4m3(weight, w_scale.view(-1, *([1] * (weight.ndim - 1))))  # [O, I, kh, kw] E4M3
        self.register_buffer("weight_q", w_q.contiguous(memory_format=torch.channels_last))
        self.register_buffer("input_scale", torch.tensor(input_scale, dtype=torch.float32, device=weight.device))
        self.register_buffer("out_scale", (self.input_scale * w_scale).contiguous())  # [O]: s_x * s_w[o]
        self.register_buffer("bias_f32", None if bias is None else bias.detach().float().clone())
        self.kernel = kernel

    def _fp8_conv(self, x: torch.Tensor, stride: tuple[int, int], padding: tuple[int, int]) -> torch.Tensor:
        x_q = quantize_e4m3(x, self.input_scale)  # same shape and layout as x, E4M3
        return fp8_conv2d(x_q, self.weight_q, self.out_scale, self.bias_f32, stride, padding, x.dtype, self.kernel)


class Fp8ConvFrames(_Fp8Weights):
    """:class:`.frames.ConvFrames` in FP8: ``[N, C_in, H, W]`` -> ``[N, C_out, H', W']`` (same dtype as the input)."""

    def __init__(self, conv: ConvFrames, w_scale: torch.Tensor, input_scale: float, kernel: str) -> None:
        super().__init__()
        self._set_weights(conv.weight, conv.bias, w_scale, input_scale, kernel)
        self.stride = conv.stride
        self.padding = conv.padding

    def forward(self, x: torch.Tensor, b: int = 0, cache: StreamCache | None = None) -> torch.Tensor:
        """Per frame: ``b`` and ``cache`` change nothing."""
        return self._fp8_conv(x, (self.stride, self.stride), (self.padding, self.padding))

    def extra_repr(self) -> str:
        o, i, kh, kw = self.weight_q.shape
        return f"{i}, {o}, kernel=({kh}, {kw}), stride={self.stride}, padding={self.padding}, fp8 kernel={self.kernel}"


class Fp8TemporalConv(_Fp8Weights, CausalTimeConv):
    """:class:`.frames.TemporalConv` in FP8 (the same padding, stream cache and layout, see ``CausalTimeConv``)."""

    def __init__(self, conv: TemporalConv, w_scale: torch.Tensor, input_scale: float, kernel: str) -> None:
        super().__init__()
        self._set_weights(conv.weight, conv.bias, w_scale, input_scale, kernel)
        self.time_pad = conv.time_pad
        self.time_stride = conv.time_stride

    def conv(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, T + pad, H*W]`` -> ``[B, C_out, T', H*W]``: a ``(kt, 1)`` convolution with time stride."""
        return self._fp8_conv(x, (self.time_stride, 1), (0, 0))

    def extra_repr(self) -> str:
        o, i, kt, _ = self.weight_q.shape
        return (f"{i}, {o}, kernel=({kt}, 1, 1), time_pad={self.time_pad}, time_stride={self.time_stride}, "
                f"fp8 kernel={self.kernel}")


class Fp8Conversion:
    """``hook(plain_conv, fast_layer) -> layer`` for :func:`.convert.convert_tokenizer`: FP8 for calibrated layers.

    Raises ``ValueError`` when the calibration names a layer ``model`` does not have, or when a stored weight scale
    differs from the converted weights' own by more than :data:`WEIGHT_SCALE_RTOL` (scales of other weights).
    """

    def __init__(self, model: CosmosTokenizer, calibration: Fp8Calibration, kernel: str) -> None:
        convs = conv_modules(model)
        unknown = [name for name in calibration.layers if name not in convs]
        if unknown:
            raise ValueError(f"the FP8 scales name layers this model does not have: {unknown[:4]} (scales of another "
                             "model? calibrate this one with calibrate_fp8)")
        self.names = {module: name for name, module in convs.items()}
        self.calibration = calibration
        self.kernel = kernel
        self.converted: list[str] = []

    def __call__(self, plain: nn.Module, fast: nn.Module) -> nn.Module:
        name = self.names.get(plain)
        if name is None or name not in self.calibration.input_scales:
            return fast
        stored = self.calibration.weight_scales[name]
        own = weight_scales(fast.weight).cpu()
        if stored.shape != own.shape:
            raise ValueError(f"the FP8 scales of {name} are for {stored.shape[0]} output channels, the layer has "
                             f"{own.shape[0]}: they were calibrated for another model; calibrate with calibrate_fp8")
        if not torch.allclose(own, stored, rtol=WEIGHT_SCALE_RTOL, atol=0.0):
            worst = ((own - stored).abs() / stored).max().item()
            raise ValueError(f"the FP8 weight scales of {name} do not fit its weights (relative difference up to "
                             f"{worst:.2e}): they were calibrated for other weights; calibrate again "
                             "(calibrate_fp8)")
        scale = self.calibration.input_scales[name]
        self.converted.append(name)
        if isinstance(fast, TemporalConv):
            return Fp8TemporalConv(fast, stored, scale, self.kernel)
        if isinstance(fast, ConvFrames):
            return Fp8ConvFrames(fast, stored, scale, self.kernel)
        raise TypeError(f"no FP8 layer for {type(fast).__name__} ({name})")
