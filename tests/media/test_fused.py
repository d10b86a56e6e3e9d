"""The fused NV12 -> resized RGB path (nemo_cosmos_tokenizer.media.fused).

On the CPU: the reference arithmetic (ATen's CUDA antialiased bilinear, mirrored in torch) against the CPU's own
``interpolate`` (another algorithm: bounded difference), the exact cases, and the Triton kernel in Triton's
interpreter against the reference (bit for bit: the interpreter rounds a fused multiply-add once, as the GPU does).
On a GPU (marked ``gpu``): ATen's weights read out of CUDA against the formulas, and the compiled kernel against
today's exact path (``nv12_to_rgb`` + ``resize_clip``) bit for bit, on random NV12 and on the shared media.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nemo_cosmos_tokenizer.media.fused import (
    aa_axis,
    aa_axis_formula,
    nv12_resize,
    reference_nv12_resize,
    round_half_even,
)
from nemo_cosmos_tokenizer.media.nvdec import StreamInfo, nv12_to_clip
from nemo_cosmos_tokenizer.media.yuv import nv12_to_rgb

gpu = pytest.mark.gpu
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def _random_nv12(frames: int, h: int, w: int, seed: int = 0, device="cpu") -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    # smooth content plus noise: resizing real video mixes neighbouring values, pure noise would not exercise ties
    base = torch.linspace(16, 235, w).repeat(h * 3 // 2, 1)
    noise = torch.randint(-12, 13, (frames, h * 3 // 2, w), generator=g)
    return (base[None] + noise).clamp(0, 255).to(torch.uint8).to(device)  # [T, 3H/2, W]


def _info(h: int, w: int, colourspace: int = 1, full_range: bool = False) -> StreamInfo:
    return StreamInfo("h264", "mov,mp4", "yuv420p", w, h, colourspace, full_range, 0)


# ------------------------------------------------------------------------------------------------------ CPU
@pytest.mark.parametrize("sizes", [(1080, 720), (1920, 1280), (3840, 1280), (1920, 2276), (240, 416), (64, 96)])
def test_formula_weights_are_normalised_spans(sizes):
    first, weights = aa_axis_formula(*sizes)  # [out], [out, taps]
    in_size, out_size = sizes
    assert first.shape == (out_size,) and weights.dtype == torch.float32
    assert int(first.min()) >= 0 and int((first + (weights > 0).sum(1) - 1).max()) <= in_size - 1
    # a sum of at most `taps` float32 terms of about 1/taps each: off 1 by a few float32 ulps
    assert torch.allclose(weights.sum(1), torch.ones(out_size), atol=weights.shape[1] * 2**-23, rtol=0)
    assert bool((weights >= 0).all())


def test_round_half_even_is_torch_round():
    x = torch.tensor([0.5, 1.5, 2.5, 254.5, 0.49999997, 3.5000002, 0.0, 255.0, 17.25, 17.75], dtype=torch.float32)
    assert torch.equal(round_half_even(x), torch.round(x))
    x = torch.rand(100_000, generator=torch.Generator().manual_seed(1)) * 256
    assert torch.equal(round_half_even(x), torch.round(x))


@pytest.mark.parametrize("mode", ["crop", "pad"])
def test_reference_is_within_one_level_of_cpu_interpolate(mode):
    """The CPU's float32 ``interpolate(antialias=True)`` computes the same filter by another algorithm (its own
    weight arithmetic and pass order): values agree to a few float32 ulps (< 1e-3 of a level at 255), so after
    rounding at most one level apart, and only where a value sits that close to a .5."""
    nv12 = _random_nv12(2, 48, 80)
    out = reference_nv12_resize(nv12, 1, False, 24, 32, mode)  # [T, 24, 32, 3]
    rgb = nv12_to_rgb(nv12, 1, False).permute(0, 3, 1, 2).float()  # [T, 3, 48, 80]
    from nemo_cosmos_tokenizer.media.resize import scaled_size

    new_h, new_w = scaled_size(48, 80, 24, 32, mode)
    cpu = torch.nn.functional.interpolate(rgb, size=(new_h, new_w), mode="bilinear", antialias=True,
                                          align_corners=False).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
    top, left = (new_h - 24) // 2, (new_w - 32) // 2
    want = torch.zeros_like(out)
    if mode == "crop":
        want[:] = cpu[:, top : top + 24, left : left + 32]
    else:
        want[:, -top : -top + new_h, -left : -left + new_w] = cpu
    diff = (out.int() - want.int()).abs()
    assert int(diff.max()) <= 1 and float((diff > 0).float().mean()) < 1e-2


def test_reference_without_interpolation_is_the_conversion():
    nv12 = _random_nv12(2, 40, 64)
    rgb = nv12_to_rgb(nv12, 2, False)  # [T, 40, 64, 3]
    assert torch.equal(reference_nv12_resize(nv12, 2, False, 40, 64), rgb)
    assert torch.equal(reference_nv12_resize(nv12, 2, False, 40, 48, "crop"), rgb[:, :, 8:56])  # no rescale, crop


_INTERPRETED = """
import sys, torch
from nemo_cosmos_tokenizer.media.fused import nv12_resize, reference_nv12_resize
cases = [((24, 40), (12, 16), "crop", 1, False), ((24, 40), (16, 16), "pad", 2, True),
         ((16, 24), (24, 32), "crop", 9, False), ((18, 30), (18, 24), "crop", 5, False)]
