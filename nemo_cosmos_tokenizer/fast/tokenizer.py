"""The fast path: :func:`optimize` turns a plain :class:`CosmosTokenizer` into a :class:`FastCosmosTokenizer`.

``FastCosmosTokenizer`` has the plain ``encode`` / ``encode_pre_quant`` / ``decode`` / ``decode_codes`` API and the
same weights; it runs the folded channels-last networks of :mod:`.networks`, optionally under ``torch.compile``,
with FSQ in float32 outside the compiled graph (the plain quantizer). It keeps the plain model (converted to the
same device and dtype) as ``reference``: :meth:`FastCosmosTokenizer.verify` compares both on the caller's input, and
with ``auto_verify`` (the default) the first ``encode`` / ``decode`` call does that before returning. If the fast
path fails the check or raises, it warns and falls back to the plain eager path.

The check, on the first ``verify_windows`` windows of the call's own input: latents / pre-quantization tensors /
reconstructions within ``max_rel_error`` (relative L2) of eager in the same dtype and, for discrete models, indices
equal on at least ``min_index_match`` of positions. In bf16 this direct comparison cannot be met by any evaluation
order other than eager's own: a 1-ulp difference in a small fraction of one layer's outputs flips ~2 % of the next
3x3 conv's outputs per affected input, so within a few layers two bf16 runs differ as much as bf16 differs from the
exact result (measured on real-size DV8x16x16: eager bf16 vs float32 8e-3 relative, 95 % equal indices). So when the
direct check fails in low precision, both paths are compared with the same networks in float32 (TF32 off): the fast
path passes if its error is at most ``noise_factor`` times eager's and its indices match float32 no less often than
eager's, up to ``index_slack``. A broken kernel or graph gives errors of order one.
"""

from __future__ import annotations

import copy
import time
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from ..networks.tokenizer import CosmosTokenizer
from .layers import ATTENTION, Attention
from .networks import FastDecoder, FastEncoder

__all__ = ["FastCosmosTokenizer", "VerifyReport", "compile_options", "optimize", "relative_error"]


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


