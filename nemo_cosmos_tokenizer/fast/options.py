"""The options of the fast path, in one frozen dataclass (loadable from YAML with OmegaConf like every config), and
the Inductor options they give ``torch.compile``."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Callable

import torch

from .attention import ATTENTION, Attention
from .fp8_numerics import FP8_KERNELS

__all__ = ["DEFAULT_FP8_EXCLUDE", "FastOptions", "PRECISIONS", "compile_options"]

#: ``FastOptions.precision`` values.
PRECISIONS = ("bf16", "fp8")
#: Convolutions that stay bf16 in ``precision="fp8"`` by default (name patterns, see :mod:`.fp8_plan`): the first
#: and last convolutions of the encoder and decoder, and the quantizer's ``quant_conv`` / ``post_quant_conv``.
DEFAULT_FP8_EXCLUDE = ("*conv_in*", "*conv_out*", "quant_conv", "post_quant_conv")


@dataclass(frozen=True)
class FastOptions:
    """How :func:`nemo_cosmos_tokenizer.fast.optimize` builds and checks a :class:`FastCosmosTokenizer`.

    Example::

        fast = optimize(model, FastOptions(compile=False), dtype=torch.float32)
        fast = optimize(model, compile=False)            # the same: keywords override fields of the default
    """

    compile: bool = True
    """Wrap the fast encoder and decoder in ``torch.compile`` (``dynamic=False, fullgraph=True``). Off on CPU."""
    compile_mode: str | None = None
    """Inductor mode, e.g. ``"max-autotune-no-cudagraphs"`` or ``"reduce-overhead"`` (CUDA graphs)."""
    channels_last: bool = True
    """Folded frames in channels-last memory (cuDNN's NHWC kernels); ``False`` for contiguous NCHW."""
    attention: str | Attention = "materialized"
    """Attention kernel: a name in :data:`.layers.ATTENTION` (``"materialized"``, ``"materialized-fp32"``,
    ``"sdpa"``) or a callable ``(q, k, v, is_causal) -> out``."""
    auto_verify: bool = True
    """Check the first ``encode`` / ``decode`` against the plain eager networks (falls back to them on failure)."""
    min_index_match: float = 0.99
    """Discrete models: fraction of indices that must equal eager's in the direct check."""
    max_rel_error: float = 1e-2
    """Relative L2 error against eager allowed in the direct check."""
    noise_factor: float = 1.5
    """Low precision: the fast path's error against float32 may be this multiple of eager's."""
    index_slack: float = 0.02
    """Low precision: how much less often than eager the fast indices may match float32's."""
    verify_windows: int = 1
    """Windows (batch entries) compared by the check."""
    eager_numerics: bool = False
    """Keep the bf16 rounding of every intermediate that eager rounds (Inductor's ``emulate_precision_casts``).
    Without it a fused kernel keeps some intermediates in float32, and how ops are fused can differ between two
    parts of one batch: on an H100 the mid-block attention's two frame chunks of a batch of 8 were fused
    differently, and ~1 % of a window's tokens changed when it moved to the other half of the batch; with it, none
    did, at ~4 % of encoder speed (BENCHMARKS.md, run 10). Deterministic builds turn it on."""
    cudnn_benchmark: bool = True
    """Turn on ``torch.backends.cudnn.benchmark`` (process-wide) on CUDA."""
    precision: str = "bf16"
    """Convolution precision. ``"bf16"`` (default): every layer in the tokenizer's dtype, as always. ``"fp8"``
    (opt-in, issue 24): the convolutions that carry most FLOPs (see ``fp8_include`` / ``fp8_exclude`` and
    :func:`.fp8_plan.fp8_layer_plan`) take E4M3 inputs and weights with calibrated scales, accumulate in float32 and
    write the model dtype; everything else is unchanged. Needs calibration scales (``fp8_scales`` or
    ``optimize(..., fp8_calibration=...)``, made by :func:`.fp8_calibration.calibrate_fp8`)."""
    fp8_kernel: str = "cudnn"
    """FP8 convolution kernel: ``"cudnn"`` (NVIDIA's cuDNN frontend, Hopper), ``"triton"`` (our implicit GEMM, Ada or
    Hopper) or ``"emulated"`` (float32 emulation of the same numerics, any device; slow). See :mod:`.fp8_kernels`."""
    fp8_scales: str | None = None
    """``precision="fp8"``: the scales file written by :func:`.fp8_calibration.save_fp8_calibration` (or the folder
    holding ``fp8_scales.safetensors``, beside the converted weights)."""
    fp8_include: tuple[str, ...] = ("*",)
    """``precision="fp8"``: name patterns of the convolutions that may go FP8 (plain module names)."""
    fp8_exclude: tuple[str, ...] = DEFAULT_FP8_EXCLUDE
    """``precision="fp8"``: name patterns of the convolutions that stay bf16 (checked before ``fp8_include``)."""

    def __post_init__(self) -> None:
        if isinstance(self.attention, str) and self.attention not in ATTENTION:
            raise ValueError(f"attention must be one of {sorted(ATTENTION)} or a callable, got {self.attention!r}")
        if not (isinstance(self.attention, str) or callable(self.attention)):
            raise TypeError(f"attention must be a name or a callable, got {type(self.attention).__name__}")
        if not 0.0 <= self.min_index_match <= 1.0 or not 0.0 <= self.index_slack <= 1.0:
            raise ValueError("min_index_match and index_slack are fractions in [0, 1]")
        if self.max_rel_error <= 0 or self.noise_factor <= 0:
            raise ValueError("max_rel_error and noise_factor must be positive")
        if self.verify_windows < 1:
            raise ValueError(f"verify_windows must be >= 1, got {self.verify_windows}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be 'bf16' (the default) or 'fp8', got {self.precision!r}; the model "
                             "dtype is optimize()'s dtype argument, precision only chooses FP8 convolutions")
        if self.fp8_kernel not in FP8_KERNELS:
            raise ValueError(f"fp8_kernel must be one of {FP8_KERNELS}, got {self.fp8_kernel!r}")
        for field_name in ("fp8_include", "fp8_exclude"):
            patterns = getattr(self, field_name)
            if isinstance(patterns, str) or not all(isinstance(p, str) for p in patterns):
                raise TypeError(f"{field_name} must be a sequence of name patterns (str), got {patterns!r}")
            object.__setattr__(self, field_name, tuple(patterns))  # a YAML list arrives as a list: keep it hashable

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    @property
    def attention_kernel(self) -> Callable[..., torch.Tensor]:
        return ATTENTION[self.attention] if isinstance(self.attention, str) else self.attention

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


def compile_options(mode: str | None, eager_numerics: bool) -> dict[str, Any]:
    """Inductor options for ``torch.compile``: those of ``mode``, no online softmax, ``emulate_precision_casts`` if
    asked."""
    from torch._inductor import list_mode_options

    options = dict(list_mode_options(mode)) if mode else {}
    if hasattr(torch._inductor.config, "online_softmax"):
        # Keeps the materialized attention's amax/exp/sum pass the plain reduction that was measured: with two
        # 14,400-row frames per chunk Inductor's online-softmax rewrite of it ran at half speed on an H100 (one
        # frame per chunk, the default, measured the same either way).
        options["online_softmax"] = False
    if eager_numerics:
        options["emulate_precision_casts"] = True
    return options
