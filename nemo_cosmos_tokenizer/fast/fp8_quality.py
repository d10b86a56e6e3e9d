"""How far the FP8 fast path is from float32, beside eager bf16 and the bf16 fast path: issue 24's quality bars.

:func:`measure_fp8_quality` runs the same windows through the plain networks in float32 (TF32 off, the yardstick),
plain eager in the low-precision dtype, the bf16 fast path and the FP8 fast path, and reports per path the relative
error of the pre-quantization tensor / latent, the fraction of FSQ indices equal to float32's (discrete models),
the relative error of the reconstruction decoded from the path's own latent, and that reconstruction's PSNR
against the input. :meth:`Fp8Quality.bars` applies the issue's bars:

* ``index_agreement``: FP8 indices equal float32's at least as often as eager bf16's (discrete models);
* ``psnr``: the FP8 reconstruction's PSNR within 0.1 dB of the bf16 fast path's.

The references run one window at a time (float32 activations of a 720p window are large); the fast paths run the
whole batch (a compiled fast tokenizer keeps its compiled batch shape).
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, replace
from typing import Any, Callable

import torch

from ..networks.tokenizer import CosmosTokenizer
from .fp8_calibration import Fp8Calibration
from .options import FastOptions
from .tokenizer import FastCosmosTokenizer, optimize
from .verify import relative_error

__all__ = ["PSNR_SLACK_DB", "Fp8Quality", "PathQuality", "measure_fp8_quality", "psnr_db"]

#: Issue 24: the FP8 reconstruction's PSNR may be at most this much below the bf16 fast path's.
PSNR_SLACK_DB = 0.1


def psnr_db(out: torch.Tensor, ref: torch.Tensor) -> float:
    """PSNR in dB of ``out`` against ``ref``, both in [-1, 1] (peak-to-peak 2), over all elements, in float64."""
    mse = (out.double().clamp(-1, 1) - ref.double()).pow(2).mean().item()
    return float("inf") if mse == 0 else 10 * math.log10(4.0 / mse)


@dataclass
class PathQuality:
    """One path against float32 on the same windows."""

    latent_rel_error: float
    """Relative L2 error of the pre-quantization tensor (discrete) / latent (continuous)."""
    index_agreement: float | None
    """Discrete: fraction of FSQ indices equal to float32's."""
    recon_rel_error: float
    """Relative L2 error of the reconstruction decoded from the path's own latent vs float32's reconstruction."""
    psnr_db: float
    """PSNR of that reconstruction against the input windows."""


@dataclass
class Fp8Quality:
    """Quality of ``"eager"`` (plain networks in the low-precision dtype), ``"fast-bf16"`` and ``"fast-fp8"``."""

    paths: dict[str, PathQuality]
    positions: int | None
    """Discrete: number of compared index positions."""

    def bars(self) -> dict[str, bool]:
        """Issue 24's bars (see the module docstring), by name; ``index_agreement`` only for discrete models."""
        fp8, bf16, eager = self.paths["fast-fp8"], self.paths["fast-bf16"], self.paths["eager"]
        bars = {"psnr": fp8.psnr_db >= bf16.psnr_db - PSNR_SLACK_DB}
        if fp8.index_agreement is not None:
            bars["index_agreement"] = fp8.index_agreement >= eager.index_agreement
        return bars

    def to_dict(self) -> dict[str, Any]:
        return {"paths": {k: asdict(v) for k, v in self.paths.items()}, "positions": self.positions,
                "bars": self.bars()}


def _per_window(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([fn(x[i:i + 1]) for i in range(x.shape[0])])  # [B, ...], one window at a time


def _path(encode: Callable[[torch.Tensor], torch.Tensor], decode: Callable[[torch.Tensor], torch.Tensor],
          quantizer: torch.nn.Module | None, x: torch.Tensor, ref: dict[str, torch.Tensor]) -> PathQuality:
    h = encode(x)  # [B, C, (t), h, w]
    z = h if quantizer is None else quantizer(h.float())[1]  # FSQ codes, float32
    rec = decode(z)  # [B, 3, (T), H, W]
    agreement = None
    if quantizer is not None:
        agreement = (quantizer(h.float())[0] == ref["indices"]).float().mean().item()
    return PathQuality(latent_rel_error=relative_error(h, ref["latent"]), index_agreement=agreement,
                       recon_rel_error=relative_error(rec, ref["recon"]), psnr_db=psnr_db(rec, ref["input"]))


def measure_fp8_quality(model: CosmosTokenizer, x: torch.Tensor, calibration: Fp8Calibration | None = None, *,
                        options: FastOptions = FastOptions(precision="fp8", compile=False),
                        dtype: torch.dtype = torch.bfloat16, device: torch.device | str | None = None,
                        fast_bf16: FastCosmosTokenizer | None = None,
                        fast_fp8: FastCosmosTokenizer | None = None) -> Fp8Quality:
    """The quality of FP8 against float32 on the windows ``x`` (``[B, 3, T, H, W]`` or ``[B, 3, H, W]`` in [-1, 1]).

    ``model`` is the plain tokenizer (any dtype / device; left untouched). The fast paths are built from it with
    ``options`` (precision ``"bf16"`` and ``"fp8"``, ``auto_verify`` off) unless given (``fast_bf16`` /
    ``fast_fp8``, e.g. the benchmark's compiled ones); building the FP8 one needs ``calibration``.
    """
    param = next(model.parameters())
    device = torch.device(device) if device is not None else param.device
    x = x.to(device)
    if fast_bf16 is None:
        fast_bf16 = optimize(model, replace(options, precision="bf16", auto_verify=False), dtype=dtype, device=device)
    if fast_fp8 is None:
        if calibration is None:
            raise ValueError("measure_fp8_quality builds the FP8 path from a calibration: pass calibration= or "
                             "fast_fp8=")
        fast_fp8 = optimize(model, replace(options, precision="fp8", auto_verify=False), dtype=dtype, device=device,
                            fp8_calibration=calibration)
    quantizer = model.quantizer
    flags = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        model32 = copy.deepcopy(model).to(device=device, dtype=torch.float32)
        latent32 = _per_window(model32.encode_pre_quant, x.float())
        z32 = latent32 if quantizer is None else quantizer(latent32)[1]
        ref = {"latent": latent32, "recon": _per_window(model32.decode_latent, z32), "input": x.float()}
        ref["indices"] = quantizer(latent32)[0] if quantizer is not None else None
        del model32
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = flags
    eager_model = copy.deepcopy(model).to(device=device, dtype=dtype).eval()
    paths = {"eager": _path(lambda v: _per_window(eager_model.encode_pre_quant, v.to(dtype)),
                            lambda z: _per_window(eager_model.decode_latent, z), quantizer, x, ref)}
    del eager_model
    with torch.no_grad():
        for name, fast in (("fast-bf16", fast_bf16), ("fast-fp8", fast_fp8)):
            paths[name] = _path(fast.encode_pre_quant, fast.decode_latent, quantizer, x, ref)
    positions = ref["indices"].numel() if quantizer is not None else None
    return Fp8Quality(paths=paths, positions=positions)
