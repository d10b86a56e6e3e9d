"""NV12 surfaces -> RGB clips at the target size in one GPU kernel, repeating today's arithmetic.

Today's ``exact`` path (:func:`.nvdec.nv12_to_clip`) converts the whole source frame with swscale's fixed-point
YUV->RGB (:mod:`.yuv`, exact integers), then resizes with torch's ``interpolate(mode="bilinear", antialias=True)``
in float32 on the CUDA device and crops (or pads). At 4K that is several full-size passes over memory per frame. The
fused kernel (:mod:`._fused_kernel`, Triton) computes each output pixel straight from the NV12 planes:

* RGB of a source pixel: the integers of :func:`.yuv.yuv420_to_rgb`, computed where the pixel is needed;
* the antialiased bilinear resize of ATen's CUDA kernel ``upsample_gen2d_aa_out_frame``: for each output pixel, a
  row sum over the horizontal taps for each vertical tap (float32, first term a product, the others accumulated
  with fused multiply-adds, as nvcc contracts ``output += t * w``), then the sum over the vertical taps the same way;
  float32 weights normalised by their sum;
* ``torch.round`` (half to even), clamp to 0..255, uint8; the crop or pad window.

The weights are not recomputed: on CUDA they are read out of ATen itself (:func:`aa_axis`: ``interpolate`` of
one-hot rows, whose every output is exactly one weight), so only the accumulation order has to match, and the CUDA
test ``tests/media/test_fused.py`` checks the kernel against the exact path bit for bit. Off CUDA,
:func:`aa_axis_formula` computes them by ATen's formulas in float32 (checked against the CUDA read-out on the GPU).

:func:`reference_nv12_resize` is the same arithmetic in plain torch (CPU or GPU; fused multiply-adds emulated in
float64, exact here except for a double rounding too rare to matter, see :func:`_fma`): the specification the
kernel is tested against, and the CPU tests' bridge to ``interpolate``.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

from .resize import scaled_size
from .yuv import swscale_coefficients

INSTALL_HINT = "the fused NV12 resize needs Triton (installed with PyTorch's CUDA wheels): pip install triton"


# ---------------------------------------------------------------------------------------------------- weights
def aa_axis_formula(in_size: int, out_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """ATen's antialiased bilinear weights along one axis, by its formulas in float32: ``first`` int64 ``[out]`` (the
    first source index of each output) and ``weights`` float32 ``[out, taps]`` (zeros past an output's span)."""
    f32 = torch.float32
    scale = torch.tensor(in_size, dtype=f32) / torch.tensor(out_size, dtype=f32)  # area_pixel_compute_scale
    support = scale if scale >= 1 else torch.tensor(1.0, dtype=f32)  # (filter size 2 * 0.5) * scale
    # invscale is computed as a double (1.0 / scale) and stored as float
    invscale = torch.tensor(1.0 / float(scale), dtype=f32) if scale >= 1 else torch.tensor(1.0, dtype=f32)
    half_i = torch.arange(out_size, dtype=f32) + 0.5  # [out]; the center is scale * half_i, never rounded on its
    # own: nvcc contracts `center - support`, `center + support` and `xmin - center` into one fused multiply-add each
    # (seen on an H100: rounding the center first gave other spans for 1920 -> 2276 and 426 -> 416).
    xmin = torch.clamp((_fma(half_i, scale, -support) + 0.5).to(torch.int64), min=0)  # float -> int truncates (C cast)
    xmax = torch.clamp((_fma(half_i, scale, support) + 0.5).to(torch.int64), max=in_size)
    size = xmax - xmin
    taps = int(math.ceil(float(support))) * 2 + 1
    j = torch.arange(taps, dtype=f32)[None, :]  # [1, taps]
    xmin_m_center = _fma(-half_i, scale, xmin.to(f32))  # [out]
    x = ((j + xmin_m_center[:, None]) + 0.5) * invscale  # [out, taps]
    w = torch.clamp(1 - x.abs(), min=0)  # bilinear filter: 1 - |x| inside (-1, 1)
    w = torch.where(torch.arange(taps)[None, :] < size[:, None], w, torch.zeros((), dtype=f32))
    total = torch.zeros(out_size, dtype=f32)
    for k in range(taps):  # accumulated in order, in float32
        total = total + w[:, k]
    w = torch.where(total[:, None] != 0, w / total[:, None], w)
    return xmin, w


def aa_axis(in_size: int, out_size: int, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`aa_axis_formula`'s ``(first, weights)`` on ``device``; on CUDA read out of ATen's own kernel."""
    device = torch.device(device)
    if device.type != "cuda":
        first, weights = aa_axis_formula(in_size, out_size)
        return first.to(device), weights.to(device)
    return _aa_axis_cuda(in_size, out_size, device)


@lru_cache(maxsize=64)
def _aa_axis_cuda(in_size: int, out_size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    if in_size == out_size:  # no interpolation along this axis: the identity
        return (torch.arange(out_size, device=device),
                torch.ones(out_size, 1, dtype=torch.float32, device=device))
    # Row b holds a 1 at column b: each output of row b is the weight of source b (its row sum has one nonzero term,
    # exact whatever the order; the vertical pass of a 1-row image multiplies by exactly 1).
    eye = torch.eye(in_size, dtype=torch.float32, device=device)[:, None, None, :]  # [in, 1, 1, in]
    dense = torch.nn.functional.interpolate(eye, size=(1, out_size), mode="bilinear", antialias=True,
                                            align_corners=False)[:, 0, 0, :].T.contiguous()  # [out, in]
    nonzero = dense != 0
    has = nonzero.any(1)
    first = torch.where(has, nonzero.float().argmax(1), torch.zeros((), dtype=torch.int64, device=device))
    last = torch.where(has, in_size - 1 - nonzero.flip(1).float().argmax(1), first)
    taps = int((last - first).max()) + 1
    index = (first[:, None] + torch.arange(taps, device=device)[None, :]).clamp_(max=in_size - 1)  # [out, taps]
    weights = dense.gather(1, index)
    weights = torch.where(first[:, None] + torch.arange(taps, device=device)[None, :] <= last[:, None], weights,
                          torch.zeros((), device=device))  # zeros past the span (clamped indices repeat)
    # A zero weight at the start of ATen's span changes nothing (0 * t, then t1 * w1 + 0 = t1 * w1), so the span may
    # start at the first nonzero weight.
    return first, weights


# -------------------------------------------------------------------------------------------- the reference
def _fma(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """float32 ``a * b + c`` rounded once, emulated in float64: the product of two float32 is exact in float64, and
    the sum rounds twice (to float64, then float32) only when it needs more than 53 bits and lands on a float32 tie -
    not seen at these magnitudes (8-bit pixels, weights in (0, 1])."""
    return (a.double() * b.double() + c.double()).float()


def _window(height: int, width: int, h: int, w: int, mode: str) -> tuple[int, int, int, int]:
    """``(new_h, new_w, top, left)``: the interpolated size and where the output window starts in it (negative for
    ``pad``: the image starts inside the output), as :func:`.resize.resize_clip` places it."""
    new_h, new_w = scaled_size(h, w, height, width, mode)
    return new_h, new_w, (new_h - height) // 2, (new_w - width) // 2


def round_half_even(x: torch.Tensor) -> torch.Tensor:
    """``torch.round`` by floor and comparisons (what the kernel does): exact for any float32."""
    r = torch.floor(x)
    f = x - r  # exact
    odd = (r - 2 * torch.floor(r / 2)) == 1
    return r + ((f > 0.5) | ((f == 0.5) & odd)).to(x.dtype)


def reference_nv12_resize(nv12: torch.Tensor, colourspace: int, full_range: bool, height: int, width: int,
                          mode: str = "crop", *, contract: bool = True) -> torch.Tensor:
    """The fused kernel's arithmetic in torch: NV12 uint8 ``[T, 3H/2, W]`` -> uint8 ``[T, height, width, 3]``.

    ``contract``: accumulate with fused multiply-adds (what nvcc makes of ATen's ``output += t * w``, as read from
    its default ``--fmad=true``); ``False``: a rounded product, then a rounded sum."""
    fma = _fma if contract else (lambda a, b, c: a * b + c)  # float32 ops: each rounds
    from .yuv import nv12_to_rgb

    t, rows, w = nv12.shape
    h = rows * 2 // 3
    rgb = nv12_to_rgb(nv12, colourspace, full_range).float()  # [T, H, W, 3], exact integers
    new_h, new_w, top, left = _window(height, width, h, w, mode)
    out = torch.zeros((t, height, width, 3), dtype=torch.uint8, device=nv12.device)
    # the output window in interpolated coordinates, clipped to the interpolated image (pad: the image is smaller)
    ys = torch.arange(max(top, 0), min(top + height, new_h), device=nv12.device)
    xs = torch.arange(max(left, 0), min(left + width, new_w), device=nv12.device)
    first_y, wy = (a.to(nv12.device) for a in aa_axis(h, new_h, nv12.device))
    first_x, wx = (a.to(nv12.device) for a in aa_axis(w, new_w, nv12.device))
    acc = None
    for k in range(wx.shape[1]):  # horizontal pass over every source row: [T, H, len(xs), 3]
        cols = (first_x[xs] + k).clamp(max=w - 1)
        term = rgb[:, :, cols, :]
        weight = wx[xs, k][None, None, :, None]
        acc = term * weight if acc is None else fma(term, weight, acc)
    rows_acc = acc
    acc = None
    for k in range(wy.shape[1]):  # vertical pass: [T, len(ys), len(xs), 3]
        src_rows = (first_y[ys] + k).clamp(max=h - 1)
        term = rows_acc[:, src_rows]
        weight = wy[ys, k][None, :, None, None]
        acc = term * weight if acc is None else fma(term, weight, acc)
    pixels = round_half_even(acc).clamp_(0, 255).to(torch.uint8)
    oy, ox = int(ys[0]) - top if len(ys) else 0, int(xs[0]) - left if len(xs) else 0
    out[:, oy : oy + len(ys), ox : ox + len(xs)] = pixels
    return out


# ------------------------------------------------------------------------------------------------- the kernel
def nv12_resize(nv12: torch.Tensor, colourspace: int, full_range: bool, height: int, width: int,
                mode: str = "crop", *, contract: bool = True) -> torch.Tensor:
    """NV12 uint8 ``[T, 3H/2, W]`` -> uint8 ``[T, height, width, 3]`` in one Triton kernel (on the tensor's device;
    CPU tensors only under ``TRITON_INTERPRET=1``), on the current CUDA stream. ``contract=False`` sums with a rounded
    product and a rounded sum instead of fused multiply-adds (a diagnostic, see :func:`reference_nv12_resize`)."""
    try:
        from . import _fused_kernel
    except ImportError as err:
        raise ImportError(INSTALL_HINT) from err
    t, rows, w = nv12.shape
    h = rows * 2 // 3
    if rows != h * 3 // 2 or h % 2 or w % 2:
        raise ValueError(f"not an even-sized NV12 surface: shape {tuple(nv12.shape)}")
    new_h, new_w, top, left = _window(height, width, h, w, mode)
    first_y, wy = aa_axis(h, new_h, nv12.device)
    first_x, wx = aa_axis(w, new_w, nv12.device)
    k = swscale_coefficients(colourspace, full_range)
    out = torch.empty((t, height, width, 3), dtype=torch.uint8, device=nv12.device)
    _fused_kernel.launch(nv12.contiguous(), out, first_y.to(torch.int32).contiguous(), wy.contiguous(),
                         first_x.to(torch.int32).contiguous(), wx.contiguous(), h, w, new_h, new_w, top, left, k,
                         contract)
    return out
