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
"""

from .convert import FAST_MODULES, UnsupportedModuleError
from .attention import sdpa
from .options import FastOptions
from .tokenizer import FastCosmosTokenizer, VerifyReport, optimize, relative_error

__all__ = [
    "FAST_MODULES",
    "FastCosmosTokenizer",
    "FastOptions",
    "UnsupportedModuleError",
    "VerifyReport",
    "optimize",
    "relative_error",
    "sdpa",
]
