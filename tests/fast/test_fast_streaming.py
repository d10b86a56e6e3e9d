"""A fast tokenizer streams (``networks.streaming`` with ``fast.optimize(...)``): CPU, float32, eager fast layers.

Tolerance: the fast layers compute the plain function in another summation order (folded channels-last convs, fused
q/k/v, float32 norm statistics). In float32 each reordering changes a result by a few units of 2^-24 relative; over
the ~40 layers of a network that stays below 1e-5 relative (measured: ~1e-6), the bound tests/fast/test_fast.py uses
for whole clips (2e-5). A structural streaming error (a wrong or missing cached frame, a wrong stride phase) changes
the latent frames after the first chunk by O(1) relative, far above it.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from conformance_helpers import load_conformance_model

from nemo_cosmos_tokenizer.fast import FastOptions, UnsupportedModuleError, optimize, relative_error
from nemo_cosmos_tokenizer.modules.attention import CausalTemporalAttnBlock3d
from nemo_cosmos_tokenizer.networks.streaming import StreamingDecoder, StreamingEncoder, stream_decode

REL_TOL = 2e-5
CASES = ["CV4x8x8", "CV8x8x8", "DV8x16x16"]


def _clip(config, latent_frames: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t, s = config.temporal_compression, config.spatial_compression
    return torch.rand(2, 3, 1 + (latent_frames - 1) * t, 2 * s, 3 * s, generator=g) * 2 - 1  # [B, 3, T, H, W]


def _stream_pre_quant(model, x: torch.Tensor, chunk_frames: int, max_context_frames: int | None = None) -> torch.Tensor:
    enc = StreamingEncoder(model, max_context_frames)
    bounds = [0, 1 + chunk_frames, *range(1 + 2 * chunk_frames, x.shape[2], chunk_frames), x.shape[2]]
    bounds = sorted(set(b for b in bounds if b <= x.shape[2]))
    with torch.no_grad():
        return torch.cat([enc.encode_pre_quant_chunk(x[:, :, a:b]) for a, b in zip(bounds, bounds[1:])], dim=2)


@pytest.mark.parametrize("case", CASES)
def test_fast_streaming_equals_plain_streaming(case: str) -> None:
    model = load_conformance_model(case)
    fast = optimize(model, compile=False)  # auto_verify: the stream's first chunk is checked against eager
    t = model.config.temporal_compression
    x = _clip(model.config, latent_frames=6)
    ref = _stream_pre_quant(model, x, chunk_frames=2 * t)
    out = _stream_pre_quant(fast, x, chunk_frames=2 * t)
    assert out.shape == ref.shape
    assert relative_error(out, ref) < REL_TOL
    assert fast.use_fast and [r.part for r in fast.reports] == ["encode"] and fast.reports[0].ok
    # The stream is the whole clip: also equal to the plain whole-clip encoding.
    with torch.no_grad():
        assert relative_error(out, model.encode_pre_quant(x)) < REL_TOL
    # A sliding context window goes through the fast temporal attention's cache the same way.
    ref_w = _stream_pre_quant(model, x, chunk_frames=t, max_context_frames=2)
    out_w = _stream_pre_quant(fast, x, chunk_frames=t, max_context_frames=2)
    assert relative_error(out_w, ref_w) < REL_TOL
    assert relative_error(ref_w, ref) > 10 * REL_TOL  # the window changes the result (~1e-3), so this can fail

    with torch.no_grad():
        z = model.encode(x)[0]
        rec_ref = stream_decode(model, z, 2)
        rec_out = stream_decode(fast, z, 2)
    assert relative_error(rec_out, rec_ref) < REL_TOL


def test_fast_stream_indices_match_plain_stream() -> None:
    """Discrete: indices equal wherever the FSQ input is not within the float32 noise of a rounding boundary."""
    model = load_conformance_model("DV8x16x16")
    fast = optimize(model, compile=False)
    x = _clip(model.config, latent_frames=5, seed=1)
    ref, out = _stream_pre_quant(model, x, 8), _stream_pre_quant(fast, x, 8)
    fsq = model.quantizer
    idx_ref, idx_out = fsq(ref)[0], fsq(out)[0]
    bounded = fsq.bound(ref)  # [B, D, t, h, w]; rounding boundaries at half-integers
    near = ((bounded - bounded.floor() - 0.5).abs() < 1e-4).any(dim=1)  # [B, t, h, w]
    assert near.float().mean() < 0.05  # most positions are decided, so the comparison means something
    assert torch.equal(idx_out[~near], idx_ref[~near])


def test_fast_stream_falls_back_at_the_first_chunk_only() -> None:
    model = load_conformance_model("CV8x8x8")
    x = _clip(model.config, latent_frames=3)
    bad = optimize(model, compile=False)
    with torch.no_grad():
        bad.encoder.quant_conv.weight.mul_(1.5)  # a "broken kernel": the first-chunk check must catch it
    with pytest.warns(RuntimeWarning, match="using the plain eager networks"):
        out = _stream_pre_quant(bad, x, 8)
    assert not bad.use_fast
    assert torch.equal(out, _stream_pre_quant(model, x, 8))  # the whole stream ran eagerly, state included


def test_streaming_accepts_fast_decoder_side_only_when_present() -> None:
    model = copy.deepcopy(load_conformance_model("DV8x8x8"))
    model.decoder = model.post_quant_conv = None
    fast = optimize(model, compile=False)
    StreamingEncoder(fast)
    with pytest.raises(ValueError, match="without its decoder"):
        StreamingDecoder(fast)


def test_optimize_raises_on_a_module_it_does_not_know() -> None:
    model = copy.deepcopy(load_conformance_model("CV8x8x8"))

    class MyTemporalAttention(CausalTemporalAttnBlock3d):  # a new variant without a table entry
        pass

    old = model.encoder.mid.attn_1[1]
    new = MyTemporalAttention(old.q.conv3d.in_channels)
    new.load_state_dict(old.state_dict())
    model.encoder.mid.attn_1[1] = new
    with pytest.raises(UnsupportedModuleError, match="MyTemporalAttention.*FAST_MODULES"):
        optimize(model, compile=False)


def test_optimize_raises_on_a_child_the_fast_layer_would_ignore() -> None:
    model = copy.deepcopy(load_conformance_model("CV8x8x8"))
    model.decoder.up[1].block[0].extra = torch.nn.Conv3d(2, 2, 1)  # a child FastResBlock knows nothing of
    with pytest.raises(UnsupportedModuleError, match=r"decoder\.up\.1\.block\.0\.extra"):
        optimize(model, compile=False)


def test_fast_options_are_one_frozen_dataclass() -> None:
    opts = FastOptions(compile=False, attention="sdpa")
    with pytest.raises(Exception):
        opts.compile = True  # frozen
    model = load_conformance_model("CI8x8")
    assert optimize(model, opts).options == opts
    assert optimize(model, opts, verify_windows=2).options.verify_windows == 2
    with pytest.raises(TypeError, match="unknown option"):
        optimize(model, compile=False, complie_mode="x")
    with pytest.raises(ValueError, match="attention must be one of"):
        FastOptions(attention="flash9")


def test_fast_whole_mode_video_tokenizer_streams(tmp_path) -> None:
    """``--fast --temporal-mode whole``: the dataset builder's VideoTokenizer.encode_streaming on a fast network."""
    from nemo_cosmos_tokenizer.data.video_tokenizer import wrap_network

    model = load_conformance_model("DV8x16x16")
    eager = wrap_network(copy.deepcopy(model), "conformance-dv", "cpu", "float32", parts=("encoder",))
    fast = wrap_network(copy.deepcopy(model), "conformance-dv", "cpu", "float32", parts=("encoder",))
    fast.use_fast()
    assert fast.is_fast
    g = torch.Generator().manual_seed(3)
    clips = torch.randint(0, 256, (2, 1 + 8 * 4, 32, 48, 3), generator=g, dtype=torch.uint8)  # [B, T, H, W, 3]
    ref = eager.encode_streaming(clips, chunk_frames=8)
    out = fast.encode_streaming(clips, chunk_frames=8)
    assert out.shape == ref.shape == (2, 5, 2, 3) and out.dtype == np.int32
    assert fast.inference.network.use_fast, [r.message for r in fast.inference.network.reports]
    # Indices may differ only where float32 noise straddles an FSQ boundary; on these inputs that is rare.
    assert (out == ref).mean() > 0.95
