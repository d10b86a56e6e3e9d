"""Fast inference path for the Cosmos tokenizer networks (CUDA, bf16, channels-last, ``torch.compile``).

::

    from nemo_cosmos_tokenizer.fast import optimize
    fast = optimize(model, dtype=torch.bfloat16, device="cuda")   # same weights, same encode/decode API
    indices, codes = fast.encode(x)                                # x: [B, 3, 17, H, W]; several windows per call

The first ``encode`` / ``decode`` is checked against the plain eager networks and falls back to them (with a
warning) if the results disagree; :meth:`FastCosmosTokenizer.verify` runs that check explicitly. The fast modules
come from one conversion table (:data:`FAST_MODULES`, :mod:`.convert`), which raises on a module it does not know;
the options are one frozen :class:`FastOptions`. A fast tokenizer streams like the plain one
(:mod:`nemo_cosmos_tokenizer.networks.streaming`).
See ``BENCHMARKS.md`` for measured speeds.

FP8 convolutions (opt-in, Ada / Hopper; issue 24)::

    calib = calibrate_fp8(model, windows)                      # scales of the mapped convs, from a few windows
    save_fp8_calibration(calib, checkpoint_dir)                # fp8_scales.safetensors beside the weights
    print(format_fp8_plan(fp8_layer_plan(model)))               # which convs go FP8 (FastOptions defaults)
    fast = optimize(model, precision="fp8", fp8_scales=checkpoint_dir, dtype=torch.bfloat16, device="cuda")

The kernels and what was found about them: :mod:`.fp8_kernels`; numerics: :mod:`.fp8_numerics`; quality against
float32: :func:`measure_fp8_quality`.
"""

from .convert import FAST_MODULES, UnsupportedModuleError
from .attention import sdpa
from .fp8_calibration import Fp8Calibration, calibrate_fp8, load_fp8_calibration, save_fp8_calibration
from .fp8_numerics import Fp8UnsupportedError
from .fp8_plan import Fp8LayerPlan, format_fp8_plan, fp8_layer_plan
from .fp8_quality import Fp8Quality, measure_fp8_quality
from .options import FastOptions
from .tokenizer import FastCosmosTokenizer, VerifyReport, optimize, relative_error

__all__ = [
    "FAST_MODULES",
    "FastCosmosTokenizer",
    "FastOptions",
    "Fp8Calibration",
    "Fp8LayerPlan",
    "Fp8Quality",
    "Fp8UnsupportedError",
    "UnsupportedModuleError",
    "VerifyReport",
    "calibrate_fp8",
    "format_fp8_plan",
    "fp8_layer_plan",
    "load_fp8_calibration",
    "measure_fp8_quality",
    "optimize",
    "relative_error",
    "save_fp8_calibration",
    "sdpa",
]
