"""Statistics of discrete tokens: codebook usage, entropy / perplexity, and per-level FSQ usage.

What an autoregressive-training team checks before spending GPU-months on a corpus: how many of the 64,000 codes
occur at all, how evenly (entropy of the index distribution, and its perplexity ``2 ** entropy``: the number of
equally likely codes with the same entropy), and whether a single FSQ channel collapses (per-level usage of the
``levels = (8, 8, 8, 5, 5, 5)`` digits; channel 0 is the least significant digit of an index).

Accumulate with :class:`TokenCounter` (``add`` index arrays of any shape), then :meth:`TokenCounter.summary`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

__all__ = ["TokenCounter", "fsq_digits"]


def fsq_digits(indices: np.ndarray, levels: Sequence[int]) -> np.ndarray:
    """FSQ indices ``[...]`` -> per-channel digits ``[..., D]`` (``index = sum(digit_d * prod(levels[:d]))``)."""
    indices = np.asarray(indices, dtype=np.int64)
    digits = np.empty(indices.shape + (len(levels),), dtype=np.int64)
    rest = indices
    for d, level in enumerate(levels):
        digits[..., d] = rest % level
        rest = rest // level
    return digits


def _entropy_bits(counts: np.ndarray) -> float:
    total = counts.sum()
    if total == 0:
        return 0.0
    p = counts[counts > 0].astype(np.float64) / float(total)
    return float(-(p * np.log2(p)).sum())


@dataclass
class TokenCounter:
    """Counts of every code of a codebook of ``prod(levels)`` entries."""

    levels: tuple[int, ...]
    counts: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.levels = tuple(int(v) for v in self.levels)
        if not self.levels or any(v < 2 for v in self.levels):
            raise ValueError(f"FSQ levels must all be >= 2, got {self.levels}")
        self.counts = np.zeros(self.codebook_size, dtype=np.int64)

    @property
    def codebook_size(self) -> int:
        return int(np.prod(self.levels))

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def add(self, indices: np.ndarray) -> None:
        """Count the FSQ indices of an array of any shape (values in ``[0, codebook_size)``)."""
        flat = np.asarray(indices).reshape(-1).astype(np.int64)
        if flat.size == 0:
            return
        low, high = int(flat.min()), int(flat.max())
        if low < 0 or high >= self.codebook_size:
            raise ValueError(f"token indices must lie in [0, {self.codebook_size}), got values in [{low}, {high}]")
        self.counts += np.bincount(flat, minlength=self.codebook_size)

    def level_counts(self) -> list[np.ndarray]:
        """Counts of each digit value of each FSQ channel: ``levels[d]`` counts for channel ``d``."""
        digits = fsq_digits(np.arange(self.codebook_size), self.levels)  # [K, D]
        return [np.bincount(digits[:, d], weights=self.counts, minlength=level).astype(np.int64)
                for d, level in enumerate(self.levels)]

    def summary(self, top: int = 10) -> dict:
        """Every number as JSON-ready values.

        ``used_codes`` (codes seen at least once) and ``usage`` (their share of the codebook); ``entropy_bits`` of
        the index distribution, ``max_entropy_bits = log2(codebook_size)``, ``normalized_entropy``, ``perplexity``
        (``2 ** entropy``); ``top_codes`` (the ``top`` most frequent ``[code, count]``) and ``top_share`` (their
        share of all tokens); ``levels``: per FSQ channel its ``counts`` per digit value, ``used`` values, entropy
        and perplexity.
        """
        total = self.total
        entropy = _entropy_bits(self.counts)
        max_entropy = math.log2(self.codebook_size)
        order = np.argsort(-self.counts, kind="stable")[:top]
        order = [int(i) for i in order if self.counts[i] > 0]
        levels = []
        for d, counts in enumerate(self.level_counts()):
            h = _entropy_bits(counts)
            levels.append({
                "channel": d,
                "levels": self.levels[d],
                "counts": counts.tolist(),
                "used": int((counts > 0).sum()),
                "entropy_bits": h,
                "max_entropy_bits": math.log2(self.levels[d]),
                "perplexity": 2.0 ** h,
            })
        return {
            "tokens": total,
            "codebook_size": self.codebook_size,
            "fsq_levels": list(self.levels),
            "used_codes": int((self.counts > 0).sum()),
            "usage": float((self.counts > 0).sum() / self.codebook_size),
            "entropy_bits": entropy,
            "max_entropy_bits": max_entropy,
            "normalized_entropy": entropy / max_entropy,
            "perplexity": 2.0 ** entropy,
            "top_codes": [[i, int(self.counts[i])] for i in order],
            "top_share": float(sum(self.counts[i] for i in order) / total) if total else 0.0,
            "levels": levels,
        }
