"""FSQ: golden vectors (units/fsq), bijection over all codes, float32 under autocast."""

import torch
from safetensors.torch import load_file
from tolerances import reorder_atol

from nemo_cosmos_tokenizer.quantizers import FSQuantizer

LEVELS = (8, 8, 8, 5, 5, 5)


def test_fsq_units(conformance_dir):
    data = load_file(str(conformance_dir / "units" / "fsq.safetensors"))
    fsq = FSQuantizer(LEVELS)
    # Elementwise tanh (no sums): vectorised libm kernels differ by a few ulp of |bounded| <= 3.5 across CPUs.
    torch.testing.assert_close(fsq.bound(data["z"]), data["bounded"], atol=reorder_atol(data["bounded"], fan_in=1),
                               rtol=0)
    indices, codes = fsq(data["z"])
    assert torch.equal(codes, data["codes"])
    assert indices.dtype == torch.int32 and torch.equal(indices, data["indices"])
    video_codes = fsq.indices_to_codes(data["sample_indices_video"])
    assert video_codes.dtype == torch.float32
    assert torch.equal(video_codes, data["sample_indices_video_codes"])
    assert torch.equal(fsq.codes_to_indices(video_codes), data["sample_indices_video"])


def test_fsq_extremes_and_buffers():
    fsq = FSQuantizer(LEVELS)
    z = torch.stack([torch.full((6,), -1e4), torch.full((6,), 1e4), torch.zeros(6)]).view(3, 6, 1, 1)
    assert fsq(z)[0].flatten().tolist() == [0, 63999, 32036]
    assert fsq._levels.tolist() == list(LEVELS) and fsq._levels.dtype == torch.int32
    assert fsq._basis.tolist() == [1, 8, 64, 512, 2560, 12800] and fsq._basis.dtype == torch.int32
    assert fsq.implicit_codebook.shape == (64000, 6) and fsq.implicit_codebook.dtype == torch.bfloat16


def test_fsq_bijection_over_all_codes():
    fsq = FSQuantizer(LEVELS)
    indices = torch.arange(64000, dtype=torch.int32)
    codes = fsq.indices_to_codes(indices.view(1, 64000))  # [1, 6, 64000]
    assert torch.equal(fsq.codes_to_indices(codes), indices.view(1, 64000))
    assert codes.unique(dim=2).shape[2] == 64000
    torch.testing.assert_close(codes[0].T.to(torch.bfloat16), fsq.implicit_codebook, atol=0, rtol=0)
    # Quantizing a code returns that code (every code is a fixed point of the bound + round).
    half_l = torch.tensor([(level - 1) * 1.001 / 2 for level in LEVELS]).view(1, 6, 1)
    offset = torch.tensor([0.5 if level % 2 == 0 else 0.0 for level in LEVELS]).view(1, 6, 1)
    shift = torch.atanh(offset / half_l)
    z = torch.atanh((codes * (torch.tensor(LEVELS).view(1, 6, 1) // 2) + offset) / half_l) - shift
    assert torch.equal(fsq(z)[0], indices.view(1, 64000))


def test_fsq_float32_under_autocast_and_bf16_input():
    fsq = FSQuantizer(LEVELS)
    z = torch.randn(2, 6, 3, 4, 4) * 2
    expected_indices, expected_codes = fsq(z)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        indices, codes = fsq(z)
    assert codes.dtype == torch.float32 and torch.equal(indices, expected_indices)
    indices_bf16, codes_bf16 = fsq(z.to(torch.bfloat16))
    assert codes_bf16.dtype == torch.float32 and indices_bf16.dtype == torch.int32
    assert torch.equal(fsq(z.to(torch.bfloat16).float())[0], indices_bf16)


def test_fsq_straight_through_gradient():
    fsq = FSQuantizer(LEVELS)
    z = torch.randn(1, 6, 2, 2, requires_grad=True)
    fsq.quantize(z).sum().backward()
    assert z.grad is not None and torch.all(z.grad > 0)
