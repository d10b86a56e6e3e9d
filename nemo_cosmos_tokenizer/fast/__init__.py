"""Fast inference path for the Cosmos tokenizer networks (CUDA, bf16, channels-last, ``torch.compile``).

::

    from nemo_cosmos_tokenizer.fast import optimize
    fast = optimize(model, dtype=torch.bfloat16, device="cuda")   # same weights, same encode/decode API
    indices, codes = fast.encode(x)                                # x: [B, 3, 17, H, W]; several windows per call

The first ``encode`` / ``decode`` is checked against the plain eager networks and falls back to them (with a
warning) if the results disagree; :meth:`FastCosmosTokenizer.verify` runs that check explicitly.
See ``BENCHMARKS.md`` for measured speeds.
"""

from .layers import sdpa
from .tokenizer import FastCosmosTokenizer, VerifyReport, optimize, relative_error

__all__ = ["FastCosmosTokenizer", "VerifyReport", "optimize", "relative_error", "sdpa"]
