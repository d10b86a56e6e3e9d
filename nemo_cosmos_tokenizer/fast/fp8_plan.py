"""Which convolutions of a tokenizer run in FP8: the layer mapping, by name patterns, and a readable listing of it.

A layer is named by its plain module name (the checkpoint's key prefix), e.g. ``encoder.down.0.block.0.conv1.0``
(the spatial half of a factorized 3x3x3) or ``decoder.up.1.upsample.conv3``. Rules, in order:

1. q / k / v / proj_out of an attention block stay bf16: the fast path fuses them into attention GEMMs, not convs;
2. a name matching an ``exclude`` pattern stays bf16 (``FastOptions.fp8_exclude``; by default the first and last
   convolutions of both sides, which see the Haar coefficients / latent and write the reconstruction / latent,
   and ``quant_conv`` / ``post_quant_conv``, the FSQ boundary);
3. a name matching no ``include`` pattern stays bf16 (``FastOptions.fp8_include``, default ``("*",)``);
4. a layer whose input or output channels are not multiples of 16 stays bf16: both GPU kernels read 16-byte
   rows (16 E4M3 channels). The released models' widths are multiples of 128, so this only bites reduced models.

Patterns are shell-style (:func:`fnmatch.fnmatchcase`) over the whole name. :func:`fp8_layer_plan` applies the rules;
with an input shape it also counts each layer's FLOPs (on the meta device), and :func:`format_fp8_plan` prints it.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

import torch
from torch import nn

from ..modules.attention import AttnBlock2d, CausalSpatialAttnBlock3d, CausalTemporalAttnBlock3d
from ..modules.conv import CausalConv3d
from ..networks.tokenizer import CosmosTokenizer
from .options import DEFAULT_FP8_EXCLUDE
from .profiling import latent_input_shape

__all__ = ["CHANNEL_MULTIPLE", "Fp8LayerPlan", "conv_modules", "format_fp8_plan", "fp8_layer_plan"]

#: Both FP8 kernels need input and output channels in multiples of 16 (16-byte rows of E4M3 values).
CHANNEL_MULTIPLE = 16
_ATTENTION = (AttnBlock2d, CausalSpatialAttnBlock3d, CausalTemporalAttnBlock3d)


@dataclass(frozen=True)
class Fp8LayerPlan:
    """One convolution of the plain model and the precision the fast path gives it."""

    name: str
    """Plain module name, e.g. ``encoder.mid.block_1.conv1.0``."""
    kernel: tuple[int, ...]
    """Kernel size: ``(kt, kh, kw)`` of a causal 3D conv, ``(kh, kw)`` of an ``nn.Conv2d``."""
    in_channels: int
    out_channels: int
    fp8: bool
    reason: str
    """Why: the pattern that included or excluded it, the channel rule, or attention."""
    flops: int | None = None
    """FLOPs of this layer (2 per multiply-add) for the input shape given to :func:`fp8_layer_plan`, else ``None``."""

    @property
    def side(self) -> str:
        """``"encode"`` (encoder, quant_conv) or ``"decode"`` (post_quant_conv, decoder)."""
        return "encode" if self.name.startswith(("encoder.", "quant_conv")) else "decode"


def conv_modules(model: nn.Module) -> dict[str, CausalConv3d | nn.Conv2d]:
    """The plain model's convolutions by name, in module order (exact types, as the conversion table)."""
    return {name: m for name, m in model.named_modules() if type(m) in (CausalConv3d, nn.Conv2d)}


def _weight(conv: CausalConv3d | nn.Conv2d) -> torch.Tensor:
    return conv.conv3d.weight if isinstance(conv, CausalConv3d) else conv.weight


