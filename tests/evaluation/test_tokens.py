"""Discrete-token statistics: counts, entropy / perplexity, and per-level FSQ usage against the quantizer."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nemo_cosmos_tokenizer.evaluation import TokenCounter
from nemo_cosmos_tokenizer.evaluation.tokens import fsq_digits
from nemo_cosmos_tokenizer.quantizers import FSQuantizer

LEVELS = (8, 8, 8, 5, 5, 5)


def test_digits_are_the_quantizer_codes_of_every_index():
    """All 64,000 indices: digit d of an index is the FSQ code of channel d, shifted to 0..L-1."""
    indices = np.arange(64000)
    digits = fsq_digits(indices, LEVELS)  # [K, 6]
    codes = FSQuantizer(LEVELS).indices_to_codes(torch.from_numpy(indices)).float().numpy()  # [K, 6] in [-1, 1]
    half = np.array([level // 2 for level in LEVELS], dtype=np.float64)
    # code = (digit - half) / half for every channel (even and odd levels)
    np.testing.assert_array_equal(np.round(codes * half + half).astype(np.int64), digits)
    assert len(np.unique(digits, axis=0)) == 64000


def test_counter_statistics():
    counter = TokenCounter(LEVELS)
    counter.add(np.array([[0, 0, 1], [1, 63999, 0]]))
    counter.add(np.array([7]))
    summary = counter.summary(top=2)
    assert summary["tokens"] == 7 and summary["used_codes"] == 4 and summary["codebook_size"] == 64000
    p = np.array([3, 2, 1, 1]) / 7
    entropy = float(-(p * np.log2(p)).sum())
    assert summary["entropy_bits"] == pytest.approx(entropy, rel=1e-12)
    assert summary["perplexity"] == pytest.approx(2**entropy, rel=1e-12)
    assert summary["max_entropy_bits"] == pytest.approx(math.log2(64000))
    assert summary["top_codes"] == [[0, 3], [1, 2]] and summary["top_share"] == pytest.approx(5 / 7)
    channel0 = summary["levels"][0]
    # channel 0 (least significant) of 0, 0, 1, 1, 63999, 0, 7: digits 0, 0, 1, 1, 63999 % 8 = 7, 0, 7
    assert channel0["counts"] == [3, 2, 0, 0, 0, 0, 0, 2] and channel0["used"] == 3
    assert summary["levels"][5]["counts"] == [6, 0, 0, 0, 1]  # 63999 // 12800 = 4


def test_uniform_usage_has_full_perplexity():
    counter = TokenCounter((4, 3))
    counter.add(np.arange(12).repeat(5))
    summary = counter.summary()
    assert summary["usage"] == 1.0 and summary["perplexity"] == pytest.approx(12)
    assert summary["normalized_entropy"] == pytest.approx(1.0)
    assert all(level["perplexity"] == pytest.approx(level["levels"]) for level in summary["levels"])


def test_out_of_range_indices_are_rejected():
    counter = TokenCounter(LEVELS)
    with pytest.raises(ValueError, match=r"\[0, 64000\)"):
        counter.add(np.array([64000]))
    with pytest.raises(ValueError, match="levels"):
        TokenCounter((8, 1))
