#!/usr/bin/env python3
"""FP8 convolutions (issue 24) against the bf16 fast path, in one process on one GPU: speed, memory and quality.

For each model: real-size network with random weights (speed does not depend on the values; for discrete models
``quant_conv`` is scaled so the FSQ input has std 1.5, as in scripts/benchmark.py, else nearly every position falls
into one FSQ cell), calibrated on ``--calib-windows`` random windows, timed on ``--batch`` other random windows:

* rows: the bf16 fast path (``FastOptions()``) and the FP8 fast path per ``--kernels`` entry (``cudnn``, ``triton``;
  ``emulated`` for CPU dry runs), each compiled like the production path unless ``--no-compile``;
* speed: encode / decode frames/s and ms per frame (median of ``--reps`` CUDA-event timed calls after warm-up), peak
  GiB (``max_memory_allocated`` during the timed calls), and the ratio to the bf16 row of the same run;
* quality on the timed windows (``nemo_cosmos_tokenizer.fast.measure_fp8_quality``): FSQ index agreement with the
  float32 networks (TF32 off) for eager bf16, the bf16 fast path and FP8; the latent's / pre-quantization tensor's
  relative error against float32; the reconstruction's PSNR against the input;
* the FP8 share of the convolution FLOPs (``fp8_layer_plan``); ``--plan`` prints the whole layer mapping.

``--check`` exits 1 unless every FP8 row ran and meets the issue's bars: DV index agreement with float32 at least
eager bf16's, and reconstruction PSNR within 0.1 dB of the bf16 fast path's. (The speed targets are against NVIDIA's
compiled reference, which scripts/benchmark.py and PERFORMANCE.md measure; this table gives the ratio to our bf16.)

Examples::

    python scripts/benchmark_fp8.py --models DV8x16x16,CV8x8x8,CV4x8x8 --kernels cudnn,triton --check \\
        --json $OUT/fp8.json
    python scripts/benchmark_fp8.py --models DV8x16x16 --kernels triton --parts encode --plan
    python scripts/benchmark_fp8.py --models CV8x8x8 --height 1088 --width 1920 --batch 1 --kernels cudnn
    # the dataset builder's settings (deterministic kernels, eager rounding) in the same table
    python scripts/benchmark_fp8.py --models DV8x16x16 --kernels triton --deterministic
    # dry run on a CPU: narrow model, the float32 emulation of the FP8 numerics, no compile
    python scripts/benchmark_fp8.py --models DV8x16x16 --device cpu --channels 16 --height 64 --width 96 \\
        --batch 2 --kernels emulated --no-compile --warmup 0 --reps 1
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

DEFAULT_BATCH = {"DV": 8, "CV": 4, "DI": 16, "CI": 16}  # windows per call of the BENCHMARKS.md fast-path rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="DV8x16x16,CV8x8x8,CV4x8x8", help="comma list of released or short names")
    p.add_argument("--height", type=int, default=720)
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--frames", type=int, default=17, help="frames per window (video models)")
    p.add_argument("--batch", type=int, default=None, help="windows per call (default: 8 DV, 4 CV, 16 images)")
    p.add_argument("--kernels", default="cudnn,triton", help="comma list of FP8 kernels: cudnn, triton, emulated")
    p.add_argument("--parts", default="encode,decode", help="comma list of encode, decode")
    p.add_argument("--calib-windows", type=int, default=2, help="random windows the FP8 scales are calibrated on")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--device", default="cuda")
    p.add_argument("--dtype", default="bfloat16", help="model dtype around the FP8 convolutions")
    p.add_argument("--channels", type=int, default=None, help="override the base width (dry runs)")
    p.add_argument("--no-compile", action="store_true", help="fast paths without torch.compile")
    p.add_argument("--deterministic", action="store_true",
                   help="the dataset builder's settings: deterministic kernels and eager_numerics (process-wide)")
    p.add_argument("--plan", action="store_true", help="print each model's FP8 layer mapping")
    p.add_argument("--check", action="store_true", help="exit 1 unless every FP8 row meets the issue's bars")
    p.add_argument("--json", default=None, help="write the report as JSON to this path")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    args.models = [m for m in args.models.split(",") if m]
    args.kernels = [k for k in args.kernels.split(",") if k]
    args.parts = [k for k in args.parts.split(",") if k]
    bad = [k for k in args.kernels if k not in ("cudnn", "triton", "emulated")] + \
          [k for k in args.parts if k not in ("encode", "decode")]
    if bad:
        p.error(f"unknown kernels / parts {bad}")
    return args




def time_part(fn, device, warmup: int, reps: int) -> dict[str, Any]:
    """Median ms per call (CUDA events after ``warmup`` calls) and the peak GiB of the timed calls."""
    import torch

    from nemo_cosmos_tokenizer.fast.profiling import time_cuda

    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
    with torch.no_grad():
        fn()  # first call: compile, autotune, cuDNN plans
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
        timing = time_cuda(fn, warmup=max(warmup - 1, 0), reps=reps)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return {"median_ms": timing.median_ms, "times_ms": timing.times_ms, "peak_gib": peak}


def bench_model(short: str, args: argparse.Namespace) -> dict[str, Any]:
    from dataclasses import replace

    import torch

    import nemo_cosmos_tokenizer as nct
    from nemo_cosmos_tokenizer.fast import (FastOptions, calibrate_fp8, format_fp8_plan, fp8_layer_plan,
                                            measure_fp8_quality, optimize)
    from nemo_cosmos_tokenizer.fast.profiling import latent_input_shape
    from nemo_cosmos_tokenizer.registry import resolve_suffix

    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    name = resolve_suffix(short)
    config = nct.get_config(name)
    if args.channels:
        config = config.replace(channels=args.channels)
    batch = args.batch or DEFAULT_BATCH[config.family]
    frames = args.frames if config.is_video else 1

    def shape(n: int) -> tuple[int, ...]:
        return (n, 3, args.frames, args.height, args.width) if config.is_video else (n, 3, args.height, args.width)

    config.check_input_shape(shape(1))
    gen = torch.Generator().manual_seed(args.seed)
    torch.manual_seed(args.seed)
    model = nct.build_tokenizer(config).to(device=device, dtype=dtype).eval().requires_grad_(False)
    x_cal = (torch.rand(shape(args.calib_windows), generator=gen) * 2 - 1).to(device=device, dtype=dtype)
    x = (torch.rand(shape(batch), generator=gen) * 2 - 1).to(device=device, dtype=dtype)
    if config.is_discrete:  # FSQ input std 1.5 (see the module docstring)
        with torch.no_grad():
            factor = 1.5 / model.encode_pre_quant(x_cal[:1]).float().std().item()
            conv = model.quant_conv.conv3d if hasattr(model.quant_conv, "conv3d") else model.quant_conv
            conv.weight.mul_(factor)
            conv.bias.mul_(factor)
    base = FastOptions(compile=not args.no_compile, auto_verify=False, eager_numerics=args.deterministic)
    plan = fp8_layer_plan(model, base.fp8_include, base.fp8_exclude, input_shape=shape(1))
    if args.plan:
        print(f"# FP8 layer mapping of {name}\n{format_fp8_plan(plan)}", flush=True)
    flop_share = {}
    for side in ("encode", "decode"):
        total = sum(p.flops or 0 for p in plan if p.side == side)
        flop_share[side] = sum(p.flops or 0 for p in plan if p.side == side and p.fp8) / total if total else None
    calib = calibrate_fp8(model, [x_cal[i:i + 1] for i in range(x_cal.shape[0])], replace(base, precision="fp8"))
    z_shape = latent_input_shape(config, shape(batch))
    if config.is_discrete:
        z = torch.randint(0, config.codebook_size, (z_shape[0], *z_shape[2:]), generator=gen, dtype=torch.int32)
    else:
        z = torch.randn(z_shape, generator=gen)
    z = z.to(device) if config.is_discrete else z.to(device=device, dtype=dtype)

    rows: list[dict[str, Any]] = []
    fast_bf16 = None
    for precision in ["bf16"] + [f"fp8-{k}" for k in args.kernels]:
        row: dict[str, Any] = {"model": name, "precision": precision, "batch": batch, "frames_per_call": batch * frames}
        rows.append(row)
        try:
            if precision == "bf16":
                fast = fast_bf16 = optimize(model, base, dtype=dtype, device=device)
            else:
                options = replace(base, precision="fp8", fp8_kernel=precision.removeprefix("fp8-"))
                fast = optimize(model, options, dtype=dtype, device=device, fp8_calibration=calib)
                row["fp8_layers"] = len(fast.fp8_layers)
                row["fp8_flop_share"] = flop_share
            for part in args.parts:
                fn = (lambda: fast.encode(x)) if part == "encode" else (lambda: fast.decode(z))
                r = time_part(fn, device, args.warmup, args.reps)
                row[part] = {**r, "fps": batch * frames / (r["median_ms"] * 1e-3),
                             "ms_per_frame": r["median_ms"] / (batch * frames)}
                if precision != "bf16" and part in rows[0]:
                    row[part]["x_bf16"] = row[part]["fps"] / rows[0][part]["fps"]
            if precision != "bf16" and fast_bf16 is not None:
                row["quality"] = measure_fp8_quality(model, x, options=base, dtype=dtype, device=device,
                                                     fast_bf16=fast_bf16, fast_fp8=fast).to_dict()
        except Exception as exc:  # one kernel failing (no engine, no library) must not hide the others' numbers
            row["error"] = f"{type(exc).__name__}: {exc}"
            print(f"# {name} {precision}: {row['error']}", flush=True)
        finally:
            if precision != "bf16":
                fast = None
            if device.type == "cuda":
                torch.cuda.empty_cache()
        print(f"# {json.dumps(_summary(row))}", flush=True)
    return {"model": name, "input": list(shape(1)[1:]), "dtype": args.dtype, "rows": rows,
            "calibration": {"windows": args.calib_windows, "layers": len(calib.layers)}}


def _summary(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: row[k] for k in ("model", "precision") if k in row}
    for part in ("encode", "decode"):
        if part in row:
            out[f"{part}_fps"] = round(row[part]["fps"], 1)
    if "error" in row:
        out["error"] = row["error"]
    return out


def table(report: dict[str, Any]) -> str:
    """The report as a markdown table, one row per model and precision (frames/s; images/s for image models)."""
    env = report["env"]
    lines = [f"## FP8 vs bf16 fast path on {env.get('gpu', env['device'])}, torch {env['torch']}",
             "| model | precision | FP8 convs (enc/dec FLOP share) | encode fps | ms/frame | peak GiB | × bf16 | "
             "decode fps | ms/frame | peak GiB | × bf16 | indices = fp32 (eager / bf16 fast / this) | "
             "latent rel. err vs fp32 | recon PSNR dB (bf16 fast / this) | bars |",
             "|" + "---|" * 15]
    for model in report["models"]:
        for row in model["rows"]:
            cells = [model["model"].split("-")[-1], row["precision"]]
            share = row.get("fp8_flop_share")
            cells.append(f"{row['fp8_layers']} ({share['encode']:.0%}/{share['decode']:.0%})"
                         if share and share["encode"] is not None and share["decode"] is not None else "—")
            for part in ("encode", "decode"):
                r = row.get(part)
                cells += ([f"{r['fps']:.1f}", f"{r['ms_per_frame']:.3f}",
                           f"{r['peak_gib']:.2f}" if r["peak_gib"] is not None else "—",
                           f"{r['x_bf16']:.2f}" if "x_bf16" in r else "1.00" if row["precision"] == "bf16" else "—"]
                          if r else ["—"] * 4)
            q = row.get("quality")
            if q:
                p = q["paths"]
                idx = p["fast-fp8"]["index_agreement"]
                cells.append(f"{p['eager']['index_agreement']:.2%} / {p['fast-bf16']['index_agreement']:.2%} / "
                             f"{idx:.2%}" if idx is not None else "—")
                errors = p["fast-fp8"]["latent_rel_error"], p["fast-bf16"]["latent_rel_error"]
                cells.append(f"{errors[0]:.2e} (bf16 fast {errors[1]:.2e})")
                cells.append(f"{p['fast-bf16']['psnr_db']:.2f} / {p['fast-fp8']['psnr_db']:.2f}")
                cells.append(", ".join(f"{k} {'ok' if v else 'MISSED'}" for k, v in q["bars"].items()))
            else:
                cells += ["—", "—", "—", row.get("error", "—") if row["precision"] != "bf16" else "—"]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def failures(report: dict[str, Any]) -> list[str]:
    """What ``--check`` refuses: an FP8 row that did not run, or missed a bar."""
    missed = []
    for model in report["models"]:
        for row in model["rows"]:
            if row["precision"] == "bf16":
                if "error" in row:
                    missed.append(f"{model['model']} bf16: {row['error']}")
                continue
            if "error" in row or "quality" not in row:
                missed.append(f"{model['model']} {row['precision']}: {row.get('error', 'no quality measured')}")
                continue
            missed += [f"{model['model']} {row['precision']}: {bar} bar missed"
                       for bar, ok in row["quality"]["bars"].items() if not ok]
    return missed


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import platform

    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from nemo_cosmos_tokenizer.devices import deterministic_kernels

    device = torch.device(args.device)
    env = {"torch": torch.__version__, "python": platform.python_version(), "device": str(device)}
    if device.type == "cuda":
        env.update(gpu=torch.cuda.get_device_name(device), cuda=torch.version.cuda,
                   cudnn=torch.backends.cudnn.version(), capability=list(torch.cuda.get_device_capability(device)))
    env["settings"] = deterministic_kernels() if args.deterministic else {"cudnn.benchmark": True}
    if not args.deterministic:
        torch.backends.cudnn.benchmark = True
    report = {"env": env, "command": " ".join(["benchmark_fp8.py", *(sys.argv[1:] if argv is None else argv)]),
              "models": [bench_model(m, args) for m in args.models]}
    print(table(report))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=1, default=str))
        print(f"# wrote {args.json}")
    if args.check:
        missed = failures(report)
        for line in missed:
            print(f"# check: {line}")
        return 1 if missed else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
