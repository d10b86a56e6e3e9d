"""FP8 (E4M3) numerics of the fast path: scales, saturating quantization, the float32 reference convolution, and the
check that a device and a kernel library can run FP8 at all.

The scheme (issue 24): a mapped convolution ``y = conv(x, w) + b`` runs as

* weights quantized once, **per output channel**: ``s_w[o] = amax(|w[o]|) / 448``, ``w_q = e4m3(w / s_w)``;
* inputs quantized on the fly, **per tensor**, with a scale calibrated offline: ``s_x = amax(|x|) / 448`` over a
  few calibration windows, ``x_q = e4m3(clamp(x / s_x, -448, 448))`` (saturating: inputs beyond the calibrated
  range clamp to +-448 instead of becoming NaN, which is what a plain cast to ``float8_e4m3fn`` gives);
* ``y = conv(x_q, w_q) * (s_x * s_w[o]) + b``: the products of two E4M3 values are exact in float32 (4 + 4
  significant bits), summed in float32, scaled once per output channel, rounded to the model dtype (bf16).

448 is the largest finite E4M3 (``float8_e4m3fn``) value. :func:`reference_fp8_conv2d` computes exactly that on any
device with plain PyTorch: it is the CPU emulation of the FP8 kernels' numerics (``fp8_kernel="emulated"``) and the
yardstick the GPU kernels are tested against. It convolves the *fp8 values* in float32 and scales afterwards, as
the kernels do, instead of dequantizing first: the two are equal up to float32 rounding, and this order stays
exact under TF32 (an E4M3 value has 4 significant bits, TF32 keeps 11), so ``allow_tf32`` cannot change it.
"""

from __future__ import annotations

import importlib
from typing import Any

import torch
import torch.nn.functional as F

__all__ = [
    "E4M3_MAX",
    "FP8_DTYPE",
    "FP8_KERNELS",
    "MIN_CAPABILITY",
    "Fp8UnsupportedError",
    "check_fp8_support",
    "import_kernel_library",
    "quantize_e4m3",
    "reference_fp8_conv2d",
    "scale_from_amax",
    "weight_scales",
]

FP8_DTYPE = torch.float8_e4m3fn
#: The largest finite E4M3 value (``torch.finfo(torch.float8_e4m3fn).max``).
E4M3_MAX = 448.0
#: ``FastOptions.fp8_kernel`` values: NVIDIA's cuDNN frontend graph, our Triton implicit GEMM, the float32 emulation.
FP8_KERNELS = ("cudnn", "triton", "emulated")
#: Lowest CUDA compute capability per GPU kernel. FP8 tensor cores exist from Ada (8.9) on; Triton's ``tl.dot`` takes
#: E4M3 operands there, while cuDNN's FP8 convolution engines (and its FP8 samples) require Hopper (9.0).
MIN_CAPABILITY = {"cudnn": (9, 0), "triton": (8, 9)}
_INSTALL = {
    "cudnn": ("cudnn", "NVIDIA's cuDNN frontend: pip install nvidia-cudnn-frontend (the module is `cudnn`)"),
    "triton": ("triton", "Triton: pip install triton (CUDA builds of torch ship it)"),
}


class Fp8UnsupportedError(RuntimeError):
    """This device or this installation cannot run the FP8 kernel asked for; the message names the way out."""


def scale_from_amax(amax: torch.Tensor) -> torch.Tensor:
    """``amax / 448`` in float32, elementwise; ``1`` where ``amax == 0`` (an all-zero tensor quantizes to zeros with
    any positive scale, and a zero scale would divide by zero). Raises on a negative or non-finite ``amax``."""
    amax = amax.detach().float()
    if not torch.isfinite(amax).all() or (amax < 0).any():
        raise ValueError(f"amax must be finite and >= 0, got {amax.flatten()[:8].tolist()}")
    return torch.where(amax > 0, amax / E4M3_MAX, torch.ones_like(amax))


