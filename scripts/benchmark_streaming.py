#!/usr/bin/env python3
"""Peak memory and speed of exact streaming encode vs whole-clip encode of long videos.

Real-size video tokenizer with random weights (no checkpoint needed), clips of 121 / 241 / 481 frames:

* streaming (``nemo_cosmos_tokenizer.networks.streaming.StreamingEncoder``): ``1 + chunk`` frames first, then
  ``chunk`` frames at a time; each chunk is made on the device just before it is encoded, as frames from a
  reader would arrive, so the clip is never held whole. Run with unlimited attention context (exact) and with
  ``--max-context-frames`` (bounded memory);
* whole clip (``model.encode``): the clip is made on the device at once (its own size is part of the peak);
  out-of-memory is caught and reported.

fps = input frames / wall-clock seconds (synchronised); peak = ``torch.cuda.max_memory_allocated`` during the run.
Also reports the largest latent difference between streaming and whole-clip encoding where both ran.

GPU (what BENCHMARKS.md records)::

    python3 scripts/benchmark_streaming.py --model Cosmos-1.0-Tokenizer-CV8x8x8 --frames 121 241 481

CPU smoke test with a reduced-width model and tiny frames::

    python3 scripts/benchmark_streaming.py --device cpu --dtype float32 --height 64 --width 64 \\
        --frames 9 17 --chunk-frames 8 --channels 4
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nemo_cosmos_tokenizer.networks import build_tokenizer  # noqa: E402
from nemo_cosmos_tokenizer.networks.streaming import StreamingEncoder  # noqa: E402
from nemo_cosmos_tokenizer.registry import get_config  # noqa: E402

DTYPES = {"bfloat16": torch.bfloat16, "bf16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="Cosmos-1.0-Tokenizer-CV8x8x8", help="released video model name (CV/DV)")
    p.add_argument("--frames", type=int, nargs="+", default=[121, 241, 481], help="clip lengths (1 + k*t)")
    p.add_argument("--height", type=int, default=720)
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--chunk-frames", type=int, default=16, help="frames per chunk after the first (1 + this)")
    p.add_argument("--max-context-frames", type=int, default=16,
                   help="latent frames of attention context for the bounded-memory streaming run (0: skip it)")
    p.add_argument("--dtype", default="bfloat16", choices=sorted(DTYPES))
    p.add_argument("--device", default="cuda")
    p.add_argument("--channels", type=int, default=None, help="override the base width (tiny CPU smoke tests)")
    p.add_argument("--skip-whole", action="store_true", help="do not run whole-clip encoding")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    return p.parse_args(argv)


def make_frames(start: int, stop: int, height: int, width: int, base: torch.Tensor) -> torch.Tensor:
    """Frames ``start..stop-1`` of a deterministic synthetic clip ``[1, 3, n, H, W]`` in [-1, 1]: the same frame
    index always gives the same pixels, whatever the chunking."""
    out = base.new_empty((1, 3, stop - start, height, width))
    for j, i in enumerate(range(start, stop)):
        out[:, :, j] = torch.roll(base[:, :, i % base.shape[2]], shifts=(i, 2 * i), dims=(-2, -1))
    return out


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_gib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def run_streaming(model, frames: int, args, base, max_context: int | None) -> dict:
    device = base.device
    enc = StreamingEncoder(model, max_context_frames=max_context)
    reset_peak(device)
    sync(device)
    t0 = time.perf_counter()
    outs = []
    start, size = 0, 1 + args.chunk_frames
    while start < frames:
        stop = min(start + size, frames)
        outs.append(enc.encode_chunk(make_frames(start, stop, args.height, args.width, base))[-1])
        start, size = stop, args.chunk_frames
    sync(device)
    seconds = time.perf_counter() - t0
    return {"latent": torch.cat(outs, dim=2), "seconds": seconds, "fps": frames / seconds,
            "peak_gib": peak_gib(device), "cache_gib": enc.cache_nbytes() / 2**30}


def run_whole(model, frames: int, args, base) -> dict:
    device = base.device
    reset_peak(device)
    oom: str | None = None
    try:
        sync(device)
        t0 = time.perf_counter()
        x = make_frames(0, frames, args.height, args.width, base)
        latent = model.encode(x)[-1]
        del x
        sync(device)
        seconds = time.perf_counter() - t0
    except torch.OutOfMemoryError:
        oom = "out of memory"  # handled outside the except block, once the traceback no longer holds activations
    except RuntimeError as e:  # e.g. a kernel refusing a tensor this large
        oom = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
    if oom:
        peak = peak_gib(device)
        reset_peak(device)
        return {"oom": True, "error": oom, "peak_gib_before_failure": peak}
    return {"latent": latent, "seconds": seconds, "fps": frames / seconds, "peak_gib": peak_gib(device), "oom": False}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device)
    dtype = DTYPES[args.dtype]
    cfg = get_config(args.model)
    if args.channels is not None:
        cfg = dataclasses.replace(cfg, channels=args.channels)
    t = cfg.temporal_compression
    if args.chunk_frames % t or any((f - 1) % t for f in args.frames):
        raise SystemExit(f"--chunk-frames must be a multiple of {t} and every --frames value 1 + k*{t}")
    torch.manual_seed(0)
    with torch.device(device):
        model = build_tokenizer(cfg)
    model = model.to(dtype).eval().requires_grad_(False)
    g = torch.Generator(device=device).manual_seed(0)
    base = (torch.rand(1, 3, 8, args.height, args.width, generator=g, device=device) * 2 - 1).to(dtype)

    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"# {args.model} (random weights, {args.dtype}), {args.height}x{args.width}, chunks of 1+{args.chunk_frames} "
          f"then {args.chunk_frames} frames; device {gpu}; torch {torch.__version__}", flush=True)
    rows = []
    with torch.inference_mode():
        # Warm-up: both chunk shapes of the streaming path, and a short whole clip.
        run_streaming(model, 1 + 2 * args.chunk_frames, args, base, None)
        if not args.skip_whole:
            run_whole(model, 1 + args.chunk_frames, args, base)
        for frames in args.frames:
            row: dict = {"frames": frames}
            exact = run_streaming(model, frames, args, base, None)
            row["stream"] = {k: v for k, v in exact.items() if k != "latent"}
            if args.max_context_frames > 0:
                bounded = run_streaming(model, frames, args, base, args.max_context_frames)
                row["stream_bounded"] = {k: v for k, v in bounded.items() if k != "latent"}
                del bounded
            if not args.skip_whole:
                whole = run_whole(model, frames, args, base)
                row["whole"] = {k: v for k, v in whole.items() if k != "latent"}
                if not whole["oom"]:
                    diff = (exact["latent"].float() - whole["latent"].float()).abs().max().item()
                    row["max_abs_diff_stream_vs_whole"] = diff
                    if model.quantizer is not None:  # codes: a position differs iff its FSQ index differs
                        differs = (exact["latent"] != whole["latent"]).any(dim=1)
                        row["index_mismatch_fraction"] = differs.float().mean().item()
                del whole
            del exact
            rows.append(row)
            print(json.dumps(row), flush=True)

    def gib(v):
        return "—" if v is None else f"{v:.2f}"

    ctx = args.max_context_frames
    print()
    print(f"| frames | streaming fps | streaming peak GiB (cache GiB) | streaming, context {ctx}: fps | peak GiB | "
          "whole clip fps | whole clip peak GiB | max abs latent diff |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        s, b, w = r["stream"], r.get("stream_bounded"), r.get("whole")
        cells = [str(r["frames"]), f"{s['fps']:.1f}", f"{gib(s['peak_gib'])} ({s['cache_gib']:.2f})"]
        cells += [f"{b['fps']:.1f}", gib(b["peak_gib"])] if b else ["—", "—"]
        if w is None:
            cells += ["—", "—", "—"]
        elif w["oom"]:
            label = "OOM" if w["error"] == "out of memory" else "failed"
            cells += [label, label, "—"]
        else:
            cells += [f"{w['fps']:.1f}", gib(w["peak_gib"]), f"{r['max_abs_diff_stream_vs_whole']:.3g}"]
        print("| " + " | ".join(cells) + " |")
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "device": gpu,
                                         "torch": torch.__version__, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
