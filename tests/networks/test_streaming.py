"""Exact streaming encode / decode (nemo_cosmos_tokenizer.networks.streaming) against whole-clip encode / decode.

Conformance models (float32, CPU): concatenated chunk outputs must equal the whole-clip result (latents and
reconstructions within 5e-5, FSQ indices equal) for CV and DV models with 4x and 8x temporal compression.
"""

from __future__ import annotations

import pytest
import torch
from conformance_helpers import load_conformance_model
from tolerances import reorder_atol

from nemo_cosmos_tokenizer.networks.streaming import (
    SpatialTiling,
    StreamingDecoder,
    StreamingEncoder,
    iter_encode,
    stream_decode,
    stream_encode,
)

CASES = ["CV4x8x8", "CV8x8x8", "DV4x8x8", "DV8x16x16"]
# Streaming changes only how the sums are cut (chunk boundaries, cache concatenation): rounding differences, bounded
# from the networks' reductions and the compared magnitudes (tests/tolerances.py). The streamed conformance parts
# hold at most 50 convolutions and sum at most 1728 terms per output (tolerances.reductions of CASES).
_LAYERS, _FAN_IN = 50, 1728


def _atol(reference: torch.Tensor) -> float:
    return reorder_atol(reference, fan_in=_FAN_IN, layers=_LAYERS)


