"""YUV 4:2:0 to RGB with FFmpeg's arithmetic, in torch: GPU-decoded frames (:mod:`.nvdec`) get the very pixels
that PyAV's ``frame.to_ndarray(format="rgb24")`` gives on x86-64 (and decord, which uses the same swscale path).

swscale converts unscaled 8-bit ``yuv420p``/``yuvj420p`` to ``rgb24`` with its SIMD ``yuv2rgb`` routine:

* chroma is nearest-neighbour: one U/V sample per 2x2 block of pixels;
* 16-bit fixed point with ``pmulhw`` (``(a * b) >> 16``, rounding down)::

      y = ((Y * 8 - oy * 8) * cy) >> 16
      R = y + (((V * 8 - 1024) * crv) >> 16)
      G = y + (((U * 8 - 1024) * cgu) >> 16) + (((V * 8 - 1024) * cgv) >> 16)
      B = y + (((U * 8 - 1024) * cbu) >> 16)

  then clamped to 0..255 (the int16 saturations of the SIMD code never trigger for 8-bit input);
* the coefficients are FFmpeg's ``ff_yuv2rgb_coeffs`` row of the frame's colour matrix, rounded to 13 fractional
  bits; limited range (16..235) scales luma by 255/219 around 16, full range (``yuvj420p`` / JPEG range) scales
  chroma by 224/255 instead.

Checked bit for bit against PyAV on every 8-bit 4:2:0 video of the shared test media and on random-content clips of
each supported matrix, limited and full range (``tests/data/test_yuv.py``).
"""

from __future__ import annotations

import torch

#: FFmpeg ``AVColorSpace`` value -> ``ff_yuv2rgb_coeffs`` row ``(crv, cbu, cgu, cgv)`` in 16.16 fixed point, for the
#: matrices whose conversion is checked against PyAV. 2 (unspecified) is what most files carry: BT.601.
COLOURSPACES: dict[int, tuple[int, int, int, int]] = {
    1: (117489, 138438, 13975, 34925),  # BT.709
    2: (104597, 132201, 25675, 53279),  # unspecified -> BT.601 (swscale's default)
    5: (104597, 132201, 25675, 53279),  # BT.470 BG (= BT.601)
    6: (104597, 132201, 25675, 53279),  # SMPTE 170M (= BT.601)
    9: (110013, 140363, 12277, 42626),  # BT.2020 non-constant luminance
    10: (110013, 140363, 12277, 42626),  # BT.2020 constant luminance (swscale uses the same row)
}


def _round_q13(value_q16: int) -> int:
    """swscale's ``roundToInt16(v * (1 << 13))`` of a 16.16 value: the nearest integer of ``v / 8``."""
    return (value_q16 * (1 << 13) + (1 << 15)) >> 16


def swscale_coefficients(colourspace: int, full_range: bool) -> dict[str, int]:
    """The integer coefficients swscale's SIMD yuv2rgb uses for a frame of this matrix and range."""
    if colourspace not in COLOURSPACES:
        raise ValueError(f"colour matrix {colourspace} is not supported here; supported: {sorted(COLOURSPACES)}")
    crv, cbu, cgu, cgv = COLOURSPACES[colourspace]
    cy, oy = 1 << 16, 0
    if full_range:
        crv, cbu, cgu, cgv = (c * 224 // 255 for c in (crv, cbu, cgu, cgv))
    else:
        cy, oy = cy * 255 // 219, 16 << 16
    return {
        "y": _round_q13(cy),
        "y_offset": (oy * 8 + (1 << 15)) >> 16,  # roundToInt16(oy * (1 << 3)): 128 for limited range
        "vr": _round_q13(crv),
        "ub": _round_q13(cbu),
        "vg": _round_q13(-cgv),
        "ug": _round_q13(-cgu),
    }


def yuv420_to_rgb(
    y: torch.Tensor, u: torch.Tensor, v: torch.Tensor, colourspace: int = 2, full_range: bool = False
) -> torch.Tensor:
    """8-bit planes ``y`` uint8 ``[..., H, W]``, ``u``/``v`` uint8 ``[..., H/2, W/2]`` -> uint8 ``[..., H, W, 3]``.

    On any device; H and W must be even (swscale takes another path for odd sizes).
    """
    h, w = y.shape[-2:]
    if h % 2 or w % 2 or tuple(u.shape[-2:]) != (h // 2, w // 2) or u.shape != v.shape:
        raise ValueError(f"need even-sized 4:2:0 planes, got Y {tuple(y.shape)}, U {tuple(u.shape)}, V {tuple(v.shape)}")
    k = swscale_coefficients(colourspace, full_range)
    luma = ((y.to(torch.int32) * 8 - k["y_offset"]) * k["y"]) >> 16  # [..., H, W]
    cb = u.to(torch.int32) * 8 - 1024  # [..., H/2, W/2]
    cr = v.to(torch.int32) * 8 - 1024
    # Chroma terms at half resolution, stacked as [..., H/2, W/2, 3] (R, G, B), then spread over each 2x2 block.
    chroma = torch.stack(((cr * k["vr"]) >> 16, ((cb * k["ug"]) >> 16) + ((cr * k["vg"]) >> 16), (cb * k["ub"]) >> 16), -1)
    lead = chroma.shape[:-3]
    chroma = chroma[..., :, None, :, None, :].expand(*lead, h // 2, 2, w // 2, 2, 3).reshape(*lead, h, w, 3)
    return (luma[..., None] + chroma).clamp_(0, 255).to(torch.uint8)


def nv12_to_rgb(nv12: torch.Tensor, colourspace: int = 2, full_range: bool = False) -> torch.Tensor:
    """NVDEC's NV12 surface uint8 ``[..., 3H/2, W]`` (Y rows, then interleaved U/V rows) -> uint8 ``[..., H, W, 3]``."""
    rows, w = nv12.shape[-2:]
    h = rows * 2 // 3
    if rows != h * 3 // 2 or h % 2 or w % 2:
        raise ValueError(f"not an even-sized NV12 surface: shape {tuple(nv12.shape)}")
    y = nv12[..., :h, :]
    uv = nv12[..., h:, :].reshape(*nv12.shape[:-2], h // 2, w // 2, 2)  # interleaved U, V
    return yuv420_to_rgb(y, uv[..., 0], uv[..., 1], colourspace, full_range)
