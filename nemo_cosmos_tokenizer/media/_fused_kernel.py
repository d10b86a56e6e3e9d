"""The Triton kernel of :mod:`.fused` (imported only when used: Triton is not needed elsewhere).

One program computes ``BLOCK`` output pixels of one output row of one frame, all three channels: for each vertical
tap, the horizontal taps' weighted sum of source pixels converted from NV12 on the fly; then the vertical weighted
sum; the first term of each sum a product, the others fused multiply-adds (see :mod:`.fused` for why).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

BLOCK = 128


@triton.jit
def _rgb(nv12_ptr, frame_off, sy, sx, h, w, cy, y_off, vr, ub, vg, ug):
    """swscale's integers for source pixels (sy, sx) of one frame (see :mod:`.yuv`), as float32. The callers clamp
    (sy, sx) into the frame, so every load is in bounds."""
    y = tl.load(nv12_ptr + frame_off + sy * w + sx).to(tl.int32)
    chroma = frame_off + (h + sy // 2) * w + (sx // 2) * 2
    u = tl.load(nv12_ptr + chroma).to(tl.int32)
    v = tl.load(nv12_ptr + chroma + 1).to(tl.int32)
    luma = ((y * 8 - y_off) * cy) >> 16
    cb = u * 8 - 1024
    cr = v * 8 - 1024
    r = tl.minimum(tl.maximum(luma + ((cr * vr) >> 16), 0), 255)
    g = tl.minimum(tl.maximum(luma + ((cb * ug) >> 16) + ((cr * vg) >> 16), 0), 255)
    b = tl.minimum(tl.maximum(luma + ((cb * ub) >> 16), 0), 255)
    return r.to(tl.float32), g.to(tl.float32), b.to(tl.float32)


@triton.jit
def _round_half_even(x):
    r = tl.floor(x)
    f = x - r
    odd = (r - 2.0 * tl.floor(r * 0.5)) == 1.0
    up = (f > 0.5) | ((f == 0.5) & odd)
    return tl.minimum(tl.maximum(r + up.to(tl.float32), 0.0), 255.0)


@triton.jit
def _kernel(nv12_ptr, out_ptr, first_y_ptr, wy_ptr, first_x_ptr, wx_ptr,
            h, w, new_h, new_w, top, left, out_h, out_w, taps_y, taps_x,
            cy, y_off, vr, ub, vg, ug, BLOCK: tl.constexpr, CONTRACT: tl.constexpr):
    row = tl.program_id(0)  # frame * out_h + output row
    frame = row // out_h
    oy = row % out_h
    ox = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    ry = oy + top  # interpolated coordinates
    rx = ox + left
    inside = (ox < out_w) & (rx >= 0) & (rx < new_w) & (ry >= 0) & (ry < new_h)
    ry_c = tl.minimum(tl.maximum(ry, 0), new_h - 1)
    rx_c = tl.minimum(tl.maximum(rx, 0), new_w - 1)
    frame_off = frame.to(tl.int64) * (h * 3 // 2) * w
    fy = tl.load(first_y_ptr + ry_c)
    fx = tl.load(first_x_ptr + rx_c, mask=ox < out_w, other=0)
    acc_r = tl.zeros((BLOCK,), tl.float32)
    acc_g = tl.zeros((BLOCK,), tl.float32)
    acc_b = tl.zeros((BLOCK,), tl.float32)
    for ky in range(0, taps_y):
        sy = tl.minimum(fy + ky, h - 1)
        wyk = tl.load(wy_ptr + ry_c * taps_y + ky)
        # horizontal sum over the taps of source row sy: a product, then fused multiply-adds
        sx = tl.minimum(fx, w - 1)
        wxk = tl.load(wx_ptr + rx_c * taps_x, mask=ox < out_w, other=0.0)
        r, g, b = _rgb(nv12_ptr, frame_off, sy, sx, h, w, cy, y_off, vr, ub, vg, ug)
        row_r = r * wxk
        row_g = g * wxk
        row_b = b * wxk
        for kx in range(1, taps_x):
            sx = tl.minimum(fx + kx, w - 1)
            wxk = tl.load(wx_ptr + rx_c * taps_x + kx, mask=ox < out_w, other=0.0)
            r, g, b = _rgb(nv12_ptr, frame_off, sy, sx, h, w, cy, y_off, vr, ub, vg, ug)
            if CONTRACT:
                row_r = tl.fma(r, wxk, row_r)
                row_g = tl.fma(g, wxk, row_g)
                row_b = tl.fma(b, wxk, row_b)
            else:  # (launched with fp fusion off, so these stay a rounded product and a rounded sum)
                row_r = row_r + r * wxk
                row_g = row_g + g * wxk
                row_b = row_b + b * wxk
        if ky == 0:
            acc_r = row_r * wyk
            acc_g = row_g * wyk
            acc_b = row_b * wyk
        elif CONTRACT:
            acc_r = tl.fma(row_r, wyk, acc_r)
            acc_g = tl.fma(row_g, wyk, acc_g)
            acc_b = tl.fma(row_b, wyk, acc_b)
        else:
            acc_r = acc_r + row_r * wyk
            acc_g = acc_g + row_g * wyk
            acc_b = acc_b + row_b * wyk
    zero = tl.zeros((BLOCK,), tl.float32)
    pr = tl.where(inside, _round_half_even(acc_r), zero).to(tl.uint8)
    pg = tl.where(inside, _round_half_even(acc_g), zero).to(tl.uint8)
    pb = tl.where(inside, _round_half_even(acc_b), zero).to(tl.uint8)
    base = (row.to(tl.int64) * out_w + ox) * 3
    store = ox < out_w
    tl.store(out_ptr + base, pr, mask=store)
    tl.store(out_ptr + base + 1, pg, mask=store)
    tl.store(out_ptr + base + 2, pb, mask=store)


def launch(nv12: torch.Tensor, out: torch.Tensor, first_y: torch.Tensor, wy: torch.Tensor, first_x: torch.Tensor,
           wx: torch.Tensor, h: int, w: int, new_h: int, new_w: int, top: int, left: int, k: dict,
           contract: bool = True) -> None:
    """Fill ``out`` uint8 ``[T, out_h, out_w, 3]`` from ``nv12`` uint8 ``[T, 3h/2, w]`` (see :func:`.fused.nv12_resize`).
    ``contract=False``: sums as a rounded product plus a rounded sum (a diagnostic: which one ATen's build uses)."""
    t, out_h, out_w, _ = out.shape
    grid = (t * out_h, triton.cdiv(out_w, BLOCK))
    _kernel[grid](nv12, out, first_y, wy, first_x, wx, h, w, new_h, new_w, top, left, out_h, out_w,
                  wy.shape[1], wx.shape[1], k["y"], k["y_offset"], k["vr"], k["ub"], k["vg"], k["ug"], BLOCK=BLOCK,
                  CONTRACT=contract, **({} if contract else {"enable_fp_fusion": False}))
