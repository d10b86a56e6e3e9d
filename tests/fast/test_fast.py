"""The fast path (folded channels-last layers) computes the plain networks' function: CPU, float32, eager.

The compiled CUDA path is checked on the GPU (``gpu`` marker) and, at run time, by ``FastCosmosTokenizer.verify``.
"""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from conformance_helpers import CONFORMANCE_CASES, load_conformance_model
from tolerances import decoder_atol, encoder_atol, relative_bound, reorder_atol

import nemo_cosmos_tokenizer as nct
from nemo_cosmos_tokenizer.fast import FastCosmosTokenizer, optimize, relative_error
from nemo_cosmos_tokenizer.fast.attention import ATTENTION, materialized, sdpa
from nemo_cosmos_tokenizer.fast.frames import frames_from_seq, frames_from_video, seq_from_frames, video_from_frames
from nemo_cosmos_tokenizer.fast.profiling import count_flops, latent_input_shape


def _input(config, batch: int = 2, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    s, t = config.spatial_compression, config.temporal_compression
    shape = (batch, 3, 1 + 2 * t, 2 * s, 3 * s) if config.is_video else (batch, 3, 2 * s, 3 * s)
    return torch.rand(shape, generator=gen) * 2 - 1


@pytest.mark.parametrize("case", CONFORMANCE_CASES)
def test_fast_matches_eager_float32(case: str) -> None:
    model = load_conformance_model(case)
    fast = optimize(model, compile=False, auto_verify=False)
    x = _input(model.config)
    with torch.no_grad():
        ref = model.encode_pre_quant(x)
        out = fast.encode_pre_quant(x)
        assert out.shape == ref.shape
        # Other kernels and layouts (channels-last, fused attention): rounding only, bounded from the network's
        # reductions and the compared magnitudes (tests/tolerances.py).
        assert relative_error(out, ref) < relative_bound(encoder_atol(model, ref), ref)
        enc_ref, enc_out = model.encode(x), fast.encode(x)
        for a, b in zip(enc_out, enc_ref):
            assert a.dtype == b.dtype and a.shape == b.shape
        if model.config.is_discrete:
            assert torch.equal(enc_out[0], enc_ref[0])
        rec_ref, rec_out = model.decode(enc_ref[0]), fast.decode(enc_ref[0])
        assert rec_out.shape == rec_ref.shape and rec_out.is_contiguous()
        assert relative_error(rec_out, rec_ref) < relative_bound(decoder_atol(model, rec_ref), rec_ref)
    assert fast.use_fast


@pytest.mark.parametrize("case", ["DV8x16x16", "CI8x8"])
def test_fast_contiguous_layout_and_sdpa(case: str) -> None:
    model = load_conformance_model(case)
    fast = optimize(model, compile=False, auto_verify=False, channels_last=False, attention="sdpa")
    x = _input(model.config, batch=1, seed=1)
    with torch.no_grad():
        ref = model.encode_pre_quant(x)  # rounding only (tests/tolerances.py)
        assert relative_error(fast.encode_pre_quant(x), ref) < relative_bound(encoder_atol(model, ref), ref)


def test_layout_helpers_round_trip() -> None:
    x = torch.randn(2, 5, 3, 4, 6)  # [B, C, T, H, W]
    frames = frames_from_video(x)
    assert frames.shape == (6, 5, 4, 6) and frames.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(frames[4], x[1, :, 1])
    assert torch.equal(video_from_frames(frames, 2), x)
    seq = seq_from_frames(frames, 2)  # [B, T, H*W, C]
    assert seq.shape == (2, 3, 24, 5) and torch.equal(seq[1, 2, 7], x[1, :, 2, 1, 1])
    assert torch.equal(frames_from_seq(seq.contiguous(), 4, 6), frames)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("length", [5, 1100])
def test_materialized_attention_matches_sdpa(length: int, causal: bool) -> None:
    gen = torch.Generator().manual_seed(length)
    q, k, v = (torch.randn(2, 3, length, 16, generator=gen) for _ in range(3))
    ref = sdpa(q, k, v, causal)
    for budget in (1 << 30, 4 * length * 7, 4 * length * length * 2):  # one chunk, row chunks, frame chunks
        # Same math, sums cut in other chunks: rounding of the q.k dot products (16 terms) and of the softmax
        # sums over `length` keys (tests/tolerances.py).
        out = materialized(q, k, v, causal, budget)
        torch.testing.assert_close(out, ref, atol=reorder_atol(ref, fan_in=max(length, 16), layers=2), rtol=0)


def test_attention_chunks_are_equal(monkeypatch) -> None:
    """24 frames (a batch of 8 windows of 3 latent frames) at a budget of 20 frames per chunk run as 2 GEMMs of 12,
    not 20 + 4: every frame goes through the same GEMM shape, so no window of a batch gets a kernel of its own.
    Row chunks of one frame are evened out the same way."""
    from nemo_cosmos_tokenizer.fast import attention

    shapes: list[tuple[int, ...]] = []
    real = attention._attend
    monkeypatch.setattr(attention, "_attend", lambda q, *rest: shapes.append(tuple(q.shape[:2])) or real(q, *rest))
    length = 1100
    q, k, v = (torch.randn(8, 3, length, 16, generator=torch.Generator().manual_seed(i)) for i in range(3))
    out = attention.materialized(q, k, v, False, max_score_bytes=4 * length * length * 20)  # 20 frames fit
    assert shapes == [(12, length)] * 2
    ref = sdpa(q, k, v, False)
    torch.testing.assert_close(out, ref, atol=reorder_atol(ref, fan_in=length, layers=2), rtol=0)  # as above
    shapes.clear()
    attention.materialized(q[:1, :1], k[:1, :1], v[:1, :1], False, max_score_bytes=4 * length * 500)  # 500 rows fit
    assert shapes == [(1, 275)] * 4  # not 500 + 500 + 100: 275 is the largest divisor of 1100 from 250 to 500
    assert (attention._even_chunk(24, 20), attention._even_chunk(16, 20), attention._even_chunk(7, 3)) == (12, 16, 3)


def test_fp16_logits_only_for_bf16_on_cuda() -> None:
    """The float16-logits variant of the materialized attention is a CUDA-bf16 path; elsewhere it is the float32
    one, bit for bit."""
    gen = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(1, 2, 1100, 16, generator=gen) for _ in range(3))
    assert torch.equal(materialized(q, k, v, False, fp16_logits=True), materialized(q, k, v, False, fp16_logits=False))
    qb, kb, vb = q.bfloat16(), k.bfloat16(), v.bfloat16()
    assert torch.equal(materialized(qb, kb, vb, False), ATTENTION["materialized-fp32"](qb, kb, vb, False))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fp16_logits_cuda_close_to_float32() -> None:
    gen = torch.Generator().manual_seed(2)
    q, k, v = (torch.randn(1, 2, 2048, 512, generator=gen) * s for s in (1.5, 1.5, 1.0))
    q, k, v = (t.cuda().bfloat16() for t in (q, k, v))
    ref = sdpa(q.double(), k.double(), v.double(), False)
    err16 = relative_error(materialized(q, k, v, False, fp16_logits=True), ref)
    err32 = relative_error(materialized(q, k, v, False, fp16_logits=False), ref)
    assert err16 < 1.5 * err32 and err16 < 1e-2