for (h, w), (height, width), mode, colourspace, full_range in cases:
    g = torch.Generator().manual_seed(h)
    nv12 = (torch.linspace(16, 235, w).repeat(h * 3 // 2, 1)[None]
            + torch.randint(-12, 13, (2, h * 3 // 2, w), generator=g)).clamp(0, 255).to(torch.uint8)
    for contract in (True, False):
        want = reference_nv12_resize(nv12, colourspace, full_range, height, width, mode, contract=contract)
        got = nv12_resize(nv12, colourspace, full_range, height, width, mode, contract=contract)
        assert got.shape == (2, height, width, 3), got.shape
        assert torch.equal(got, want), (h, w, height, width, mode, contract, int((got != want).sum()))
print("equal", len(cases))
"""


def test_interpreted_kernel_equals_the_reference():
    """The Triton kernel in Triton's interpreter (CPU tensors; its own process, since TRITON_INTERPRET is read when
    the kernel is decorated) equals the reference bit for bit, for crop and pad, upscaling and downscaling, limited
    and full range, three colour matrices, with fused multiply-adds and without."""
    import os
    import subprocess
    import sys

    pytest.importorskip("triton")
    env = {**os.environ, "TRITON_INTERPRET": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, "-c", _INTERPRETED], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and "equal 4" in proc.stdout, proc.stderr[-3000:]


def test_fused_is_a_resize_option_of_nv12_to_clip():
    nv12 = _random_nv12(1, 20, 32)
    exact = nv12_to_clip(nv12, _info(20, 32), 20, 32, "crop")
    assert torch.equal(exact, nv12_to_rgb(nv12, 1, False))
    with pytest.raises(ValueError, match="resize must be one of"):
        nv12_to_clip(nv12, _info(20, 32), 10, 16, "crop", resize="nearest")


# ------------------------------------------------------------------------------------------------------ GPU
@gpu
@needs_cuda
@pytest.mark.parametrize("sizes", [(1080, 720), (1920, 1280), (3840, 1280), (2160, 720), (1920, 2276), (426, 416),
                                   (240, 96), (359, 64)])
def test_cuda_weights_are_the_formulas(sizes):
    """ATen's weights read out of its CUDA kernel against the formulas mirrored in float32 (tells whether the
    mirror, or nvcc's contractions, differ; the kernel uses the read-out either way)."""
    first, weights = aa_axis(*sizes, "cuda")
    f_first, f_weights = aa_axis_formula(*sizes)
    dense = torch.zeros(sizes[1], sizes[0], dtype=torch.float64)
    f_dense = torch.zeros_like(dense)
    for o in range(sizes[1]):
        span = weights.shape[1]
        idx = (first[o].cpu() + torch.arange(span)).clamp(max=sizes[0] - 1)
        dense[o].index_add_(0, idx, weights[o].cpu().double())
        f_idx = (f_first[o] + torch.arange(f_weights.shape[1])).clamp(max=sizes[0] - 1)
        f_dense[o].index_add_(0, f_idx, f_weights[o].double())
    assert torch.equal(dense, f_dense), float((dense - f_dense).abs().max())


def _exact(nv12: torch.Tensor, colourspace: int, full_range: bool, height: int, width: int, mode: str):
    h, w = nv12.shape[1] * 2 // 3, nv12.shape[2]
    return nv12_to_clip(nv12, _info(h, w, colourspace, full_range), height, width, mode, "exact")


@gpu
@needs_cuda
@pytest.mark.parametrize("case", [((1080, 1920), (720, 1280), "crop"), ((2160, 3840), (720, 1280), "crop"),
                                  ((1920, 1080), (720, 1280), "crop"), ((1080, 1920), (256, 256), "pad"),
                                  ((240, 426), (240, 416), "crop"), ((360, 640), (64, 96), "crop")])
@pytest.mark.parametrize("matrix", [(1, False), (2, True)])
def test_cuda_kernel_equals_the_exact_path_on_random_frames(case, matrix):
    pytest.importorskip("triton")
    (h, w), (height, width), mode = case
    nv12 = _random_nv12(3, h, w, seed=w, device="cuda")
    want = _exact(nv12, *matrix, height, width, mode)
    got = nv12_resize(nv12, *matrix, height, width, mode)
    reference = reference_nv12_resize(nv12, *matrix, height, width, mode)
    diff = (got.int() - want.int()).abs()
    ref_diff = (reference.int() - want.int()).abs()
    print(f"{case} {matrix}: kernel differs at {int((diff > 0).sum())} values (max {int(diff.max())}), reference "
          f"at {int((ref_diff > 0).sum())}")
    assert torch.equal(got, want)
    assert torch.equal(reference, want)


@gpu
@needs_cuda
def test_cuda_kernel_equals_the_exact_path_on_real_media(media_dir):
    """Frames of the shared media (PyAV's NV12, which NVDEC's equals), every NVDEC-able video, resized as builds do."""
    pytest.importorskip("triton")
    from nemo_cosmos_tokenizer.media.decode import pyav_open
    from nemo_cosmos_tokenizer.media.nvdec import pyav_nv12, stream_info

    checked = []
    for path in sorted(media_dir.glob("*.mp4")) + sorted(media_dir.glob("*.mov")):
        try:
            source = pyav_open(str(path), describe=True)
        except Exception:  # noqa: BLE001 - broken files of the test media
            continue
        info = stream_info(source)
        if info.nvdec_problem() is not None:
            continue
        nv12 = torch.from_numpy(pyav_nv12(source, list(range(min(3, source.num_frames))))).cuda()
        for height, width, mode in ((720, 1280, "crop"), (64, 96, "crop"), (256, 256, "pad")):
            want = nv12_to_clip(nv12, info, height, width, mode, "exact")
            got = nv12_to_clip(nv12, info, height, width, mode, "fused")
            assert torch.equal(got, want), (path.name, height, width, mode,
                                            int((got != want).sum()), int((got.int() - want.int()).abs().max()))
        checked.append(path.name)
    assert len(checked) >= 8, checked
    assert np.all([name for name in checked])


@gpu
@needs_cuda
def test_cuda_which_accumulation_aten_uses():
    """Diagnostic for the report: does ATen's CUDA kernel (as built in this torch) accumulate with fused
    multiply-adds (the kernel's default) or with rounded products and sums? One of the two must be exact."""
    pytest.importorskip("triton")
    results = {}
    for (h, w), (height, width), mode in (((1920, 1080), (720, 1280), "crop"), ((1080, 1920), (256, 256), "pad")):
        nv12 = _random_nv12(2, h, w, seed=3, device="cuda")
        want = _exact(nv12, 1, False, height, width, mode)
        for contract in (True, False):
            got = nv12_resize(nv12, 1, False, height, width, mode, contract=contract)
            results[(h, w, mode, contract)] = int((got != want).sum())
    print("differing values by (source, mode, fused multiply-add):", results)
    assert all(results[k] == 0 for k in results if k[3]) or all(results[k] == 0 for k in results if not k[3]), results


def test_kernel_compiles_for_hopper_with_only_the_intended_fused_multiply_adds():
    """Compiled for sm_90 without a GPU (Triton's own LLVM and ptxas): the kernel builds, and its float arithmetic is
    what the reference does - per channel one fused multiply-add in the horizontal and one in the vertical sum
    (three channels: 6) plus 3 in the rounding (exact: small integers), first products as plain products; with
    ``contract=False``, no fused multiply-add at all."""
    import re
    from collections import Counter

    pytest.importorskip("triton")
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from nemo_cosmos_tokenizer.media import _fused_kernel

    signature = {"nv12_ptr": "*u8", "out_ptr": "*u8", "first_y_ptr": "*i32", "wy_ptr": "*fp32", "first_x_ptr": "*i32",
                 "wx_ptr": "*fp32", **{name: "i32" for name in ("h", "w", "new_h", "new_w", "top", "left", "out_h",
                                                                  "out_w", "taps_y", "taps_x", "cy", "y_off", "vr",
                                                                  "ub", "vg", "ug")},
                 "BLOCK": "constexpr", "CONTRACT": "constexpr"}
    ops = {}
    for contract in (True, False):
        source = ASTSource(fn=_fused_kernel._kernel, signature=signature,
                           constexprs={"BLOCK": _fused_kernel.BLOCK, "CONTRACT": contract})
        compiled = triton.compile(source, target=GPUTarget("cuda", 90, 32), options={"enable_fp_fusion": contract})
        ops[contract] = Counter(re.findall(r"\b((?:mul|add|sub|fma)(?:\.rn)?\.f32)", compiled.asm["ptx"]))
    assert ops[True]["fma.rn.f32"] == 9 and ops[True]["mul.f32"] + ops[True]["mul.rn.f32"] == 9, ops[True]
    assert ops[False]["fma.rn.f32"] == 0 and not any(op.startswith("fma") for op in ops[False]), ops[False]


def test_auto_resize_takes_the_kernel_on_cuda_where_triton_is_installed(monkeypatch):
    """``auto`` (the builder's default) is ``fused`` only on a CUDA device of compute capability 7.0 or later with
    Triton importable, else ``exact``;
    the explicit kinds stay as given, and an unknown one is refused."""
    import importlib.util

    from nemo_cosmos_tokenizer.media.nvdec import resolve_resize

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object() if name == "triton" else None)
    capability = [(9, 0)]
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability[0])
    assert resolve_resize("auto", torch.device("cuda", 0)) == "fused"
    capability[0] = (6, 1)  # a Pascal GPU: Triton does not compile for it
    assert resolve_resize("auto", torch.device("cuda", 0)) == "exact"
    capability[0] = (9, 0)
    assert resolve_resize("auto", "cpu") == "exact"
    assert resolve_resize("exact", "cuda") == "exact" and resolve_resize("fused", "cpu") == "fused"
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert resolve_resize("auto", "cuda") == "exact"
    with pytest.raises(ValueError, match="resize must be one of"):
        resolve_resize("nearest", "cuda")


def test_the_resize_kind_is_not_part_of_the_frames_hash():
    """The kinds write the same bytes (the CUDA tests above), so a build's fingerprint of its frames does not name
    the kind: a build resumes under another one, and machines with and without Triton build one dataset."""
    import types

    from nemo_cosmos_tokenizer.data.build.plan import BuildContext
    from nemo_cosmos_tokenizer.media.clips import ClipSpec

    spec = ClipSpec(num_frames=9, height=32, width=48, temporal_compression=8, spatial_compression=8)
    described = [BuildContext.frames_description(types.SimpleNamespace(
        clip_spec=spec, config=types.SimpleNamespace(video_backend="nvdec", nvdec_resize=kind)))
        for kind in ("auto", "exact", "fused")]
    assert described[0] == described[1] == described[2] and described[0]["video_backend"] == "nvdec"