class FastCosmosTokenizer(nn.Module):
    """Fast encode / decode with the API of :class:`CosmosTokenizer` (build it with :func:`optimize`).

    Inputs are cast to the tokenizer's dtype and moved to its device at the boundary. Outputs match the plain
    model: continuous ``encode`` -> ``(latent,)`` ``[B, C, t, h, w]`` in the model dtype; discrete -> ``(indices int32
    [B, t, h, w], codes float32 [B, 6, t, h, w])``; ``decode`` -> ``[B, 3, T, H, W]`` in the model dtype.
    Every new input shape is compiled once (``dynamic=False``); keep the batch shape fixed in long jobs.
    """

    def __init__(
        self,
        model: CosmosTokenizer,
        *,
        compile: bool = True,
        compile_mode: str | None = None,
        channels_last: bool = True,
        attention: str | Attention = "materialized",
        auto_verify: bool = True,
        min_index_match: float = 0.99,
        max_rel_error: float = 1e-2,
        noise_factor: float = 1.5,
        index_slack: float = 0.02,
        verify_windows: int = 1,
        eager_numerics: bool = False,
    ) -> None:
        super().__init__()
        self.config = model.config
        self.reference = model
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        if isinstance(attention, str):
            if attention not in ATTENTION:
                raise ValueError(f"attention must be one of {sorted(ATTENTION)} or a callable, got {attention!r}")
            attention = ATTENTION[attention]
        # A side whose weights were dropped (the inference API's encoder-only tokenizers) gets no fast module.
        self.encoder = (FastEncoder(model, memory_format=memory_format, attention=attention)
                        if model.encoder is not None else None)
        self.decoder = (FastDecoder(model, memory_format=memory_format, attention=attention)
                        if model.decoder is not None else None)
        self.quantizer = model.quantizer
        self.compiled = compile
        self.compile_mode = compile_mode
        self.auto_verify = auto_verify
        self.min_index_match = min_index_match
        self.max_rel_error = max_rel_error
        self.noise_factor = noise_factor
        self.index_slack = index_slack
        self.verify_windows = verify_windows
        self.use_fast = True
        self.reports: list[VerifyReport] = []
        self._checked = {"encode": not auto_verify, "decode": not auto_verify}
        self._fns: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"encode": self.encoder, "decode": self.decoder}
        self._cudagraphs = False
        if compile:
            options = compile_options(compile_mode, eager_numerics)
            self._cudagraphs = bool(options.get("triton.cudagraphs"))
            for part, module in (("encode", self.encoder), ("decode", self.decoder)):
                if module is not None:
                    self._fns[part] = torch.compile(module, dynamic=False, fullgraph=True, options=options)
        param = next(model.parameters())
        self.device, self.dtype = param.device, param.dtype

    # ---------------------------------------------------------------------------------------------- internals
    def _run(self, part: str, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            if not self._cudagraphs:
                return self._fns[part](x)
            torch.compiler.cudagraph_mark_step_begin()
            return self._fns[part](x).clone()  # CUDA-graph outputs are overwritten by the next replay

    def _fall_back(self, message: str) -> None:
        warnings.warn(f"fast Cosmos tokenizer path disabled, using the plain eager networks: {message}", RuntimeWarning,
                      stacklevel=3)
        self.use_fast = False

    def _fast_or_fallback(self, part: str, x: torch.Tensor) -> torch.Tensor | None:
        """The fast result, checked once against eager when ``auto_verify``; ``None`` after a fallback."""
        if not self.use_fast:
            return None
        try:
            if not self._checked[part]:
                self._checked[part] = True
                out, report = self._verify_part(part, x)
                if not report.ok:
                    self._fall_back(report.message)
                    return None
                return out
            return self._run(part, x)
        except Exception as exc:  # a compile or kernel failure must not stop a long job
            self._fall_back(f"{type(exc).__name__}: {exc}")
            return None

    def _eager(self, part: str, model: CosmosTokenizer, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            if part == "encode":
                return model.encode_pre_quant(x)
            return model.decoder(model.post_quant_conv(x))

    def _float32_reference(self, part: str, x: torch.Tensor) -> torch.Tensor:
        """The plain networks in float32 (same weights, TF32 off) on ``x``: the yardstick for bf16 noise."""
        model = copy.deepcopy(self.reference).float()
        flags = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
        try:
            return self._eager(part, model, x.float())
        finally:
            torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = flags
            del model

    def _indices(self, h: torch.Tensor) -> torch.Tensor:
        return self.quantizer(h)[0]

    def _verify_part(self, part: str, x: torch.Tensor) -> tuple[torch.Tensor, VerifyReport]:
        """Run the fast path on all of ``x`` and the eager path on its first windows; compare (see module doc)."""
        n = min(self.verify_windows, x.shape[0])
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        start = time.perf_counter()
        out = self._run(part, x)
        ref = self._eager(part, self.reference, x[:n])
        discrete = part == "encode" and self.quantizer is not None
        err = relative_error(out[:n], ref)
        index_match = (self._indices(out[:n]) == self._indices(ref)).float().mean().item() if discrete else None
        ok = err <= self.max_rel_error and (index_match is None or index_match >= self.min_index_match)
        what = {"encode": "pre-quantization tensor" if discrete else "latent", "decode": "reconstruction"}[part]
        message = (f"{part}: {what} relative error vs eager {err:.2e} (limit {self.max_rel_error:.0e})"
                   + (f", indices equal on {index_match:.2%} (limit {self.min_index_match:.0%})" if discrete else ""))
        details: dict[str, Any] = {}
        if not ok and self.dtype in (torch.bfloat16, torch.float16):
            # Two low-precision evaluations that differ anywhere decorrelate to the level of the precision itself;
            # what matters is that the fast path is not further from the exact result than eager is.
            ref32 = self._float32_reference(part, x[:n])
            details = {"fast_vs_fp32": relative_error(out[:n], ref32), "eager_vs_fp32": relative_error(ref, ref32)}
            ok = details["fast_vs_fp32"] <= self.noise_factor * details["eager_vs_fp32"]
            message += (f"; vs float32: fast {details['fast_vs_fp32']:.2e}, eager {details['eager_vs_fp32']:.2e} "
                        f"(limit x{self.noise_factor})")
            if discrete:
                idx32 = self._indices(ref32)
                details["fast_index_match_fp32"] = (self._indices(out[:n]) == idx32).float().mean().item()
                details["eager_index_match_fp32"] = (self._indices(ref) == idx32).float().mean().item()
                ok = ok and details["fast_index_match_fp32"] >= details["eager_index_match_fp32"] - self.index_slack
                message += (f", indices equal to float32 on {details['fast_index_match_fp32']:.2%} (fast) / "
                            f"{details['eager_index_match_fp32']:.2%} (eager, slack {self.index_slack:.0%})")
            del ref32
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        message += f"; {n} window(s) of shape {tuple(x.shape[1:])}"
        report = VerifyReport(ok=ok, part=part, windows=n, rel_error=err, index_match=index_match,
                              seconds=time.perf_counter() - start, message=message, details=details)
        self.reports.append(report)
        return out, report

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(device=self.device, dtype=self.dtype)

    # ------------------------------------------------------------------------------------------------- API
    def verify(self, x: torch.Tensor | None = None, *, decode: bool = True) -> list[VerifyReport]:
        """Compare the fast and the eager path on ``x`` (default: one random window of a small valid shape).

        Use the job's own batch shape for ``x`` so the compiled graph that is checked is the one that will run.
        On failure the tokenizer warns and falls back to eager (``use_fast`` becomes ``False``). Returns the reports.
        """
        c = self.config
        if x is None:
            gen = torch.Generator().manual_seed(0)
            shape = ((1, 3, 1 + 2 * c.temporal_compression, 4 * c.spatial_compression, 4 * c.spatial_compression)
                     if c.is_video else (1, 3, 8 * c.spatial_compression, 8 * c.spatial_compression))
            x = torch.rand(shape, generator=gen) * 2 - 1
        x = self._input(x)
        c.check_input_shape(tuple(x.shape))
        reports = []
        try:
            pre, report = self._verify_part("encode", x)
            self._checked["encode"] = True
            reports.append(report)
            if decode:
                z = pre if self.quantizer is None else self.quantizer(pre)[1].to(self.dtype)
                _, report = self._verify_part("decode", z)
                self._checked["decode"] = True
                reports.append(report)
        except Exception as exc:
            self._fall_back(f"{type(exc).__name__}: {exc}")
            return reports
        failed = [r.message for r in reports if not r.ok]
        if failed:
            self._fall_back("; ".join(failed))
        return reports

    def encode_pre_quant(self, x: torch.Tensor) -> torch.Tensor:
        """``quant_conv(encoder(x))`` like :meth:`CosmosTokenizer.encode_pre_quant` (model dtype)."""
        self.config.check_input_shape(tuple(x.shape))
        x = self._input(x)
        out = self._fast_or_fallback("encode", x)
        if out is None:
            with torch.no_grad():
                out = self.reference.encode_pre_quant(x)
        return out

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Continuous: ``(latent,)``. Discrete: ``(indices int32, codes float32)`` (FSQ in float32)."""
        h = self.encode_pre_quant(x)
        if self.quantizer is None:
            return (h.contiguous(),)
        indices, codes = self.quantizer(h)
        return indices.contiguous(), codes.contiguous()

    def decode(self, latent_or_indices: torch.Tensor) -> torch.Tensor:
        """Latent (continuous) or integer indices (discrete) -> reconstruction, like :meth:`CosmosTokenizer.decode`."""
        z = latent_or_indices
        if self.quantizer is None:
            ndim = 5 if self.config.is_video else 4
            if z.ndim != ndim or z.shape[1] != self.config.latent_channels:
                raise ValueError(f"{self.config.family} decode takes a latent [B, {self.config.latent_channels}, "
                                 f"{'t, ' if self.config.is_video else ''}h, w], got shape {tuple(z.shape)}")
            return self._decode(self._input(z))
        if z.is_floating_point() or z.ndim != (4 if self.config.is_video else 3):
            raise ValueError(f"{self.config.family} decode takes integer indices, got {z.dtype} {tuple(z.shape)} "
                             "(use decode_codes for FSQ codes)")
        return self.decode_codes(self.quantizer.indices_to_codes(z.to(self.device)))

    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """Discrete only: FSQ codes ``[B, 6, (t), h, w]`` -> reconstruction."""
        if self.quantizer is None:
            raise TypeError(f"decode_codes is for discrete tokenizers; {self.config.family} decodes latents with decode()")
        return self._decode(self._input(codes))

    def _decode(self, z: torch.Tensor) -> torch.Tensor:
        out = self._fast_or_fallback("decode", z)
        if out is None:
            with torch.no_grad():
                out = self.reference.decoder(self.reference.post_quant_conv(z))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Autoencode: ``decode(encode(x)[0])``."""
        return self.decode(self.encode(x)[0])

    def cosmos_state_dict(self, part: str = "autoencoder"):
        """The weights in NVIDIA's key layout: those of the plain ``reference`` (the fast modules hold copies)."""
        return self.reference.cosmos_state_dict(part)

    def extra_repr(self) -> str:
        return (f"family={self.config.family}, dtype={self.dtype}, device={self.device}, compiled={self.compiled}, "
                f"use_fast={self.use_fast}")


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


def optimize(
    model: CosmosTokenizer,
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    compile: bool = True,
    compile_mode: str | None = None,
    channels_last: bool = True,
    attention: str | Attention = "materialized",
    auto_verify: bool = True,
    min_index_match: float = 0.99,
    max_rel_error: float = 1e-2,
    noise_factor: float = 1.5,
    index_slack: float = 0.02,
    verify_windows: int = 1,
    eager_numerics: bool = False,
    cudnn_benchmark: bool = True,
) -> FastCosmosTokenizer:
    """A :class:`FastCosmosTokenizer` with the weights of ``model``.

    ``dtype`` / ``device`` default to the model's; ``model`` itself is left untouched (a converted copy is made when
    they differ) and kept as the eager ``reference``. ``compile`` wraps the encoder and decoder in ``torch.compile``
    (``dynamic=False, fullgraph=True``; ``compile_mode`` e.g. ``"max-autotune-no-cudagraphs"`` or
    ``"reduce-overhead"`` for CUDA graphs). ``attention``: ``"materialized"`` (default: logits from a tensor-core
    GEMM, stored in float16 for bf16 on CUDA, softmax in float32, chunked; fastest for the head dim 512 of the mid
    blocks), ``"materialized-fp32"`` (the same with float32 logits) or ``"sdpa"``, or a callable
    ``(q, k, v, is_causal) -> out``. ``eager_numerics`` keeps the bf16 rounding of every intermediate that the eager
    networks round (Inductor's ``emulate_precision_casts``); off by default, as fused kernels that keep float32
    intermediates are closer to the exact result and no reordering gets bitwise eager results anyway (see
    :class:`FastCosmosTokenizer`). ``cudnn_benchmark``
    turns on ``torch.backends.cudnn.benchmark`` (process-wide) on CUDA. On CPU use ``compile=False``.

    Example::

        fast = optimize(nct.build_tokenizer(cfg), dtype=torch.bfloat16, device="cuda")
        indices, codes = fast.encode(video)        # [8, 3, 17, 720, 1280]; first call checks against eager
    """
    if not isinstance(model, CosmosTokenizer):
        raise TypeError(f"optimize takes a CosmosTokenizer, got {type(model).__name__}")
    param = next(model.parameters())
    dtype = dtype or param.dtype
    device = torch.device(device) if device is not None else param.device
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    if (param.dtype, param.device) != (dtype, device):
        model = copy.deepcopy(model).to(device=device, dtype=dtype)
    model = model.eval().requires_grad_(False)
    if cudnn_benchmark and device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    return FastCosmosTokenizer(
        model,
        compile=compile,
        compile_mode=compile_mode,
        channels_last=channels_last,
        attention=attention,
        auto_verify=auto_verify,
        min_index_match=min_index_match,
        max_rel_error=max_rel_error,
        noise_factor=noise_factor,
        index_slack=index_slack,
        verify_windows=verify_windows,
        eager_numerics=eager_numerics,
    )
