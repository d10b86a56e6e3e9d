#!/usr/bin/env python3
"""End-to-end: mp4 files -> Megatron shards with the dataset builder on one GPU and the fast encode path, against
the encoder-only rate of the same network in the same process.

1. Writes ``--num-videos`` synthetic 720p H.264 clips (PyAV, several processes; moving gradients with texture and
   noise, so decoding costs what camera footage of that size costs) and a small sentencepiece caption tokenizer.
2. Builds a real-size DV8x16x16 with random weights, bf16, wraps it for the builder (``wrap_network``) and swaps in
   the fast path as ``build(fast=True)`` / ``--fast`` does (``VideoTokenizer.use_fast``: checksum first, then
   ``nemo_cosmos_tokenizer.fast.optimize``; compiled and verified once, before any timing).
3. Times: the encoder alone on GPU-resident windows; ``VideoTokenizer.encode`` on decoded uint8 clips in memory
   (adds the host->device copy, the uint8 -> [-1, 1] conversion and the synchronisation per call); and the product
   path, the whole ``build(BuildConfig(fast=True, video_backend=B, num_workers=W))`` (decode, encode, write, merge;
   the builder overlaps decoding, copies and encoding itself) for each ``B:W`` of ``--runs``: CPU decoding in W
   DataLoader processes (``pyav``), or NVDEC on the GPU with W decoder threads (``nvdec``, frames never leave it).
   Shards of equal-pixel runs must be byte-identical (printed digests).

Prints clips/s and frames/s per run and the ratio to the encoder-only rate; JSON to ``--out`` or ``$OUT``.

Example (H100)::

    python scripts/benchmark_e2e.py --dir /tmp/e2e --num-videos 320 --runs pyav:14,nvdec:4,nvdec:8
    # CPU dry run: tiny model and videos
    python scripts/benchmark_e2e.py --dir /tmp/e2e --device cpu --dtype float32 --channels 8 --height 64 \\
        --width 64 --num-videos 6 --batch 2 --runs pyav:0,pyav:2 --no-compile
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nemo_cosmos_tokenizer as nct  # noqa: E402
from nemo_cosmos_tokenizer.fast.profiling import time_cuda  # noqa: E402


# ------------------------------------------------------------------------------------------------------ inputs
def _frames(seed: int, count: int, height: int, width: int):
    """Smooth colour fields drifting across a fixed texture, plus a little noise: uint8 [H, W, 3] frames (each a
    shifted crop of one larger canvas, so writing many videos stays cheap)."""
    rng = np.random.default_rng(seed)
    pad = 4 * count
    yy, xx = np.mgrid[0:height + pad, 0:width + pad].astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi, size=3).astype(np.float32)
    canvas = np.stack([127 + 90 * np.sin(xx / (40 + 20 * c) + yy / (57 + 9 * c) + phase[c]) for c in range(3)], -1)
    canvas = (canvas + rng.integers(0, 40, size=canvas.shape[:2] + (1,))).clip(0, 255).astype(np.uint8)
    noise = rng.integers(0, 6, size=(4, height, width, 3), dtype=np.uint8)
    for t in range(count):
        dy, dx = (2 * t) % pad, (3 * t) % pad
        yield canvas[dy:dy + height, dx:dx + width] + noise[t % 4]


def _write_one(job: tuple[str, int, int, int, int]) -> None:
    """One H.264 mp4 (libx264 ``veryfast``, crf 20, yuv420p) with PyAV."""
    import av
    from fractions import Fraction

    path, seed, count, height, width = job
    with av.open(path, mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(24))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "20", "preset": "veryfast", "threads": "1"}
        for frame in _frames(seed, count, height, width):
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def make_inputs(directory: Path, num_videos: int, frames: int, height: int, width: int, procs: int) -> dict[str, Any]:
    from nemo_cosmos_tokenizer.data.samples import train_sentencepiece

    directory.mkdir(parents=True, exist_ok=True)
    manifest = directory / "captions.jsonl"
    model = directory / "text_tokenizer.model"
    if manifest.is_file() and model.is_file():
        return {"manifest": manifest, "text_tokenizer": model, "seconds": 0.0}
    start = time.perf_counter()
    jobs = [(str(directory / f"v{i:04d}.mp4"), i, frames, height, width) for i in range(num_videos)]
    with get_context("spawn").Pool(procs) as pool:
        pool.map(_write_one, jobs, chunksize=1)
    captions = [f"clip {i}: a synthetic scene of drifting colour bands number {i % 17}" for i in range(num_videos)]
    manifest.write_text("".join(json.dumps({"path": Path(j[0]).name, "text": c}) + "\n"
                                for j, c in zip(jobs, captions)), encoding="utf-8")
    train_sentencepiece(captions, directory / "text_tokenizer")
    return {"manifest": manifest, "text_tokenizer": model, "seconds": time.perf_counter() - start}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", required=True, help="folder for the generated videos and the builds")
    p.add_argument("--model", default="Cosmos-1.0-Tokenizer-DV8x16x16")
    p.add_argument("--num-videos", type=int, default=160)
    p.add_argument("--clips-per-video", type=int, default=2)
    p.add_argument("--frames", type=int, default=17, help="frames per clip")
    p.add_argument("--height", type=int, default=720)
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--runs", default="pyav:12",
                   help="comma list of BACKEND:WORKERS build(fast=True) runs, e.g. pyav:14,nvdec:4 (pyav/decord/auto: "
                        "DataLoader decode processes; nvdec: GPU decoder threads)")
    p.add_argument("--device", default="cuda")
    p.add_argument("--dtype", default="bfloat16")
    p.add_argument("--channels", type=int, default=None, help="override the base width (dry runs)")
    p.add_argument("--no-compile", action="store_true")
    p.add_argument("--make-procs", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)

    from nemo_cosmos_tokenizer.data.builder import BuildConfig, build, require_megatron
    from nemo_cosmos_tokenizer.data.video_tokenizer import wrap_network

    require_megatron()  # its slow first import stays out of the timed builds
    root = Path(args.dir)
    frames_per_video = args.frames * args.clips_per_video
    inputs = make_inputs(root / "videos", args.num_videos, frames_per_video, args.height, args.width, args.make_procs)
    print(f"# inputs: {args.num_videos} videos x {frames_per_video} frames {args.height}x{args.width} "
          f"(written in {inputs['seconds']:.1f} s)", flush=True)

    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    torch.backends.cudnn.benchmark = True
    config = nct.get_config(args.model)
    if args.channels:
        config = config.replace(channels=args.channels)
    torch.manual_seed(0)
    network = nct.build_tokenizer(config)
    vt = wrap_network(network, args.model, device=device, dtype=dtype, parts=("encoder",))
    vt.use_fast(compile=not args.no_compile)  # what build(fast=True) does (a no-op there once done here)
    fast = vt.inference.network

    rng = np.random.default_rng(0)
    clips = rng.integers(0, 256, size=(args.batch, args.frames, args.height, args.width, 3), dtype=np.uint8)
    t0 = time.perf_counter()
    vt.encode(clips)  # compile + verify against eager, once
    warm_s = time.perf_counter() - t0
    print(f"# compile + verify: {warm_s:.1f} s; {[r.message for r in fast.reports]}", flush=True)

    results: dict[str, Any] = {"args": vars(args), "compile_s": warm_s, "runs": []}
    x = torch.from_numpy(clips).to(device).movedim(-1, 1).to(dtype) / 127.5 - 1  # [B, 3, T, H, W]
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    t = time_cuda(lambda: fast.encode(x), warmup=1, reps=5)
    frames_call = args.batch * args.frames
    enc_fps = frames_call / (t.median_ms * 1e-3)
    results["encoder_only_fps"] = enc_fps
    print(f"encoder only (GPU-resident input, batch {args.batch}): {enc_fps:.1f} frames/s", flush=True)
    t = time_cuda(lambda: vt.encode(clips), warmup=1, reps=5)
    host_fps = frames_call / (t.median_ms * 1e-3)
    results["videotokenizer_encode_fps"] = host_fps
    print(f"VideoTokenizer.encode (uint8 host batch -> numpy indices): {host_fps:.1f} frames/s", flush=True)

    def run(backend: str, workers: int) -> None:
        label = backend
        prefix = root / "builds" / f"{label}-w{workers}" / "data"
        cfg = BuildConfig(input=str(inputs["manifest"]), output_prefix=str(prefix),
                          text_tokenizer=str(inputs["text_tokenizer"]), tokenizer=args.model,
                          video_backend=backend, num_frames=args.frames, clips_per_video=args.clips_per_video,
                          resolution=[args.height, args.width], device=str(device), dtype=args.dtype,
                          batch_size=args.batch, num_workers=workers, chunk_size=100000, progress=False, fast=True)
        sync()
        summary = build(cfg, video_tokenizer=vt)
        sync()
        r = {"label": label, "backend": backend, "workers": workers, "seconds": summary.seconds, "clips": summary.clips,
             "frames": summary.frames, "clips_per_s": summary.clips_per_second,
             "frames_per_s": summary.frames_per_second, "failed": summary.failed_samples,
             "of_encoder_only": summary.frames_per_second / enc_fps}
        # the chunk loop alone (read, encode, write its shard), without prepare (plan, tokenizers) and merge
        records = [json.loads(p.read_text()) for p in sorted(Path(f"{prefix}.chunks").glob("chunk-*.json"))]
        chunk_s = sum(rec["seconds"] for rec in records)
        r["chunk_seconds"] = chunk_s
        r["chunk_frames_per_s"] = summary.frames / chunk_s
        r["chunk_of_encoder_only"] = r["chunk_frames_per_s"] / enc_fps
        results["runs"].append(r)
        print(f"{label:8s} workers {workers:2d}: {r['clips']} clips {r['frames']} frames in {r['seconds']:.1f} s: "
              f"{r['clips_per_s']:.1f} clips/s {r['frames_per_s']:.1f} frames/s = {r['of_encoder_only']:.0%} of "
              f"encoder-only (chunk loop alone: {r['chunk_frames_per_s']:.1f} frames/s = {r['chunk_of_encoder_only']:.0%}), "
              f"failed {r['failed']}", flush=True)

    for spec in [v for v in args.runs.split(",") if v]:
        backend, _, workers = spec.partition(":")
        run(backend, int(workers or 0))
    # the worker count may not change a single byte
    builds = sorted((root / "builds").glob("*/data.bin"))
    digests = {b.parent.name: hashlib.sha256(b.read_bytes()).hexdigest()[:16] for b in builds}
    results["bin_sha256"] = digests
    print(f"# shard digests: {digests}", flush=True)
    out = args.out or (os.path.join(os.environ["OUT"], "benchmark-e2e.json") if os.environ.get("OUT") else None)
    if out:
        Path(out).write_text(json.dumps(results, indent=1, default=str))
        print(f"# wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
