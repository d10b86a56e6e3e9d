"""CausalVideoTokenizer encode/decode(mode="streaming") and encode_uint8(mode="streaming") equal whole-clip results."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from conformance_helpers import load_conformance_model
from tolerances import reorder_atol

from nemo_cosmos_tokenizer import CausalVideoTokenizer
from nemo_cosmos_tokenizer.inference import preprocess as pp


def _tokenizer(case: str) -> CausalVideoTokenizer:
    network = copy.deepcopy(load_conformance_model(case))
    return CausalVideoTokenizer.from_network(network, parts=("autoencoder",), device="cpu", dtype="float32")


@pytest.mark.parametrize("case", ["CV8x8x8", "DV4x8x8"])
def test_tensor_api_streaming_equals_windows(case):
    tok = _tokenizer(case)
    t = tok.temporal_multiple
    x = torch.rand(1, 3, 1 + 5 * t, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    whole = tok.encode(x)  # default mode="windows": x is one window
    streamed = tok.encode(x, mode="streaming", chunk_frames=2 * t)
    assert len(streamed) == len(whole)
    if len(whole) == 2:
        assert torch.equal(streamed[0], whole[0])
    # Streaming only re-cuts the sums: rounding differences, bounded from the conformance networks' reductions (at
    # most 50 convolutions of at most 1728 terms) and the compared magnitudes (tests/tolerances.py).
    torch.testing.assert_close(streamed[-1], whole[-1], atol=reorder_atol(whole[-1], fan_in=1728, layers=50), rtol=0)
    recon = tok.decode(whole[0])
    torch.testing.assert_close(tok.decode(whole[0], mode="streaming", chunk_latent_frames=2), recon,
                               atol=reorder_atol(recon, fan_in=1728, layers=50), rtol=0)
    with pytest.raises(ValueError, match='"windows" or "streaming"'):
        tok.encode(x, mode="whole")
    with pytest.raises(ValueError, match=f"1 \\+ k\\*{t}|1 \\+ k \\* {t}|frames"):
        tok.encode(x[:, :, :-1], mode="streaming")


def test_encode_uint8_streaming_is_one_causal_sequence():
    tok = _tokenizer("DV8x8x8")
    rng = np.random.default_rng(0)
    video = rng.integers(0, 256, size=(1, 30, 30, 27, 3), dtype=np.uint8)  # odd sizes: padded in time and space
    indices, codes = tok.encode_uint8(video, mode="streaming", chunk_frames=8)
    padded, _ = pp.pad_spatial(pp.pad_frames(torch.from_numpy(video), 8), 8)
    ref_indices, ref_codes = tok.encode(pp.to_unit_range(padded))
    assert indices.shape == (1, 1 + 29 // 8 + 1, 4, 4) and torch.equal(indices, ref_indices)
    torch.testing.assert_close(codes, ref_codes)