def test_optimize_leaves_model_untouched_and_casts_reference() -> None:
    model = load_conformance_model("CV4x8x8")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fast = optimize(model, compile=False, dtype=torch.bfloat16, auto_verify=False)
    assert fast.reference is not model and next(fast.reference.parameters()).dtype == torch.bfloat16
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert next(model.parameters()).dtype == torch.float32
    (latent,) = fast.encode(_input(model.config, batch=1))  # float32 input is cast at the boundary
    assert latent.dtype == torch.bfloat16 and latent.is_contiguous()
    assert optimize(model, compile=False).reference is model  # nothing to convert: no copy


def test_auto_verify_passes_and_reports() -> None:
    model = load_conformance_model("DV4x8x8")
    fast = optimize(model, compile=False)
    x = _input(model.config)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        indices, _ = fast.encode(x)
        fast.decode(indices)
    assert fast.use_fast
    assert [r.part for r in fast.reports] == ["encode", "decode"]
    with torch.no_grad():  # rounding only (tests/tolerances.py), for the tensors the reports compare
        pre, rec = model.encode_pre_quant(x), model.decode(indices)
    bound = {"encode": relative_bound(encoder_atol(model, pre), pre), "decode": relative_bound(decoder_atol(model, rec), rec)}
    assert all(r.ok and r.rel_error < bound[r.part] for r in fast.reports)
    assert fast.reports[0].index_match == 1.0


