#!/usr/bin/env python3
"""Micro-benchmarks behind the design of ``nemo_cosmos_tokenizer.fast`` (CUDA, bf16), one process, ~1-2 minutes.

* bias rounding: does eager ``conv(x, w, b)`` equal ``conv(x, w) + b`` bitwise (bias added after cuDNN, rounded twice)?
* spatial (1,3,3) conv: Conv3d NCDHW (plain eager) vs Conv3d channels-last-3d vs Conv2d over folded frames;
* temporal (3,1,1) conv: Conv3d NCDHW + replicate cat vs Conv2d (3,1) on the channels-last sequence view (+ cat),
  and without the cat (its lower bound);
* single-head attention with head dim 512 (mid blocks): SDPA backends, chunked materialised softmax, FlexAttention;
* per-frame GroupNorm(1)+SiLU compiled, as achieved bandwidth.

Example: ``python scripts/microbench_fast.py --only conv,attention``. Prints one line per case.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nemo_cosmos_tokenizer.fast.profiling import time_cuda  # noqa: E402

DEV, DT = "cuda", torch.bfloat16


def report(label: str, ms: float, flops: float | None = None, nbytes: float | None = None) -> None:
    extra = ""
    if flops:
        extra += f" {flops / ms / 1e9:8.1f} TFLOP/s"
    if nbytes:
        extra += f" {nbytes / ms / 1e6:8.1f} GB/s"
    print(f"{label:70s} {ms:8.3f} ms{extra}", flush=True)


def bench(fn, reps: int = 10) -> float:
    return time_cuda(fn, warmup=3, reps=reps).median_ms


def bias_rounding() -> None:
    x = torch.randn(2, 256, 5, 64, 64, device=DEV, dtype=DT)
    w = torch.randn(256, 256, 1, 3, 3, device=DEV, dtype=DT) * 0.02
    b = torch.randn(256, device=DEV, dtype=DT)
    fused = F.conv3d(x, w, b, padding=(0, 1, 1))
    sep = F.conv3d(x, w, None, padding=(0, 1, 1)) + b.view(1, -1, 1, 1, 1)
    print(f"bias rounding conv3d: equal fraction {(fused == sep).float().mean().item():.4f}", flush=True)
    x2 = x.transpose(1, 2).reshape(10, 256, 64, 64).contiguous(memory_format=torch.channels_last)
    fused2 = F.conv2d(x2, w[:, :, 0], b, padding=1)
    sep2 = F.conv2d(x2, w[:, :, 0], None, padding=1) + b.view(1, -1, 1, 1)
    print(f"bias rounding conv2d cl: equal fraction {(fused2 == sep2).float().mean().item():.4f}", flush=True)
    ref = fused.transpose(1, 2).reshape(10, 256, 64, 64)
    print(f"conv3d NCDHW vs conv2d cl (with bias): equal fraction {(ref == fused2).float().mean().item():.4f}",
          flush=True)
    lin_x = torch.randn(4096, 512, device=DEV, dtype=DT)
    lw, lb = torch.randn(512, 512, device=DEV, dtype=DT) * 0.04, torch.randn(512, device=DEV, dtype=DT)
    c1 = F.conv2d(lin_x.view(1, 64, 64, 512).permute(0, 3, 1, 2).contiguous(), lw.view(512, 512, 1, 1), lb)
    c1 = c1.permute(0, 2, 3, 1).reshape(4096, 512)
    print(f"1x1 conv vs linear+bias: equal {(c1 == F.linear(lin_x, lw) + lb).float().mean().item():.4f}, "
          f"vs addmm {(c1 == F.linear(lin_x, lw, lb)).float().mean().item():.4f}", flush=True)


def convs(b: int, c: int, t: int, h: int, w: int) -> None:
    x5 = torch.randn(b, c, t, h, w, device=DEV, dtype=DT)
    ws = torch.randn(c, c, 1, 3, 3, device=DEV, dtype=DT) * 0.02
    wt = torch.randn(c, c, 3, 1, 1, device=DEV, dtype=DT) * 0.02
    flops_s = 2 * 9 * c * c * b * t * h * w
    flops_t = 2 * 3 * c * c * b * t * h * w
    act = x5.numel() * 2
    tag = f"[{b},{c},{t},{h},{w}]"
    report(f"spatial conv3d NCDHW {tag}", bench(lambda: F.conv3d(x5, ws, padding=(0, 1, 1))), flops_s)
    x5cl = x5.contiguous(memory_format=torch.channels_last_3d)
    ws_cl = ws.contiguous(memory_format=torch.channels_last_3d)
    report(f"spatial conv3d cl3d {tag}", bench(lambda: F.conv3d(x5cl, ws_cl, padding=(0, 1, 1))), flops_s)
    frames = x5.permute(0, 2, 3, 4, 1).reshape(b * t, h, w, c).permute(0, 3, 1, 2)
    w2 = ws[:, :, 0].contiguous(memory_format=torch.channels_last)
    report(f"spatial conv2d folded cl {tag}", bench(lambda: F.conv2d(frames, w2, padding=1)), flops_s)

    def t_plain():
        xp = torch.cat([x5[:, :, :1].expand(-1, -1, 2, -1, -1), x5], dim=2)
        return F.conv3d(xp, wt)
    report(f"temporal conv3d NCDHW + cat {tag}", bench(t_plain), flops_t)
    seq = frames.permute(0, 2, 3, 1).reshape(b, t, h * w, c)
    wt2 = wt[..., 0].contiguous(memory_format=torch.channels_last)

    def t_fast():
        sp = torch.cat([seq[:, :1].expand(b, 2, h * w, c), seq], dim=1)
        return F.conv2d(sp.permute(0, 3, 1, 2), wt2)
    report(f"temporal conv2d (3,1) seq cl + cat {tag}", bench(t_fast), flops_t)
    sp = torch.cat([seq[:, :1].expand(b, 2, h * w, c), seq], dim=1)
    report(f"temporal conv2d (3,1) seq cl, no cat {tag}", bench(lambda: F.conv2d(sp.permute(0, 3, 1, 2), wt2)), flops_t)
    report(f"cat of 2 frames alone {tag}", bench(lambda: torch.cat([seq[:, :1].expand(b, 2, h * w, c), seq], dim=1)),
           None, act * (2 * t + 2) / t)
    w3 = wt[..., 0, 0].permute(2, 1, 0).contiguous()  # [3, C_in, C_out]
    out = torch.empty(b, t * h * w, c, device=DEV, dtype=DT)

    def t_bmm():
        torch.bmm(sp[:, 0:t].reshape(b, t * h * w, c), w3[0].expand(b, c, c), out=out)
        out.baddbmm_(sp[:, 1:t + 1].reshape(b, t * h * w, c), w3[1].expand(b, c, c))
        out.baddbmm_(sp[:, 2:t + 2].reshape(b, t * h * w, c), w3[2].expand(b, c, c))
        return out
    report(f"temporal 3x baddbmm {tag}", bench(t_bmm), flops_t)


def attention(n: int, length: int, d: int) -> None:
    """SDPA (memory-efficient kernel) vs the fast path's materialised attention, both vs float32 math."""
    from nemo_cosmos_tokenizer.fast.attention import materialized

    q, k, v = (torch.randn(n, 1, length, d, device=DEV, dtype=DT) for _ in range(3))
    flops = 4 * n * length * length * d
    tag = f"[{n},1,{length},{d}]"
    ref = F.scaled_dot_product_attention(q[:2].float(), k[:2].float(), v[:2].float())

    def err(out: torch.Tensor) -> float:
        return ((out[:2].float() - ref).norm() / ref.norm()).item()
    fn = lambda: F.scaled_dot_product_attention(q, k, v)  # noqa: E731
    report(f"sdpa default {tag} (rel err vs fp32 {err(fn()):.1e})", bench(fn, 5), flops)
    for budget in (1 << 30, 1 << 32):
        try:
            cfn = torch.compile(lambda q, k, v: materialized(q, k, v, False, budget), dynamic=False)
            out = cfn(q, k, v)
            report(f"materialized compiled, {budget >> 30} GiB chunks {tag} (err {err(out):.1e})",
                   bench(lambda: cfn(q, k, v), 5), flops)
        except Exception as exc:  # noqa: BLE001
            print(f"materialized {tag}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}", flush=True)


