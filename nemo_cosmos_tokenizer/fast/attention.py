"""Attention kernels of the fast path: ``(q, k, v, is_causal) -> out`` on ``[batch, heads, seq, dim]``, by name in
:data:`ATTENTION` (``FastOptions(attention=...)``); the fast attention layers of :mod:`.layers` call one of them."""

from __future__ import annotations

import functools
from typing import Callable

import torch
import torch.nn.functional as F

__all__ = ["ATTENTION", "Attention", "materialized", "sdpa"]


#: Signature of the attention kernel: ``(q, k, v, is_causal) -> out``, all ``[batch, heads, seq, dim]``.
Attention = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, bool], torch.Tensor]


def sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, is_causal: bool) -> torch.Tensor:
    """``F.scaled_dot_product_attention`` (a fused kernel where one exists for the shape)."""
    return F.scaled_dot_product_attention(q, k, v, is_causal=is_causal)


def materialized(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, is_causal: bool,
                 max_score_bytes: int = 1 << 30, fp16_logits: bool = True) -> torch.Tensor:
    """Single-head attention with the score matrix written out, in chunks of at most ``max_score_bytes``.

    For the mid blocks' head dim 512, where no flash kernel exists and the memory-efficient kernel runs at ~110
    TFLOP/s on an H100: scores ``q k^T`` come from a tensor-core GEMM with float32 accumulation, the softmax is one
    fused pass (float32 arithmetic) that writes ``P`` in the input dtype, and ``P v`` is a second GEMM. The logits
    are written in float16 for bf16 inputs on CUDA (``fp16_logits``; else float32): the GEMM and the softmax pass are
    bound by that traffic (830 MB of float32 logits per 14,400-position frame). The bf16 -> fp16 casts of ``q`` and
    ``k`` are exact (within fp16's range), the unscaled logits are rounded to 2^-11 relative (finer than the bf16
    rounding of ``P``); fp16 overflows only for ``|q.k| > 65,504`` (scaled logits above ~2,900 at D = 512, far into
    saturation).
    Short sequences (the causal temporal attention over a window's few latent frames) are computed directly with
    element-wise products and sums in float32 (one fused kernel each under ``torch.compile``; the fused SDPA
    kernels waste most of their tiles on a sequence of 3); other short ones use :func:`sdpa`.
    ``[B, H, L, D]`` -> ``[B, H, L, D]``.
    """
    b, h, length, d = q.shape
    if length <= 16:
        return _short_attention(q, k, v, is_causal)
    if is_causal or length < 1024:
        return sdpa(q, k, v, is_causal)
    scale = d ** -0.5
    g = b * h
    q3, k3, v3 = q.reshape(g, length, d), k.reshape(g, length, d), v.reshape(g, length, d)
    fp16_logits = fp16_logits and q.is_cuda and q.dtype == torch.bfloat16
    row_bytes = 4 * length  # the budget counts float32 logits (one 14,400-position frame per chunk either way)
    per_chunk = max(1, max_score_bytes // row_bytes)  # query rows per chunk, over all [G, L] rows
    outs = []
    if per_chunk >= length:  # whole frames per chunk
        frames = _even_chunk(g, max(1, per_chunk // length))
        for i in range(0, g, frames):
            outs.append(_attend(q3[i:i + frames], k3[i:i + frames], v3[i:i + frames], scale, fp16_logits))
        out = torch.cat(outs, dim=0) if len(outs) > 1 else outs[0]
    else:  # row chunks of one frame at a time
        per_chunk = _even_chunk(length, per_chunk)
        for i in range(g):
            rows = [_attend(q3[i:i + 1, r:r + per_chunk], k3[i:i + 1], v3[i:i + 1], scale, fp16_logits)
                    for r in range(0, length, per_chunk)]
            outs.append(torch.cat(rows, dim=1))
        out = torch.cat(outs, dim=0)
    return out.reshape(b, h, length, d)


def _even_chunk(total: int, most: int) -> int:
    """A chunk size of at most ``most`` that cuts ``total`` into equal chunks where that costs at most twice the
    chunks: the largest divisor of ``total`` from ``most / 2`` to ``most``, else ``ceil(total / n)`` for the fewest
    chunks ``n`` (the last one smaller).

    Why: chunks of ``most`` leave a smaller last chunk, a GEMM of another shape, which can run another kernel with
    other rounding; then a window's tokens can depend on its place in the batch. A batch of 8 windows of 3 latent
    frames (24 frames, 20 per chunk) put the batch's last window alone with one frame of the window before it in a
    GEMM of 4. Equal chunks (2 x 12 there) give every frame the same GEMM shape. That alone did not make tokens
    independent of the batch position on an H100: Inductor also fused the two chunks' ops differently, which
    :attr:`.options.FastOptions.eager_numerics` removes (BENCHMARKS.md, run 10).
    """
    if most >= total:
        return total
    for divisor in range(most, (most + 1) // 2 - 1, -1):
        if total % divisor == 0:
            return divisor
    n = -(-total // most)
    return -(-total // n)


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float,
            fp16_logits: bool = False) -> torch.Tensor:
    """``softmax(q k^T * scale) v`` for ``[G, Lq, D]`` x ``[G, Lk, D]``: logits accumulated in float32 and stored in
    float32 (float16 with ``fp16_logits``, see :func:`materialized`), softmax in float32."""
    kt = k.transpose(1, 2)
    if fp16_logits:  # bf16 -> fp16 is exact within fp16's range; fp16 tensor cores, float32 accumulation
        s = torch.bmm(q.half(), kt.half())
    elif q.dtype == torch.float32:
        s = torch.bmm(q, kt)
    elif q.is_cuda:
        s = torch.bmm(q, kt, out_dtype=torch.float32)  # bf16 tensor cores, float32 result
    else:
        s = torch.bmm(q.float(), kt.float())
    s = s.float() * scale
    # Unnormalised probabilities (written once, in the input dtype) and their row sums come from one pass over the
    # logits after the max; the division moves to the [Lq, D] output. Hand-rolled, so no pass rewrites it to SDPA.
    e = torch.exp(s - s.amax(dim=-1, keepdim=True))
    out = torch.bmm(e.to(v.dtype), v) / e.sum(dim=-1, keepdim=True)
    return out.to(v.dtype)


def _short_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, is_causal: bool) -> torch.Tensor:
    """Attention over a short sequence (``L <= 16``) by broadcasting, in float32: ``[B, H, L, D]`` -> same."""
    length, d = q.shape[-2], q.shape[-1]
    s = (q.float().unsqueeze(-2) * k.float().unsqueeze(-3)).sum(-1) * d ** -0.5  # [B, H, Lq, Lk]
    if is_causal:
        mask = torch.ones(length, length, dtype=torch.bool, device=q.device).tril()
        s = s.masked_fill(~mask, float("-inf"))
    a = torch.softmax(s, dim=-1)
    out = (a.unsqueeze(-1) * v.float().unsqueeze(-3)).sum(-2)  # [B, H, Lq, D]
    return out.to(v.dtype)


#: Attention kernels by name (``optimize(attention=...)``).
ATTENTION: dict[str, Attention] = {
    "sdpa": sdpa,
    "materialized": materialized,
    "materialized-fp32": functools.partial(materialized, fp16_logits=False),  # float32 logits (the first version)
}