def weight_scales(weight: torch.Tensor) -> torch.Tensor:
    """Per-output-channel scales ``[O]`` (float32, on ``weight``'s device) of a conv weight ``[O, I, *kernel]``."""
    return scale_from_amax(weight.detach().abs().float().amax(dim=tuple(range(1, weight.ndim))))


def quantize_e4m3(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``e4m3(clamp(x / scale, -448, 448))``: saturating, round-to-nearest-even (PyTorch's cast), same shape and
    memory layout as ``x``. ``scale`` broadcasts against ``x`` (a 0-dim tensor per tensor, ``[O, 1, 1, 1]`` per
    output channel of a weight)."""
    return (x.float() / scale).clamp(-E4M3_MAX, E4M3_MAX).to(FP8_DTYPE)


def reference_fp8_conv2d(x_q: torch.Tensor, w_q: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None,
                         stride: tuple[int, int], padding: tuple[int, int], out_dtype: torch.dtype) -> torch.Tensor:
    """The FP8 convolution's numerics in plain PyTorch (any device).

    ``x_q`` ``[N, C, H, W]`` and ``w_q`` ``[O, C, kh, kw]`` in ``float8_e4m3fn``; ``scale`` ``[O]`` float32 (``s_x *
    s_w[o]``); ``bias`` ``[O]`` float32 or ``None``. Returns ``conv(x_q, w_q) * scale + bias`` ``[N, O, H', W']`` in
    ``out_dtype`` (products exact, sums in float32, see the module docstring).
    """
    acc = F.conv2d(x_q.float(), w_q.float(), None, stride, padding)  # [N, O, H', W'] float32
    y = acc * scale.view(1, -1, 1, 1)
    if bias is not None:
        y = y + bias.view(1, -1, 1, 1)
    return y.to(out_dtype)


def import_kernel_library(kernel: str) -> Any:
    """The Python module behind a GPU kernel (``cudnn`` or ``triton``), imported on first use; a missing one raises
    :class:`Fp8UnsupportedError` with the install command."""
    module, hint = _INSTALL[kernel]
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise Fp8UnsupportedError(
            f"fp8_kernel={kernel!r} needs {hint}; it could not be imported ({err}). Or choose another fp8_kernel "
            f"({', '.join(k for k in FP8_KERNELS if k != kernel)}), or precision='bf16'"
        ) from err


def check_fp8_support(kernel: str, device: torch.device, capability: tuple[int, int] | None = None) -> None:
    """Raise :class:`Fp8UnsupportedError` unless ``kernel`` can run FP8 convolutions on ``device``.

    ``"emulated"`` runs anywhere. ``"cudnn"`` / ``"triton"`` need a CUDA device of at least
    :data:`MIN_CAPABILITY` (``capability`` overrides the device's own, for tests) and their library.
    """
    if kernel not in FP8_KERNELS:
        raise ValueError(f"fp8_kernel must be one of {FP8_KERNELS}, got {kernel!r}")
    if kernel == "emulated":
        return
    way_out = ("use precision='bf16' (the default), or fp8_kernel='emulated' to measure the FP8 numerics "
               "(not its speed) on any device")
    if device.type != "cuda":
        raise Fp8UnsupportedError(f"fp8_kernel={kernel!r} runs on an NVIDIA GPU, but the model is on {device}; "
                                  f"{way_out}")
    have = capability if capability is not None else torch.cuda.get_device_capability(device)
    need = MIN_CAPABILITY[kernel]
    if tuple(have) < need:
        name = torch.cuda.get_device_name(device) if capability is None else "this GPU"
        raise Fp8UnsupportedError(
            f"FP8 convolutions with fp8_kernel={kernel!r} need compute capability {need[0]}.{need[1]} or newer "
            f"(FP8 tensor cores: Ada 8.9, Hopper 9.0), but {name} has {have[0]}.{have[1]}; {way_out}"
        )
    import_kernel_library(kernel)