def _decide(name: str, conv: CausalConv3d | nn.Conv2d, attention: list[str], include: tuple[str, ...],
            exclude: tuple[str, ...]) -> tuple[bool, str]:
    if any(name.startswith(prefix + ".") for prefix in attention):
        return False, "attention projection (a bf16 attention GEMM in the fast path)"
    for pattern in exclude:
        if fnmatch.fnmatchcase(name, pattern):
            return False, f"excluded by {pattern!r}"
    matched = next((p for p in include if fnmatch.fnmatchcase(name, p)), None)
    if matched is None:
        return False, "matches no include pattern"
    o, i = _weight(conv).shape[:2]
    if i % CHANNEL_MULTIPLE or o % CHANNEL_MULTIPLE:
        return False, f"{i} -> {o} channels: the FP8 kernels need multiples of {CHANNEL_MULTIPLE}"
    return True, f"included by {matched!r}"


def _layer_flops(config, input_shape: tuple[int, ...]) -> dict[str, int]:
    """FLOPs per convolution name for one encode and one decode of ``input_shape`` (meta device: no memory)."""
    from ..networks import build_tokenizer

    flops: dict[str, int] = {}

    def hook(name: str):
        def record(module: nn.Module, args: tuple, out: torch.Tensor) -> None:
            w = _weight(module)  # [O, I, *kernel]; groups are 1 in these networks
            flops[name] = flops.get(name, 0) + 2 * out.numel() * w[0].numel()
        return record

    with torch.device("meta"):
        model = build_tokenizer(config)
        handles = [m.register_forward_hook(hook(n)) for n, m in conv_modules(model).items()]
        try:
            model.encode_pre_quant(torch.empty(input_shape))
            model.decoder(model.post_quant_conv(torch.empty(latent_input_shape(config, input_shape))))
        finally:
            for handle in handles:
                handle.remove()
    return flops


def fp8_layer_plan(model: CosmosTokenizer, include: tuple[str, ...] = ("*",),
                   exclude: tuple[str, ...] = DEFAULT_FP8_EXCLUDE,
                   input_shape: tuple[int, ...] | None = None) -> list[Fp8LayerPlan]:
    """Every convolution of ``model`` with its precision under the rules of the module docstring, in module order.

    ``include`` / ``exclude`` are name patterns (``FastOptions.fp8_include`` / ``fp8_exclude``, whose defaults they
    share). With ``input_shape`` (an encoder input, e.g. ``(1, 3, 17, 720, 1280)``) each entry carries its FLOPs.
    """
    attention = [name for name, m in model.named_modules() if isinstance(m, _ATTENTION)]
    flops = _layer_flops(model.config, tuple(input_shape)) if input_shape is not None else {}
    plan = []
    for name, conv in conv_modules(model).items():
        fp8, reason = _decide(name, conv, attention, tuple(include), tuple(exclude))
        w = _weight(conv)
        plan.append(Fp8LayerPlan(name=name, kernel=tuple(w.shape[2:]), in_channels=w.shape[1],
                                 out_channels=w.shape[0], fp8=fp8, reason=reason, flops=flops.get(name)))
    return plan


def format_fp8_plan(plan: list[Fp8LayerPlan]) -> str:
    """A table of ``plan`` (one line per convolution) and, with FLOPs, the FP8 share of the convolution FLOPs."""
    lines = [f"{'precision':9s} {'layer':44s} {'kernel':9s} {'channels':11s} {'GFLOP':>8s}  why"]
    for p in plan:
        gflop = f"{p.flops / 1e9:8.2f}" if p.flops is not None else f"{'-':>8s}"
        kernel = "x".join(str(k) for k in p.kernel)
        lines.append(f"{'fp8' if p.fp8 else 'bf16':9s} {p.name:44s} {kernel:9s} "
                     f"{f'{p.in_channels}->{p.out_channels}':11s} {gflop}  {p.reason}")
    n_fp8 = sum(p.fp8 for p in plan)
    summary = f"FP8: {n_fp8} of {len(plan)} convolutions"
    if plan and all(p.flops is not None for p in plan):
        shares = []
        for side in ("encode", "decode"):
            total = sum(p.flops for p in plan if p.side == side)
            if total:
                shares.append(f"{side} {sum(p.flops for p in plan if p.side == side and p.fp8) / total:.1%}")
        summary += " carrying " + ", ".join(shares) + " of the convolution FLOPs"
    return "\n".join(lines + [summary])
