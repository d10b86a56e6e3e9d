"""``fp8_kernel="triton"``: an implicit-GEMM FP8 convolution over channels-last tensors, written in Triton.

Imported only when that kernel is used (``import triton`` at the top; see :mod:`.fp8_kernels`). The convolution
``[N, C, H, W] * [O, C, kh, kw] -> [N, O, H', W']`` is a GEMM of ``M = N*H'*W'`` output rows, ``O`` output
channels and ``K = kh*kw*C`` reduced terms, with the A operand gathered on the fly: for kernel tap ``(r, s)`` the
rows of A are the input pixels ``(n, h'*sh - ph + r, w'*sw - pw + s)``, each a contiguous run of ``C`` bytes in
channels-last memory (zeros outside the image: the convolution's zero padding). B is the weight in its
channels-last memory ``[O, kh, kw, C]``, so both operands are K-major, the layout Hopper's FP8 ``wgmma`` reads.

Numerics: ``tl.dot`` on ``float8e4nv`` (E4M3) operands with a float32 accumulator; ``max_num_imprecise_acc=BLOCK_K``
adds each BLOCK_K-term partial product into the float32 accumulator with a real float32 add. (Triton's default on
sm_90 lets the tensor core keep accumulating the whole K loop in its reduced-precision FP8 accumulator, "about 14
bits" by the DeepSeek-V3 report; promoting every 128 terms is what that report found sufficient.) The epilogue is
``acc * scale[o] + bias[o]`` in float32, rounded to the output dtype, as :func:`.fp8_numerics.reference_fp8_conv2d`.
fp8 data is passed as ``uint8`` views (masked loads fill with the byte 0, which is E4M3 +0.0) and bit-cast back.
Row offsets are 64-bit: a batch of 720p activations holds more than 2^31 elements.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

__all__ = ["triton_fp8_conv2d"]

# Hopper tiles: 128-256 x 64-256 outputs, 64-128 terms per step; 3-4 stages of (BLOCK_M + BLOCK_N) * BLOCK_K bytes fit
# the 228 KB of shared memory. Tuned once per layer shape (the key), like cudnn.benchmark.
_CONFIGS = [
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 128, "BLOCK_K": 128, "GROUP_M": 8}, num_warps=8, num_stages=3),
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 256, "BLOCK_K": 64, "GROUP_M": 8}, num_warps=8, num_stages=3),
    triton.Config({"BLOCK_M": 256, "BLOCK_N": 128, "BLOCK_K": 64, "GROUP_M": 8}, num_warps=8, num_stages=3),
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 128, "BLOCK_K": 64, "GROUP_M": 8}, num_warps=4, num_stages=4),
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 64, "BLOCK_K": 128, "GROUP_M": 8}, num_warps=4, num_stages=4),
    triton.Config({"BLOCK_M": 64, "BLOCK_N": 128, "BLOCK_K": 128, "GROUP_M": 8}, num_warps=4, num_stages=4),
]


@triton.jit
def _fp8_conv_kernel(
    x_ptr, w_ptr, scale_ptr, bias_ptr, y_ptr,
    M, H, W, C, O, HO, WO,
    sxn, sxc, sxh, sxw,
    swo, swc, swh, sww,
    syn, syo, syh, syw,
    STRIDE_H: tl.constexpr, STRIDE_W: tl.constexpr, PAD_H: tl.constexpr, PAD_W: tl.constexpr,
    KH: tl.constexpr, KW: tl.constexpr, HAS_BIAS: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
):
    # Grouped program order: GROUP_M row tiles in a row use the same weight columns while those are in L2.
    pid = tl.program_id(0)
    num_m = tl.cdiv(M, BLOCK_M)
    num_n = tl.cdiv(O, BLOCK_N)
    per_group = GROUP_M * num_n
    first_m = (pid // per_group) * GROUP_M
    size_m = min(num_m - first_m, GROUP_M)
    pid_m = first_m + (pid % per_group) % size_m
    pid_n = (pid % per_group) // size_m

    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)  # output pixels (n, ho, wo), row-major
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)  # output channels
    offs_k = tl.arange(0, BLOCK_K)  # input channels within one step
    m_ok = offs_m < M
    n_ok = offs_n < O
    wo = offs_m % WO
    ho = (offs_m // WO) % HO
    n = offs_m // (WO * HO)
    hi0 = ho * STRIDE_H - PAD_H  # input row of tap r = 0
    wi0 = wo * STRIDE_W - PAD_W
    x_rows = x_ptr + n.to(tl.int64) * sxn  # [BLOCK_M] pointers to each output pixel's image
    w_cols = w_ptr + offs_n.to(tl.int64) * swo  # [BLOCK_N] pointers to each output channel's filter

    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    c_steps = (C + BLOCK_K - 1) // BLOCK_K
    for step in range(0, KH * KW * c_steps):  # K = (tap r, tap s, channel block), channels innermost
        c0 = (step % c_steps) * BLOCK_K
        tap = step // c_steps
        r = tap // KW
        s = tap % KW
        hi = hi0 + r
        wi = wi0 + s
        row_ok = m_ok & (hi >= 0) & (hi < H) & (wi >= 0) & (wi < W)  # outside the image: zero padding
        cs = c0 + offs_k
        c_ok = cs < C
        a_ptrs = (x_rows + hi.to(tl.int64) * sxh + wi.to(tl.int64) * sxw)[:, None] + (cs * sxc)[None, :]
        a = tl.load(a_ptrs, mask=row_ok[:, None] & c_ok[None, :], other=0)  # [BLOCK_M, BLOCK_K] uint8
        b_ptrs = (w_cols + r * swh + s * sww)[None, :] + (cs * swc)[:, None]
        b = tl.load(b_ptrs, mask=c_ok[:, None] & n_ok[None, :], other=0)  # [BLOCK_K, BLOCK_N] uint8
        acc = tl.dot(a.to(tl.float8e4nv, bitcast=True), b.to(tl.float8e4nv, bitcast=True), acc,
                     max_num_imprecise_acc=BLOCK_K)

    out = acc * tl.load(scale_ptr + offs_n, mask=n_ok, other=0.0)[None, :]
    if HAS_BIAS:
        out += tl.load(bias_ptr + offs_n, mask=n_ok, other=0.0)[None, :]
    y_rows = y_ptr + n.to(tl.int64) * syn + ho.to(tl.int64) * syh + wo.to(tl.int64) * syw
    y_ptrs = y_rows[:, None] + (offs_n * syo)[None, :]
    tl.store(y_ptrs, out.to(y_ptr.dtype.element_ty), mask=m_ok[:, None] & n_ok[None, :])


_tuned_kernel = triton.autotune(configs=_CONFIGS, key=["M", "C", "O", "KH", "KW", "STRIDE_H", "STRIDE_W"])(
    _fp8_conv_kernel)


def triton_fp8_conv2d(x_q: torch.Tensor, w_q: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None,
                      stride: tuple[int, int], padding: tuple[int, int], out_dtype: torch.dtype,
                      config: dict[str, int] | None = None) -> torch.Tensor:
    """``conv(x_q, w_q) * scale + bias`` as :func:`.fp8_numerics.reference_fp8_conv2d` (same arguments), on CUDA.

    ``x_q`` ``[N, C, H, W]`` and ``w_q`` ``[O, C, kh, kw]`` are ``float8_e4m3fn`` (any strides; channels-last is the
    fast case); the result ``[N, O, H', W']`` is channels-last. ``config`` (``BLOCK_M``, ``BLOCK_N``, ``BLOCK_K``,
    ``GROUP_M``) skips the autotuner (tests, the Triton interpreter).
    """
    n, c, h, w = x_q.shape
    o, c_w, kh, kw = w_q.shape
    if c_w != c:
        raise ValueError(f"input has {c} channels, weight expects {c_w}")
    ho = (h + 2 * padding[0] - kh) // stride[0] + 1
    wo = (w + 2 * padding[1] - kw) // stride[1] + 1
    y = torch.empty((n, o, ho, wo), dtype=out_dtype, device=x_q.device, memory_format=torch.channels_last)
    m = n * ho * wo
    args = (x_q.view(torch.uint8), w_q.view(torch.uint8), scale.float().contiguous(),
            (bias if bias is not None else scale).float().contiguous(), y,
            m, h, w, c, o, ho, wo, *x_q.stride(), *w_q.stride(), *y.stride())
    consts = dict(STRIDE_H=stride[0], STRIDE_W=stride[1], PAD_H=padding[0], PAD_W=padding[1], KH=kh, KW=kw,
                  HAS_BIAS=bias is not None)
    if config is None:
        def grid(meta: dict[str, int]) -> tuple[int]:
            return (triton.cdiv(m, meta["BLOCK_M"]) * triton.cdiv(o, meta["BLOCK_N"]),)
        _tuned_kernel[grid](*args, **consts)
    else:
        grid_size = triton.cdiv(m, config["BLOCK_M"]) * triton.cdiv(o, config["BLOCK_N"])
        _fp8_conv_kernel[(grid_size,)](*args, **consts, **config)
    return y
