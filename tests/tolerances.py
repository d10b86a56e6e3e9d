"""Float tolerances derived from what is compared, so they hold on any CPU, thread count and SIMD kernel.

Import as ``from tolerances import reorder_atol, network_atol, ...`` (``tests/`` is on ``sys.path`` under pytest).

Two float32 evaluations of the same network that differ only in *the order of their sums* (batch size, chunking,
thread count, AVX2 / AVX-512 / ``ATEN_CPU_CAPABILITY=default`` kernels, oneDNN blocking) differ by rounding alone.
A sum of ``n`` terms rounds by about ``eps32 * sqrt(n)`` times the magnitude of its terms (independent roundings
add in quadrature), and ``L`` such reductions in sequence add up the same way, ``sqrt(L)``; the group norms between
layers keep the gain near one. Magnitudes are bounded by ``max|reference|``. So

    atol = SAFETY * eps32 * sqrt(fan_in) * sqrt(layers) * max|reference|

with ``SAFETY = 8`` for constants and gains above one. Measured on this suite: the largest case (DI16x16 batched
vs single, max|ref| 2.84, fan-in 432, 18 layers) differs by 1.8e-5 on AVX-512 and with the default kernels; the
bound is 2.4e-4. A real fault (a batch element or frame leaking into another, a wrong weight, a skipped layer)
moves outputs by a sizeable fraction of max|reference|, thousands of times the bound.

Golden-vector comparisons keep the acceptance of ../shared/conformance/README.md instead (they compare against
another implementation's float32 rounding, and that README measured it).
"""

from __future__ import annotations

import math

import torch
from torch import nn

EPS32 = torch.finfo(torch.float32).eps
EPS64 = torch.finfo(torch.float64).eps
SAFETY = 8.0

_REDUCING = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear, nn.ConvTranspose2d, nn.ConvTranspose3d)


def scale(reference: torch.Tensor) -> float:
    """max|reference| (at least the smallest normal float, so an all-zero reference still gets a bound)."""
    return max(float(reference.detach().abs().max()), torch.finfo(torch.float32).tiny)


def reorder_atol(reference: torch.Tensor, *, fan_in: int, layers: int = 1, eps: float | None = None) -> float:
    """Absolute tolerance for a float result whose sums may be reordered (see the module docstring)."""
    if eps is None:
        eps = EPS64 if reference.dtype == torch.float64 else EPS32
    return SAFETY * eps * math.sqrt(max(fan_in, 1)) * math.sqrt(max(layers, 1)) * scale(reference)


def reductions(module: nn.Module) -> tuple[int, int]:
    """``(layers, fan_in)``: how many convolutions / linear layers ``module`` holds (an upper bound on the
    reductions in sequence) and the largest number of terms one output of them sums (weight elements per output
    channel). Attention sums over tokens; its fan-in is added by the caller where it is larger."""
    layers, fan_in = 0, 1
    for m in module.modules():
        if isinstance(m, _REDUCING):
            layers += 1
            fan_in = max(fan_in, m.weight[0].numel())
    return layers, fan_in


def network_atol(module: nn.Module, reference: torch.Tensor, *, extra_fan_in: int = 0) -> float:
    """:func:`reorder_atol` for the output of ``module`` (an encoder, a decoder, a whole tokenizer)."""
    layers, fan_in = reductions(module)
    return reorder_atol(reference, fan_in=max(fan_in, extra_fan_in), layers=layers)


def encoder_atol(model, reference: torch.Tensor) -> float:
    """Tolerance for encoder outputs (latent / pre-quant) of a ``CosmosTokenizer``: encoder + quant_conv."""
    return network_atol(_parts(model, "encoder", "quant_conv"), reference)


def decoder_atol(model, reference: torch.Tensor) -> float:
    """Tolerance for decoder outputs (reconstructions) of a ``CosmosTokenizer``: post_quant_conv + decoder."""
    return network_atol(_parts(model, "post_quant_conv", "decoder"), reference)


def _parts(model, *names: str) -> nn.Module:
    parts = nn.ModuleList([getattr(model, name) for name in names if getattr(model, name, None) is not None])
    return parts if len(parts) else model


def relative_bound(atol: float, reference: torch.Tensor) -> float:
    """The elementwise bound ``atol`` as a bound on ``||out - ref|| / ||ref||`` (what ``fast.relative_error``
    measures): ``||out - ref|| <= sqrt(N) * atol`` and ``||ref|| = sqrt(N) * rms(ref)``."""
    rms = float(reference.detach().double().pow(2).mean().sqrt())
    return atol / max(rms, torch.finfo(torch.float32).tiny)