def test_broken_fast_path_falls_back_to_eager() -> None:
    model = load_conformance_model("CV8x8x8")
    fast = optimize(model, compile=False)
    run = fast._fns["encode"]
    fast._fns["encode"] = lambda x: run(x) * 1.5  # a "miscompiled" graph
    x = _input(model.config)
    with pytest.warns(RuntimeWarning, match="using the plain eager networks"):
        (latent,) = fast.encode(x)
    assert not fast.use_fast and not fast.reports[-1].ok
    with torch.no_grad():
        assert torch.equal(latent, model.encode(x)[0])


def test_failing_fast_path_falls_back_to_eager() -> None:
    model = load_conformance_model("DI8x8")
    fast = optimize(model, compile=False)

    def boom(x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("kernel launch failed")
    fast._fns["decode"] = boom
    indices = torch.zeros(1, 2, 3, dtype=torch.int32)
    with pytest.warns(RuntimeWarning, match="kernel launch failed"):
        out = fast.decode(indices)
    with torch.no_grad():
        assert torch.equal(out, model.decode(indices))


def test_bf16_verify_judges_against_float32() -> None:
    """In bf16 the fast and eager paths differ by bf16 noise; verify() accepts that by comparing both with
    float32 and rejects a path that is clearly worse."""
    model = load_conformance_model("DV8x16x16")
    fast = optimize(model, compile=False, dtype=torch.bfloat16, auto_verify=False)
    assert isinstance(fast, FastCosmosTokenizer)
    reports = fast.verify(_input(model.config, batch=1, seed=3))
    assert fast.use_fast and all(r.ok for r in reports), [r.message for r in reports]
    bad = optimize(model, compile=False, dtype=torch.bfloat16, auto_verify=False)
    run = bad._fns["decode"]
    bad._fns["decode"] = lambda z: run(z) * 1.2
    with pytest.warns(RuntimeWarning):
        reports = bad.verify(_input(model.config, batch=1, seed=3))
    assert not bad.use_fast and not reports[-1].ok and "float32" in reports[-1].message


def test_flop_count_matches_reference_table() -> None:
    """ARCHITECTURE.md section 5 / PERFORMANCE.md: DV8x16x16 ~215 GFLOP/frame at 720p, CV8x8x8 ~386."""
    for name, gflop in (("Cosmos-1.0-Tokenizer-DV8x16x16", 214.6), ("Cosmos-1.0-Tokenizer-CV8x8x8", 385.7)):
        config = nct.get_config(name)
        assert count_flops(config, (1, 3, 17, 720, 1280), "encode") / 17 / 1e9 == pytest.approx(gflop, rel=1e-3)
    config = nct.get_config("Cosmos-0.1-Tokenizer-DI8x8")
    assert latent_input_shape(config, (2, 3, 64, 64)) == (2, 6, 8, 8)
    assert count_flops(config, (1, 3, 256, 256), "decode") / 1e9 == pytest.approx(226.13, rel=2e-2)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_compiled_cuda_path_matches_eager() -> None:
    model = copy.deepcopy(load_conformance_model("DV8x16x16")).cuda()
    fast = optimize(model, compile=True)
    x = _input(model.config).cuda()
    with torch.no_grad():
        assert relative_error(fast.encode_pre_quant(x), model.encode_pre_quant(x)) < 1e-4
    assert fast.use_fast


def test_encoder_only_model_and_state_dict_passthrough() -> None:
    """The inference API drops the unused side of a tokenizer (``decoder = None``); the fast path follows."""
    model = copy.deepcopy(load_conformance_model("DV8x8x8"))
    model.decoder = model.post_quant_conv = None
    fast = optimize(model, compile=False)
    assert fast.decoder is None
    x = _input(model.config, batch=1)
    with torch.no_grad():
        assert torch.equal(fast.encode(x)[0], model.encode(x)[0])
    assert fast.cosmos_state_dict("encoder").keys() == model.cosmos_state_dict("encoder").keys()
