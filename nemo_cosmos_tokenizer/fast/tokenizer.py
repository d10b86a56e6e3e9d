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

**Streaming**: ``encode_pre_quant(x, cache=...)`` / ``decode_latent(z, cache=...)`` take a
:class:`~nemo_cosmos_tokenizer.modules.cache.StreamCache` like the plain model, so
:mod:`nemo_cosmos_tokenizer.networks.streaming` drives a fast tokenizer too. A stream runs the fast layers eagerly
(uncompiled: every chunk shape would compile anew, and the cache is Python state the compiled graphs do not take).
Its path is chosen at its first chunk, which is checked against the plain network like a first ``encode`` (both
write their own entries into the cache; the losing side's are dropped); a failure there falls back to eager for
the whole stream, while a failure in a later chunk raises (the stream's state is the fast layers').
"""

from __future__ import annotations

import copy
import time
import warnings
from dataclasses import replace
from typing import Any, Callable

import torch
from torch import nn

from ..modules.cache import StreamCache
from ..networks.tokenizer import CosmosTokenizer
from .convert import convert_tokenizer
from .fp8 import Fp8Conversion
from .fp8_calibration import Fp8Calibration, load_fp8_calibration
from .fp8_numerics import check_fp8_support
from .options import FastOptions, compile_options
from .verify import VerifyReport, compare_with_eager, relative_error

# VerifyReport, compile_options and relative_error live in .verify / .options; importable from here as before.
__all__ = ["FP8_ERROR_RATIO", "FastCosmosTokenizer", "VerifyReport", "compile_options", "optimize", "relative_error"]

#: How much larger an E4M3 rounding error is than a bf16 one: 2^-4 vs 2^-8 relative (3 vs 7 stored mantissa bits).
FP8_ERROR_RATIO = 16.0


class FastCosmosTokenizer(nn.Module):
    """Fast encode / decode with the API of :class:`CosmosTokenizer` (build it with :func:`optimize`).

    Inputs are cast to the tokenizer's dtype and moved to its device at the boundary. Outputs match the plain
    model: continuous ``encode`` -> ``(latent,)`` ``[B, C, t, h, w]`` in the model dtype; discrete -> ``(indices int32
    [B, t, h, w], codes float32 [B, 6, t, h, w])``; ``decode`` -> ``[B, 3, T, H, W]`` in the model dtype.
    Every new input shape is compiled once (``dynamic=False``); keep the batch shape fixed in long jobs.
    """

    def __init__(self, model: CosmosTokenizer, options: FastOptions = FastOptions(),
                 fp8_calibration: Fp8Calibration | None = None) -> None:
        super().__init__()
        self.config = model.config
        self.reference = model
        self.options = options
        self.fp8_layers: list[str] = []
        hook = None
        if options.precision == "fp8":
            param = next(model.parameters())
            check_fp8_support(options.fp8_kernel, param.device)  # refuses with the way out
            if options.auto_verify and param.dtype not in (torch.bfloat16, torch.float16):
                raise ValueError("precision='fp8' is checked against eager bf16 (its bar: no further from float32 "
                                 f"than eager bf16), and a {param.dtype} model has no such baseline: use "
                                 "dtype=torch.bfloat16, or auto_verify=False (e.g. to study FP8 numerics on a CPU)")
            if fp8_calibration is None:
                if options.fp8_scales is None:
                    raise ValueError("precision='fp8' needs calibration scales: FastOptions.fp8_scales (a file from "
                                     "save_fp8_calibration) or optimize(..., fp8_calibration=calibrate_fp8(model, "
                                     "windows))")
                fp8_calibration = load_fp8_calibration(options.fp8_scales)
            hook = Fp8Conversion(model, fp8_calibration, options.fp8_kernel)
        # A side whose weights were dropped (the inference API's encoder-only tokenizers) gets no fast module.
        self.encoder, self.decoder = convert_tokenizer(model, options, hook)
        if hook is not None:
            self.fp8_layers = hook.converted
        self.quantizer = model.quantizer
        self.compiled = options.compile
        self.use_fast = True
        self.reports: list[VerifyReport] = []
        self._checked = {"encode": not options.auto_verify, "decode": not options.auto_verify}
        self._fns: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"encode": self.encoder, "decode": self.decoder}
        self._cudagraphs = False
        if options.compile:
            compiler_options = compile_options(options.compile_mode, options.eager_numerics)
            self._cudagraphs = bool(compiler_options.get("triton.cudagraphs"))
            for part, module in (("encode", self.encoder), ("decode", self.decoder)):
                if module is not None:
                    self._fns[part] = torch.compile(module, dynamic=False, fullgraph=True, options=compiler_options)
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

    def _eager(self, part: str, model: CosmosTokenizer, x: torch.Tensor,
               cache: StreamCache | None = None) -> torch.Tensor:
        with torch.no_grad():
            if part == "encode":
                return model.encode_pre_quant(x, cache=cache)
            return model.decode_latent(x, cache=cache)

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

    def _verify_part(self, part: str, x: torch.Tensor,
                     cache: StreamCache | None = None) -> tuple[torch.Tensor, VerifyReport]:
        """Run the fast path on all of ``x`` and the eager path on its first windows; compare (see module doc).

        With a stream ``cache`` (``x`` is a stream's first chunk) both run on all of ``x`` and keep their state in
        it, so the stream can go on with either; the caller drops the entries of the side it does not keep."""
        n = min(self.options.verify_windows, x.shape[0])
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        start = time.perf_counter()
        if cache is None:
            out = self._run(part, x)
            ref = self._eager(part, self.reference, x[:n])
        else:
            with torch.no_grad():
                out = self._fast_module(part)(x, cache)
            ref_all = self._eager(part, self.reference, x, cache)
            ref = ref_all[:n]
        discrete = part == "encode" and self.quantizer is not None
        fp8 = self.options.precision == "fp8"
        low_precision = fp8 or self.dtype in (torch.bfloat16, torch.float16)
        report = compare_with_eager(
            part, out[:n], ref, self.options, indices=self._indices if discrete else None,
            float32_reference=(lambda: self._float32_reference(part, x[:n])) if low_precision else None,
            # E4M3 rounds to 4 significant bits where bf16 keeps 8: each rounding error is 2^4 times larger, so the
            # FP8 path's error against float32 is judged against 16x eager bf16's; the index bar stays as it is.
            noise_factor=self.options.noise_factor * (FP8_ERROR_RATIO if fp8 else 1.0),
        )
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        report = replace(report, seconds=time.perf_counter() - start,
                         message=report.message + f"; {n} window(s) of shape {tuple(x.shape[1:])}")
        self.reports.append(report)
        return (out if cache is None or report.ok else ref_all), report

    def _fast_module(self, part: str) -> nn.Module:
        return self.encoder if part == "encode" else self.decoder

    def _stream(self, part: str, x: torch.Tensor, cache: StreamCache) -> torch.Tensor:
        """The next chunk of a stream (see the module docstring): fast or eager, chosen at the first chunk."""
        fast = self._fast_module(part)
        side = self.reference.encoder if part == "encode" else self.reference.decoder
        path = cache.get(fast)  # None: first chunk; True: fast; False: eager
        if path is not None:
            if not path:
                return self._eager(part, self.reference, x, cache)
            with torch.no_grad():
                return fast(x, cache)  # a failure here raises: the stream's state is the fast layers'
        if self.use_fast:
            try:
                if not self._checked[part]:
                    self._checked[part] = True
                    out, report = self._verify_part(part, x, cache)
                    if not report.ok:  # out is eager's result, whose state is in the cache too
                        self._fall_back(report.message)
                        cache.discard(fast.modules())
                        cache.set(fast, False)
                        return out
                else:
                    with torch.no_grad():
                        out = fast(x, cache)
                cache.discard(side.modules())
                cache.set(fast, True)
                return out
            except Exception as exc:  # a kernel failure must not stop a long job: eager from this first chunk on
                self._fall_back(f"{type(exc).__name__}: {exc}")
        cache.discard(fast.modules())
        cache.discard(side.modules())  # a fresh eager start (a failed check may have left some state)
        cache.set(fast, False)
        return self._eager(part, self.reference, x, cache)

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

    def encode_pre_quant(self, x: torch.Tensor, cache: StreamCache | None = None) -> torch.Tensor:
        """``quant_conv(encoder(x))`` like :meth:`CosmosTokenizer.encode_pre_quant` (model dtype); with a stream
        ``cache``, ``x`` is the next chunk of a longer clip."""
        if cache is not None:
            return self._stream("encode", self._input(x), cache)
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

    def decode_latent(self, z: torch.Tensor, cache: StreamCache | None = None) -> torch.Tensor:
        """The input of ``post_quant_conv`` (a continuous latent or FSQ codes) -> reconstruction, unchecked, like
        :meth:`CosmosTokenizer.decode_latent`; with a stream ``cache``, ``z`` holds the next latent frames."""
        z = self._input(z)
        return self._decode(z) if cache is None else self._stream("decode", z, cache)

    def _decode(self, z: torch.Tensor) -> torch.Tensor:
        out = self._fast_or_fallback("decode", z)
        if out is None:
            with torch.no_grad():
                out = self.reference.decode_latent(z)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Autoencode: ``decode(encode(x)[0])``."""
        return self.decode(self.encode(x)[0])

    def cosmos_state_dict(self, part: str = "autoencoder"):
        """The weights in NVIDIA's key layout: those of the plain ``reference`` (the fast modules hold copies)."""
        return self.reference.cosmos_state_dict(part)

    def extra_repr(self) -> str:
        return (f"family={self.config.family}, dtype={self.dtype}, device={self.device}, compiled={self.compiled}, "
                f"use_fast={self.use_fast}, precision={self.options.precision}"
                + (f" ({len(self.fp8_layers)} FP8 convolutions, {self.options.fp8_kernel})" if self.fp8_layers else ""))


def optimize(
    model: CosmosTokenizer,
    options: FastOptions | None = None,
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    fp8_calibration: Fp8Calibration | None = None,
    **overrides: Any,
) -> FastCosmosTokenizer:
    """A :class:`FastCosmosTokenizer` with the weights of ``model``.

    ``options`` (a :class:`FastOptions`; default ``FastOptions()``) says how it is built and checked; keywords
    override its fields (``optimize(model, compile=False)``); an unknown keyword raises ``TypeError``. ``dtype`` /
    ``device`` default to the model's; ``model`` itself is left untouched (a converted copy is made when they differ)
    and kept as the eager ``reference``. Raises
    :class:`~nemo_cosmos_tokenizer.fast.convert.UnsupportedModuleError` when the model holds a module type the fast
    path has no conversion for. On CPU use ``compile=False``. ``precision="fp8"`` needs scales: ``fp8_calibration``
    (from :func:`~nemo_cosmos_tokenizer.fast.fp8_calibration.calibrate_fp8`) or the ``fp8_scales`` file; it raises
    :class:`~nemo_cosmos_tokenizer.fast.fp8_numerics.Fp8UnsupportedError` where the GPU or the kernel library cannot
    run FP8.

    Example::

        fast = optimize(nct.build_tokenizer(cfg), dtype=torch.bfloat16, device="cuda")
        indices, codes = fast.encode(video)        # [8, 3, 17, 720, 1280]; first call checks against eager
    """
    if not isinstance(model, CosmosTokenizer):
        raise TypeError(f"optimize takes a CosmosTokenizer, got {type(model).__name__}")
    options = options or FastOptions()
    unknown = sorted(set(overrides) - set(FastOptions.field_names()))
    if unknown:
        raise TypeError(f"optimize() got unknown option(s) {unknown}; FastOptions has {list(FastOptions.field_names())}")
    options = replace(options, **overrides)
    param = next(model.parameters())
    dtype = dtype or param.dtype
    device = torch.device(device) if device is not None else param.device
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    if (param.dtype, param.device) != (dtype, device):
        model = copy.deepcopy(model).to(device=device, dtype=dtype)
    model = model.eval().requires_grad_(False)
    if options.cudnn_benchmark and device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    return FastCosmosTokenizer(model, options, fp8_calibration)
