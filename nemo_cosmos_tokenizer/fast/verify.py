"""How the fast path is checked against the plain eager networks (see :mod:`.tokenizer` for when).

On the same windows: latents / pre-quantization tensors / reconstructions within ``max_rel_error`` (relative L2)
of eager in the same dtype and, for discrete models, indices equal on at least ``min_index_match`` of positions.
In bfloat16 / float16 a direct comparison cannot be met by any evaluation order other than eager's own, so when it
fails in low precision both paths are compared with the same networks in float32: the fast path passes if its error
is at most ``noise_factor`` times eager's and its indices match float32 no less often than eager's, up to
``index_slack``. A broken kernel or graph gives errors of order one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import torch

from .options import FastOptions

__all__ = ["VerifyReport", "compare_with_eager", "relative_error"]


def relative_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    """``||out - ref|| / ||ref||`` in float64 (``inf`` for a non-finite ``out``)."""
    out, ref = out.double(), ref.double()
    if not torch.isfinite(out).all():
        return float("inf")
    return ((out - ref).norm() / ref.norm().clamp_min(1e-30)).item()


@dataclass
class VerifyReport:
    """Outcome of one comparison of the fast path with the plain eager path on the same windows."""

    ok: bool
    part: str
    """``"encode"`` or ``"decode"``."""
    windows: int
    """Windows (batch entries) compared."""
    rel_error: float
    """Relative L2 error of the pre-quantization tensor / latent (encode) or reconstruction (decode)."""
    index_match: float | None = None
    """Discrete encode only: fraction of positions with equal indices."""
    seconds: float = 0.0
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare_with_eager(
    part: str,
    out: torch.Tensor,
    ref: torch.Tensor,
    options: FastOptions,
    *,
    indices: Callable[[torch.Tensor], torch.Tensor] | None = None,
    float32_reference: Callable[[], torch.Tensor] | None = None,
    noise_factor: float | None = None,
) -> VerifyReport:
    """The fast output ``out`` against eager's ``ref`` (the same windows, ``[n, ...]``) for ``part`` (``"encode"`` /
    ``"decode"``). ``indices`` maps a pre-quantization tensor to FSQ indices (discrete encode only);
    ``float32_reference`` computes the float32 yardstick when the direct check fails (low precision only);
    ``noise_factor`` overrides ``options.noise_factor`` there (the FP8 path's allowance is larger)."""
    noise_factor = options.noise_factor if noise_factor is None else noise_factor
    discrete = indices is not None
    err = relative_error(out, ref)
    index_match = (indices(out) == indices(ref)).float().mean().item() if discrete else None
    ok = err <= options.max_rel_error and (index_match is None or index_match >= options.min_index_match)
    what = {"encode": "pre-quantization tensor" if discrete else "latent", "decode": "reconstruction"}[part]
    message = (f"{part}: {what} relative error vs eager {err:.2e} (limit {options.max_rel_error:.0e})"
               + (f", indices equal on {index_match:.2%} (limit {options.min_index_match:.0%})" if discrete else ""))
    details: dict[str, Any] = {}
    if not ok and float32_reference is not None:
        # Two low-precision evaluations that differ anywhere decorrelate to the level of the precision itself;
        # what matters is that the fast path is not further from the exact result than eager is.
        ref32 = float32_reference()
        details = {"fast_vs_fp32": relative_error(out, ref32), "eager_vs_fp32": relative_error(ref, ref32)}
        ok = details["fast_vs_fp32"] <= noise_factor * details["eager_vs_fp32"]
        message += (f"; vs float32: fast {details['fast_vs_fp32']:.2e}, eager {details['eager_vs_fp32']:.2e} "
                    f"(limit x{noise_factor:g})")
        if discrete:
            idx32 = indices(ref32)
            details["fast_index_match_fp32"] = (indices(out) == idx32).float().mean().item()
            details["eager_index_match_fp32"] = (indices(ref) == idx32).float().mean().item()
            ok = ok and details["fast_index_match_fp32"] >= details["eager_index_match_fp32"] - options.index_slack
            message += (f", indices equal to float32 on {details['fast_index_match_fp32']:.2%} (fast) / "
                        f"{details['eager_index_match_fp32']:.2%} (eager, slack {options.index_slack:.0%})")
    return VerifyReport(ok=ok, part=part, windows=out.shape[0], rel_error=err, index_match=index_match,
                        message=message, details=details)