def _clip(model, latent_frames: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = model.config.temporal_compression
    return torch.rand(1, 3, 1 + (latent_frames - 1) * t, size, size, generator=g) * 2 - 1  # [B, 3, T, H, W]


def _assert_same_encoding(out, ref):
    assert len(out) == len(ref)
    if len(ref) == 2:  # discrete: (indices, codes)
        assert out[0].dtype == torch.int32 and out[0].shape == ref[0].shape
        assert torch.equal(out[0], ref[0])
    torch.testing.assert_close(out[-1], ref[-1], atol=_atol(ref[-1]), rtol=0)


@pytest.mark.parametrize("case", CASES)
def test_stream_encode_equals_whole_clip(case):
    model = load_conformance_model(case)
    t = model.config.temporal_compression
    x = _clip(model, latent_frames=7)
    with torch.no_grad():
        ref = model.encode(x)
        for chunk_frames in (t, 2 * t, 3 * t, 6 * t):
            _assert_same_encoding(stream_encode(model, x, chunk_frames), ref)
        # Frames arriving in pieces of any size (here 3 frames, as a reader might deliver them) are re-cut.
        pieces = (x[:, :, i:i + 3] for i in range(0, x.shape[2], 3))
        _assert_same_encoding(stream_encode(model, pieces, 2 * t), ref)
        # Uneven chunking by hand: 1 frame first, then t, 3t, 2t.
        enc = StreamingEncoder(model)
        bounds = [0, 1, 1 + t, 1 + 4 * t, 1 + 6 * t]
        parts = [enc.encode_chunk(x[:, :, a:b]) for a, b in zip(bounds, bounds[1:])]
        assert [p[-1].shape[2] for p in parts] == [1, 1, 3, 2]
        assert enc.frames_in == x.shape[2] and enc.latent_frames_out == 7
        joined = tuple(torch.cat([p[i] for p in parts], dim=parts[0][i].ndim - 3) for i in range(len(ref)))
        _assert_same_encoding(joined, ref)


@pytest.mark.parametrize("case", CASES)
def test_stream_decode_equals_whole_clip(case):
    model = load_conformance_model(case)
    t = model.config.temporal_compression
    with torch.no_grad():
        z = model.encode(_clip(model, latent_frames=6))[0]  # CV latent / DV indices
        ref = model.decode(z)
        for chunk in (1, 2, 4):
            out = stream_decode(model, z, chunk)
            assert out.shape == ref.shape
            torch.testing.assert_close(out, ref, atol=_atol(ref), rtol=0)
        dec = StreamingDecoder(model)
        sizes = [dec.decode_chunk(z.narrow(z.ndim - 3, a, b - a)).shape[2] for a, b in [(0, 2), (2, 3), (3, 6)]]
        assert sizes == [1 + t, t, 3 * t]


def test_decode_codes_chunk_matches_decode_codes():
    model = load_conformance_model("DV8x8x8")
    with torch.no_grad():
        _, codes = model.encode(_clip(model, latent_frames=4))
        ref = model.decode_codes(codes)
        dec = StreamingDecoder(model)
        out = torch.cat([dec.decode_codes_chunk(codes[:, :, i:i + 1]) for i in range(4)], dim=2)
    torch.testing.assert_close(out, ref, atol=_atol(ref), rtol=0)


def test_max_context_frames():
    """Exact while the clip fits in the context; beyond it a sliding window that does not depend on chunking."""
    model = load_conformance_model("CV8x8x8")
    t = model.config.temporal_compression
    x = _clip(model, latent_frames=6)
    with torch.no_grad():
        (ref,) = model.encode(x)
        (fits,) = stream_encode(model, x, t, max_context_frames=6)
        torch.testing.assert_close(fits, ref, atol=_atol(ref), rtol=0)
        (a,) = stream_encode(model, x, t, max_context_frames=2)
        (b,) = stream_encode(model, x, 3 * t, max_context_frames=2)
        torch.testing.assert_close(a, b, atol=_atol(b), rtol=0)  # independent of the chunking
        torch.testing.assert_close(a[:, :, :2], ref[:, :, :2], atol=_atol(ref), rtol=0)  # first N latent frames exact
        assert (a[:, :, 2:] - ref[:, :, 2:]).abs().max() > 1e-4  # later ones see only N frames

        dref = model.decode(ref)
        torch.testing.assert_close(stream_decode(model, ref, 2, max_context_frames=6), dref, atol=_atol(dref), rtol=0)
        da = stream_decode(model, ref, 1, max_context_frames=2)
        db = stream_decode(model, ref, 3, max_context_frames=2)
        torch.testing.assert_close(da, db, atol=_atol(db), rtol=0)
        torch.testing.assert_close(da[:, :, :1 + t], dref[:, :, :1 + t], atol=_atol(dref), rtol=0)


def test_cache_memory_is_bounded_with_max_context():
    model = load_conformance_model("DV8x16x16")
    t = model.config.temporal_compression
    x = _clip(model, latent_frames=9)
    sizes, sizes_unbounded = [], []
    with torch.no_grad():
        for bound, out in ((3, sizes), (None, sizes_unbounded)):
            enc = StreamingEncoder(model, max_context_frames=bound)
            enc.encode_chunk(x[:, :, :1])
            for i in range(8):
                enc.encode_chunk(x[:, :, 1 + i * t:1 + (i + 1) * t])
                out.append(enc.cache_nbytes())
    assert sizes[2:] == [sizes[2]] * len(sizes[2:])  # flat once the window is full
    assert sizes_unbounded[-1] > sizes_unbounded[2]  # only the attention K/V cache grows


def test_wrong_chunk_sizes_raise_clear_errors():
    model = load_conformance_model("CV8x8x8")
    x = _clip(model, latent_frames=4)  # 25 frames
    enc = StreamingEncoder(model)
    with pytest.raises(ValueError, match=r"first chunk must hold 1 \+ k\*8 frames"):
        enc.encode_chunk(x[:, :, :8])
    with torch.no_grad():
        enc.encode_chunk(x[:, :, :9])
        with pytest.raises(ValueError, match="positive multiple of 8 frames"):
            enc.encode_chunk(x[:, :, 9:13])
        with pytest.raises(ValueError, match="does not continue the clip"):
            enc.encode_chunk(x[:, :, 9:17, :16])
        enc.encode_chunk(x[:, :, 9:17])  # the stream is still usable after a rejected chunk
    with pytest.raises(ValueError, match="positive multiple of the temporal compression 8"):
        next(iter_encode(model, x, 12))
    with pytest.raises(ValueError, match="pad_frames"), torch.no_grad():
        stream_encode(model, x[:, :, :20], 8)
    with pytest.raises(ValueError, match="image family"):
        StreamingEncoder(load_conformance_model("CI8x8"))
    with pytest.raises(ValueError, match="max_context_frames"):
        StreamingEncoder(model, max_context_frames=0)
    with pytest.raises(ValueError, match=r"latent \[B, 16, n, h, w\]"):
        StreamingDecoder(model).decode_chunk(torch.zeros(1, 16, 2, 4))
    with pytest.raises(ValueError, match="integer indices"):
        StreamingDecoder(load_conformance_model("DV8x8x8")).decode_chunk(torch.zeros(1, 6, 2, 4, 4))


def test_spatial_tiling_single_tile_is_exact_and_overlap_is_close():
    """Tiling is not exact. Measured here (conformance weights are random, a worst case for the global mid-block
    spatial attention) on a smooth 96x96 clip with 48-pixel tiles overlapping by 16: CV8x8x8 latents differ by
    ~12% relative RMS, reconstructions ~40%; with 64-pixel tiles overlapping by 32: ~7% and ~22%."""
    model = load_conformance_model("CV8x8x8")
    x = torch.nn.functional.interpolate(_clip(model, 3, size=8), size=(17, 96, 96), mode="trilinear")
    with torch.no_grad():
        (ref,) = model.encode(x)
        (whole_tile,) = stream_encode(model, x, 8, tiling=SpatialTiling(tile=96, overlap=0))
        torch.testing.assert_close(whole_tile, ref, atol=_atol(ref), rtol=0)
        (tiled,) = stream_encode(model, x, 8, tiling=SpatialTiling(tile=64, overlap=32))
        assert tiled.shape == ref.shape and torch.isfinite(tiled).all()
        rel = ((tiled - ref).norm() / ref.norm()).item()
        assert 0 < rel < 0.15, rel
        rec = model.decode(ref)
        out = stream_decode(model, ref, 1, tiling=SpatialTiling(tile=(64, 48), overlap=(32, 16)))
        assert out.shape == rec.shape and torch.isfinite(out).all()
        assert ((out - rec).norm() / rec.norm()).item() < 0.6
    with pytest.raises(ValueError, match="multiples of the spatial compression 8"):
        stream_encode(model, x, 8, tiling=SpatialTiling(tile=60, overlap=8))
