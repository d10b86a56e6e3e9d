"""Haar patchers: golden vectors (units/haar2d, haar3d) and round trips."""

import pytest
import torch
from safetensors.torch import load_file
from tolerances import reorder_atol

from nemo_cosmos_tokenizer.modules.patching import HaarPatcher2d, HaarPatcher3d, HaarUnpatcher2d, HaarUnpatcher3d

PATCHERS = {"2d": (HaarPatcher2d, HaarUnpatcher2d), "3d": (HaarPatcher3d, HaarUnpatcher3d)}


@pytest.mark.parametrize("patch_size", [2, 4])
@pytest.mark.parametrize("kind", ["2d", "3d"])
def test_haar_units(conformance_dir, kind, patch_size):
    data = load_file(str(conformance_dir / "units" / f"haar{kind}.safetensors"))
    patcher_cls, unpatcher_cls = PATCHERS[kind]
    patcher, unpatcher = patcher_cls(patch_size), unpatcher_cls(patch_size)
    coeffs = patcher(data["input"])
    # float32 Haar sums of patch_size**dims terms in log2(patch_size) levels, against the reference's: the rounding
    # bound of tests/tolerances.py for those magnitudes.
    dims = 2 if kind == "2d" else 3
    def atol(ref):
        return reorder_atol(ref, fan_in=patch_size**dims, layers=patch_size.bit_length() - 1)

    torch.testing.assert_close(coeffs, data[f"patch{patch_size}"], atol=atol(data[f"patch{patch_size}"]), rtol=0)
    expected = data[f"patch{patch_size}_unpatched"]
    torch.testing.assert_close(unpatcher(data[f"patch{patch_size}"]), expected, atol=atol(expected), rtol=0)
    expected = data[f"random_coeffs{patch_size}_unpatched"]
    torch.testing.assert_close(unpatcher(data[f"random_coeffs{patch_size}"]), expected, atol=atol(expected), rtol=0)


@pytest.mark.parametrize("patch_size", [2, 4, 8])
def test_haar2d_round_trip_and_ll_band_is_mean(patch_size):
    x = torch.randn(2, 3, 16, 24, dtype=torch.float64)
    coeffs = HaarPatcher2d(patch_size)(x)
    assert coeffs.shape == (2, 3 * patch_size**2, 16 // patch_size, 24 // patch_size)
    # float64 from here on: rounding ~1e-15 on any CPU, so 1e-12 still catches a wrong coefficient.
    torch.testing.assert_close(HaarUnpatcher2d(patch_size)(coeffs), x, atol=1e-12, rtol=0)
    mean = torch.nn.functional.avg_pool2d(x, patch_size)
    torch.testing.assert_close(coeffs[:, :3], mean, atol=1e-12, rtol=0)


@pytest.mark.parametrize("patch_size", [2, 4])
@pytest.mark.parametrize("frames", [1, 5, 9])
def test_haar3d_round_trip_and_causality(patch_size, frames):
    x = torch.randn(1, 3, frames, 8, 8, dtype=torch.float64)
    coeffs = HaarPatcher3d(patch_size)(x)
    assert coeffs.shape == (1, 3 * patch_size**3, (frames - 1) // patch_size + 1, 8 // patch_size, 8 // patch_size)
    torch.testing.assert_close(HaarUnpatcher3d(patch_size)(coeffs), x, atol=1e-12, rtol=0)  # float64: see above
    # Output frame 0 depends on input frame 0 only.
    y = x.clone()
    y[:, :, 1:] += 1.0
    torch.testing.assert_close(HaarPatcher3d(patch_size)(y)[:, :, :1], coeffs[:, :, :1], atol=1e-12, rtol=0)


def test_patcher_buffers_match_nvidia_layout():
    patcher = HaarPatcher3d(4)
    buffers = dict(patcher.named_buffers())
    assert list(buffers) == ["wavelets", "_arange", "patch_size_buffer"]
    assert buffers["wavelets"].dtype == torch.float32 and buffers["_arange"].dtype == torch.int64
    assert buffers["patch_size_buffer"].tolist() == [4] and buffers["patch_size_buffer"].dtype == torch.int32
    assert [name for name, _ in HaarUnpatcher3d(4).named_buffers()] == ["wavelets", "_arange"]
    assert [name for name, _ in HaarPatcher2d(4).named_buffers()] == ["wavelets", "_arange"]
    assert patcher.state_dict() == {}  # constants are non-persistent; the converter handles them