def sdpa_choice() -> None:
    """Which SDPA backend eager picks for the plain networks' attention shapes (DV8x16x16, 8 windows)."""
    shapes = {"spatial [B,T,HW,C]": (8, 3, 3600, 512), "temporal [B,HW,T,C]": (8, 3600, 3, 512),
              "spatial [N,1,HW,C]": (24, 1, 3600, 512)}
    for label, shape in shapes.items():
        q = torch.randn(shape, device=DEV, dtype=DT)
        causal = "temporal" in label
        choice = torch._fused_sdp_choice(q, q, q, None, 0.0, causal)
        print(f"sdpa backend for {label} {shape} causal={causal}: {torch.nn.attention.SDPBackend(choice).name}",
              flush=True)
    if DEV == "cuda":
        from torch.backends.cuda import SDPAParams, can_use_efficient_attention
        q = torch.randn(8, 3, 3600, 512, device=DEV, dtype=DT)
        try:
            params = SDPAParams(q, q, q, None, 0.0, False, False)
        except TypeError:
            params = SDPAParams(q, q, q, None, 0.0, False)
        print("can_use_efficient_attention [8,3,3600,512]:", can_use_efficient_attention(params, True), flush=True)


def norm(n: int, c: int, h: int, w: int) -> None:
    from torch import nn

    from nemo_cosmos_tokenizer.fast.frames import FrameNorm

    m = FrameNorm(nn.GroupNorm(1, c, eps=1e-6)).to(DEV, DT)
    x = torch.randn(n, c, h, w, device=DEV, dtype=DT).contiguous(memory_format=torch.channels_last)
    f = torch.compile(lambda x: m(x, silu=True), dynamic=False)
    report(f"FrameNorm+SiLU compiled [{n},{c},{h},{w}] (2 reads + 1 write)", bench(lambda: f(x)), None, 3 * x.numel() * 2)
    g = torch.compile(lambda x: m(x, silu=True), dynamic=False, options={"emulate_precision_casts": True})
    report(f"FrameNorm+SiLU compiled, emulate casts [{n},{c},{h},{w}]", bench(lambda: g(x)), None, 3 * x.numel() * 2)
    y = torch.empty_like(x)
    report(f"copy [{n},{c},{h},{w}] (1 read + 1 write)", bench(lambda: y.copy_(x)), None, 2 * x.numel() * 2)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--only", default="sdpa,attention,norm")
    p.add_argument("--tiny", action="store_true", help="tiny shapes on the CPU (a dry run of this script)")
    args = p.parse_args()
    global DEV, DT
    torch.backends.cudnn.benchmark = True
    only = args.only.split(",")
    s = 16 if args.tiny else 1
    if args.tiny:
        DEV, DT = "cpu", torch.float32
    else:
        print(f"# {torch.cuda.get_device_name()} torch {torch.__version__} cudnn {torch.backends.cudnn.version()}")
    if "bias" in only:
        bias_rounding()
    if "conv" in only:
        convs(8 // (s // 4 or 1), 256 // s, 5, 180 // s, 320 // s)  # DV/CV 720p level 0, 8 windows
        convs(8 // (s // 4 or 1), 512 // s, 3, 90 // s, 160 // s)   # DV 720p level 1 / CV level 1-2
    if "attention" in only:
        attention(24 // s * 2, 45 * 80 // s, 512 // s)  # DV8x16x16 720p mid block, 8 windows x 3 latent frames
        attention(12 // s * 2, 90 * 160 // s, 512 // s)  # CV8x8x8 720p mid block, 4 windows x 3 latent frames
    if "sdpa" in only:
        sdpa_choice()
    if "norm" in only:
        norm(40 // s * 2, 256 // s, 180 // s, 320 // s)


if __name__ == "__main__":
    main()
