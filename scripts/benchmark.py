#!/usr/bin/env python3
"""Time encode / decode of a Cosmos tokenizer: plain eager, batched eager, ``torch.compile`` of the plain graph, and
the fast path (:func:`nemo_cosmos_tokenizer.fast.optimize`), in one process on one GPU.

Real-size networks with random weights (speed does not depend on the values). For discrete models the
``quant_conv`` weights are scaled so the pre-quantization tensor has std ~1.5 (as in the conformance cases);
otherwise nearly every position falls into the same FSQ cell and the index comparison says nothing.

Reports per mode and part: windows per call, median ms per call (CUDA events, after warm-up), frames/s, ms/frame,
peak GiB (``max_memory_allocated`` during the timed calls), MFU (counted FLOPs / time / 989.4 TFLOP/s dense bf16
and / the measured bf16 GEMM rate), first-call seconds (compile + autotune) and the speed-up over plain eager at
one window per call. ``--check`` compares the fast path with plain eager (same dtype) and both with float32 on
the first window. Prints a table; writes JSON to ``--out`` (default ``$OUT/benchmark-<model>.json`` when ``$OUT``
is set).

Examples::

    python scripts/benchmark.py --model DV8x16x16 --modes eager1,eager,compiled,fast --batch 8 --eager-batch 4,8 --check
    python scripts/benchmark.py --model CV8x8x8 --modes fast --parts encode --height 1088 --width 1920 --batch 1
    python scripts/benchmark.py --model DI8x8 --height 1024 --width 1024 --batch 16
    # dry run on a CPU with a narrow model
    python scripts/benchmark.py --model DV8x16x16 --device cpu --dtype float32 --channels 8 --height 64 --width 64 \\
        --modes eager1,fast --no-compile --reps 1 --warmup 0 --check
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nemo_cosmos_tokenizer as nct  # noqa: E402
from nemo_cosmos_tokenizer.registry import resolve_suffix  # noqa: E402
from nemo_cosmos_tokenizer.fast import optimize, relative_error  # noqa: E402
from nemo_cosmos_tokenizer.fast.profiling import (  # noqa: E402
    H100_BF16_DENSE_TFLOPS,
    count_flops,
    latent_input_shape,
    time_cuda,
)

MODES = ("eager1", "eager", "compiled", "fast", "fast-cg")
MODE_HELP = {
    "eager1": "plain eager, one window per call",
    "eager": "plain eager at --eager-batch windows per call (best reported)",
    "compiled": "torch.compile of the plain eager graph at --batch",
    "fast": "fast path (optimize(), torch.compile) at --batch",
    "fast-cg": "fast path with CUDA graphs (compile mode reduce-overhead)",
}




def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="released name or short form, e.g. DV8x16x16, CV8x8x8, DI8x8")
    p.add_argument("--height", type=int, default=720)
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--frames", type=int, default=17, help="frames per window (video models)")
    p.add_argument("--batch", type=int, default=8, help="windows (images) per call for compiled / fast modes")
    p.add_argument("--decode-batch", type=int, default=None, help="windows per decode call (default --batch)")
    p.add_argument("--eager-batch", default="4,8", help="comma list of batches for mode 'eager'")
    p.add_argument("--modes", default="eager1,eager,compiled,fast", help=f"comma list of {', '.join(MODES)}")
    p.add_argument("--parts", default="encode,decode")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--dtype", default="bfloat16")
    p.add_argument("--device", default="cuda")
    p.add_argument("--channels", type=int, default=None, help="override the base width (dry runs)")
    p.add_argument("--no-compile", action="store_true", help="fast path without torch.compile")
    p.add_argument("--compile-mode", default=None, help="torch.compile mode for the fast path")
    p.add_argument("--eager-numerics", action="store_true", help="keep eager's intermediate bf16 roundings")
    p.add_argument("--attention", default="materialized", help="fast-path attention: materialized or sdpa")
    p.add_argument("--check", action="store_true", help="compare fast vs eager vs float32 on the first window")
    p.add_argument("--profile", action="store_true", help="print the top CUDA kernels of one fast call per part")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="JSON output path")
    args = p.parse_args(argv)
    args.modes = [m for m in args.modes.split(",") if m]
    bad = [m for m in args.modes if m not in MODES]
    if bad:
        p.error(f"unknown modes {bad}; choose from {MODES}")
    args.parts = [m for m in args.parts.split(",") if m]
    args.eager_batch = [int(b) for b in args.eager_batch.split(",") if b]
    args.decode_batch = args.decode_batch or args.batch
    return args


def environment(device: torch.device) -> dict[str, Any]:
    env = {"torch": torch.__version__, "python": platform.python_version(), "device": str(device)}
    if device.type == "cuda":
        env.update(gpu=torch.cuda.get_device_name(device), cuda=torch.version.cuda,
                   cudnn=torch.backends.cudnn.version(), sms=torch.cuda.get_device_properties(device).multi_processor_count)
    return env


def gemm_tflops(device: torch.device) -> float | None:
    """Measured bf16 GEMM rate (8192^3, random data): the practical ceiling."""
    if device.type != "cuda":
        return None
    a = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    t = time_cuda(lambda: a @ b, warmup=3, reps=10)
    return 2 * 8192**3 / (t.median_ms * 1e-3) / 1e12


def calibrate_quant_conv(model: nct.CosmosTokenizer, x: torch.Tensor, target_std: float = 1.5) -> float:
    """Scale ``quant_conv`` so the pre-quantization tensor of ``x`` has std ``target_std``; returns the factor."""
    with torch.no_grad():
        std = model.encode_pre_quant(x).float().std().item()
        factor = target_std / max(std, 1e-12)
        conv = model.quant_conv.conv3d if hasattr(model.quant_conv, "conv3d") else model.quant_conv
        conv.weight.mul_(factor)
        conv.bias.mul_(factor)
    return factor


def free(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_gib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def measure(fn: Callable[[], object], device: torch.device, warmup: int, reps: int) -> dict[str, Any]:
    """First call, warm-up, then timed calls; peak memory of the timed calls only."""
    free(device)
    torch.cuda.synchronize(device) if device.type == "cuda" else None
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    first = time.perf_counter() - start
    timing = time_cuda(fn, warmup=max(warmup - 1, 0), reps=reps)
    return {"median_ms": timing.median_ms, "times_ms": timing.times_ms, "spread": timing.spread,
            "first_call_s": first, "peak_gib": peak_gib(device)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(args.seed)
    name = resolve_suffix(args.model)
    config = nct.get_config(name)
    if args.channels:
        config = config.replace(channels=args.channels)
    video = config.is_video
    frames = args.frames if video else 1
    unit = "frames" if video else "images"

    def input_shape(batch: int) -> tuple[int, ...]:
        return (batch, 3, args.frames, args.height, args.width) if video else (batch, 3, args.height, args.width)

    config.check_input_shape(input_shape(1))
    env = environment(device)
    roof = gemm_tflops(device)
    flops = {part: count_flops(config, input_shape(1), part) for part in ("encode", "decode")}
    print(f"# {name} {input_shape(1)[1:]} {env}", flush=True)
    print(f"# GFLOP per window: encode {flops['encode'] / 1e9:.1f}, decode {flops['decode'] / 1e9:.1f}; "
          f"measured bf16 GEMM {roof and round(roof)} TFLOP/s", flush=True)

    model = nct.build_tokenizer(config).to(device=device, dtype=dtype).eval().requires_grad_(False)
    gen = torch.Generator(device="cpu").manual_seed(args.seed)

    def video_input(batch: int) -> torch.Tensor:
        return (torch.rand(input_shape(batch), generator=gen) * 2 - 1).to(device=device, dtype=dtype)

    x_cal = video_input(1)
    scale = calibrate_quant_conv(model, x_cal) if config.is_discrete else None
    batches = {"eager1": [1], "eager": args.eager_batch, "compiled": [args.batch], "fast": [args.batch],
               "fast-cg": [args.batch]}

    def decode_input(batch: int) -> torch.Tensor:
        shape = latent_input_shape(config, input_shape(batch))
        if config.is_discrete:
            return torch.randint(0, config.codebook_size, (shape[0], *shape[2:]), generator=gen,
                                 dtype=torch.int32).to(device)
        return torch.randn(shape, generator=gen).to(device=device, dtype=dtype)

    results: list[dict[str, Any]] = []
    fast_models: dict[str, Any] = {}
    checks: dict[str, Any] = {}

    for mode in args.modes:
        fast = None
        if mode in ("fast", "fast-cg"):
            t0 = time.perf_counter()
            fast = optimize(model, compile=not args.no_compile,
                            compile_mode="reduce-overhead" if mode == "fast-cg" else args.compile_mode,
                            eager_numerics=args.eager_numerics, attention=args.attention)
            fast_models[mode] = fast
            build_s = time.perf_counter() - t0
        compiled_enc = compiled_dec = None
        if mode == "compiled":
            compiled_enc = torch.compile(model.encode_pre_quant, dynamic=False)
            compiled_dec = torch.compile(lambda z: model.decoder(model.post_quant_conv(z)), dynamic=False)
        for part in args.parts:
            part_batches = batches[mode] if part == "encode" or mode in ("eager1", "eager") else [args.decode_batch]
            for batch in part_batches:
                if part == "encode":
                    x = video_input(batch)
                    if mode in ("eager1", "eager"):
                        fn = lambda: model.encode(x)  # noqa: E731
                    elif mode == "compiled":
                        def fn() -> object:
                            h = compiled_enc(x)
                            return model.quantizer(h) if model.quantizer is not None else h
                    else:
                        fn = lambda: fast.encode(x)  # noqa: E731
                else:
                    z = decode_input(batch)
                    if mode in ("eager1", "eager"):
                        fn = lambda: model.decode(z)  # noqa: E731
                    elif mode == "compiled":
                        def fn() -> object:
                            codes = model.quantizer.indices_to_codes(z).to(dtype) if config.is_discrete else z
                            return compiled_dec(codes)
                    else:
                        fn = lambda: fast.decode(z)  # noqa: E731
                try:
                    with torch.no_grad():
                        r = measure(fn, device, args.warmup, args.reps)
                except torch.OutOfMemoryError as exc:
                    print(f"{mode} {part} batch {batch}: out of memory ({str(exc).splitlines()[0]})", flush=True)
                    free(device)
                    continue
                n_frames = batch * frames
                r.update(mode=mode, part=part, batch=batch, frames_per_call=n_frames,
                         fps=n_frames / (r["median_ms"] * 1e-3), ms_per_frame=r["median_ms"] / n_frames,
                         tflops=flops[part] * batch / (r["median_ms"] * 1e-3) / 1e12)
                r["mfu"] = r["tflops"] / H100_BF16_DENSE_TFLOPS
                r["of_gemm_roof"] = r["tflops"] / roof if roof else None
                if fast is not None:
                    r["build_s"] = build_s
                    r["use_fast"] = fast.use_fast
                    r["verify"] = [rep.to_dict() for rep in fast.reports if rep.part == part]
                results.append(r)
                print(f"{mode:9s} {part:6s} batch {batch:3d}: {r['median_ms']:9.2f} ms/call {r['fps']:8.1f} {unit}/s "
                      f"{r['ms_per_frame']:7.3f} ms/{unit[:-1]} peak {r['peak_gib'] or 0:6.2f} GiB "
                      f"MFU {r['mfu']:.1%} first call {r['first_call_s']:.1f} s", flush=True)
                if args.profile and mode == "fast":
                    profile(fn, f"{mode}-{part}", args.out)
        if compiled_enc is not None:
            del compiled_enc, compiled_dec
            torch._dynamo.reset()
        free(device)

    if args.check and fast_models:
        fast = fast_models.get("fast") or next(iter(fast_models.values()))
        checks = equality(model, fast, video_input(args.batch), decode_batch=args.decode_batch, args=args)
        print("# check:", json.dumps(checks, indent=1), flush=True)

    # speed-ups over plain eager at one window per call
    base = {r["part"]: r["fps"] for r in results if r["mode"] == "eager1"}
    for r in results:
        r["speedup_vs_eager1"] = r["fps"] / base[r["part"]] if r["part"] in base else None
    report = {"model": name, "config": config.to_dict(), "input": list(input_shape(1)[1:]), "dtype": args.dtype,
              "flops_per_window": flops, "gemm_tflops": roof, "quant_conv_scale": scale, "env": env,
              "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
              "results": results, "check": checks}
    print_table(report, unit)
    out = args.out or (os.path.join(os.environ["OUT"], f"benchmark-{args.model}.json") if os.environ.get("OUT") else None)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(report, indent=1, default=str))
        print(f"# wrote {out}")
    return 0


def equality(model: nct.CosmosTokenizer, fast, x: torch.Tensor, *, decode_batch: int, args) -> dict[str, Any]:
    """Fast vs plain eager (same dtype) vs float32 eager on the first window (TF32 off for the float32 run)."""
    out: dict[str, Any] = {}
    with torch.no_grad():
        fast_pre = fast.encode_pre_quant(x)[:1].float()
        eager_pre = model.encode_pre_quant(x[:1]).float()
        ref_model = copy.deepcopy(model).float()
        tf32 = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
        try:
            ref_pre = ref_model.encode_pre_quant(x[:1].float())
            out["encode"] = {
                "fast_vs_eager": relative_error(fast_pre, eager_pre),
                "fast_vs_fp32": relative_error(fast_pre, ref_pre),
                "eager_vs_fp32": relative_error(eager_pre, ref_pre),
            }
            if model.quantizer is not None:
                q = model.quantizer
                fi, ei, ri = q(fast_pre)[0], q(eager_pre)[0], q(ref_pre)[0]
                out["indices"] = {
                    "fast_vs_eager": (fi == ei).float().mean().item(),
                    "fast_vs_fp32": (fi == ri).float().mean().item(),
                    "eager_vs_fp32": (ei == ri).float().mean().item(),
                    "positions": fi.numel(),
                }
                z1 = q(eager_pre)[1]
            else:
                z1 = eager_pre
            if "decode" in args.parts:
                z = z1.to(fast.dtype).expand(decode_batch, *z1.shape[1:]).contiguous()
                fast_rec = fast._decode(z)[:1].float()
                eager_rec = model.decoder(model.post_quant_conv(z[:1])).float()
                ref_rec = ref_model.decoder(ref_model.post_quant_conv(z1.float()))
                out["decode"] = {
                    "fast_vs_eager": relative_error(fast_rec, eager_rec),
                    "fast_vs_fp32": relative_error(fast_rec, ref_rec),
                    "eager_vs_fp32": relative_error(eager_rec, ref_rec),
                }
        finally:
            torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32
            del ref_model
    out["use_fast"] = fast.use_fast
    return out


def profile(fn: Callable[[], object], label: str, out: str | None) -> None:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    with torch.no_grad(), torch_profile(activities=activities) as prof:
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
    sort = "cuda_time_total" if torch.cuda.is_available() else "cpu_time_total"
    table = prof.key_averages().table(sort_by=sort, row_limit=40, max_name_column_width=110)
    target = os.environ.get("OUT") or (str(Path(out).parent) if out else None)
    if target:
        path = Path(target, f"profile-{label}.txt")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(table)
        print(f"# profile {label} written to {path}", flush=True)
    else:
        print(f"# profile {label}\n{table}", flush=True)


def print_table(report: dict[str, Any], unit: str) -> None:
    env = report["env"]
    print(f"\n## {report['model']} input {report['input']} {report['dtype']} on {env.get('gpu', env['device'])}, "
          f"torch {env['torch']}")
    print(f"| mode | part | windows/call | ms/call | {unit}/s | ms/{unit[:-1]} | peak GiB | MFU | x eager1 | first call s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in report["results"]:
        speed = f"{r['speedup_vs_eager1']:.2f}" if r.get("speedup_vs_eager1") else "-"
        peak = f"{r['peak_gib']:.2f}" if r["peak_gib"] is not None else "-"
        print(f"| {r['mode']} | {r['part']} | {r['batch']} | {r['median_ms']:.1f} | {r['fps']:.1f} | "
              f"{r['ms_per_frame']:.3f} | {peak} | {r['mfu']:.1%} | {speed} | {r['first_call_s']:.1f} |")


if __name__ == "__main__":
    raise SystemExit(main())
