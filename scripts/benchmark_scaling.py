#!/usr/bin/env python3
"""Scaling of the dataset builder's torchrun recipe over processes on one host.

Runs ``torchrun --standalone --nproc-per-node N scripts/build_video_token_dataset.py ...`` for each N of
``--nprocs`` over the same synthetic 720p mp4 clips and the same real-size random-weight tokenizer, then prints,
per N: wall time, the run summary's clips/s and frames/s (all ranks, and per process), scaling efficiency against
the first N, the mean CPU load during the run (decode headroom) and whether the merged ``.bin/.idx`` bytes equal
those of the first N.

With one GPU and N > 1 the processes share it (the builder then uses the gloo backend: NCCL needs a GPU per rank);
that measures how much CPU decoding per GPU helps, not multi-GPU scaling. On a host with N GPUs each process gets
its own.

Example (GPU host)::

    python scripts/benchmark_scaling.py --dir /tmp/scale --num-videos 64 --nprocs 1,2 --workers 4
    # CPU dry run: tiny model and clips
    python scripts/benchmark_scaling.py --dir /tmp/scale --device cpu --channels 8 --height 64 --width 64 \\
        --num-videos 6 --nprocs 1,2 --batch 2 --chunk-size 2
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _cpu_busy_fraction(stop: threading.Event, samples: list[float]) -> None:
    """Sample /proc/stat every second: fraction of all cores busy."""
    def read() -> tuple[int, int]:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
        idle = fields[3] + fields[4]
        return sum(fields), idle

    last = read()
    while not stop.wait(1.0):
        now = read()
        total, idle = now[0] - last[0], now[1] - last[1]
        if total > 0:
            samples.append(1.0 - idle / total)
        last = now


def make_tokenizer(directory: Path, name: str, channels: int | None, seed: int) -> Path:
    """A real-size (or ``channels``-wide) model of ``name`` with seeded random weights, in our safetensors format."""
    import torch

    import nemo_cosmos_tokenizer as nct
    from nemo_cosmos_tokenizer.hub.convert import save_pretrained

    if (directory / "config.json").is_file():
        return directory
    config = nct.get_config(name)
    if channels:
        config = config.replace(channels=channels)
    torch.manual_seed(seed)
    save_pretrained(nct.build_tokenizer(config), directory)
    return directory


def run_one(row: int, nproc: int, args: argparse.Namespace, inputs: dict, model_dir: Path) -> dict:
    prefix = args.dir / f"out-{row}-n{nproc}" / "tokens"  # a fresh prefix per row: a reused one would resume
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
        str(REPO / "scripts" / "build_video_token_dataset.py"),
        "--input", str(inputs["manifest"]), "--output-prefix", str(prefix),
        "--tokenizer", str(model_dir), "--text-tokenizer", str(inputs["text_tokenizer"]),
        "--num-frames", str(args.frames), "--resolution", str(args.height), str(args.width),
        "--batch-size", str(args.batch), "--num-workers", str(args.workers), "--chunk-size", str(args.chunk_size),
        "--device", args.device, "--no-progress", "--log-level", "WARNING",
    ]
    samples: list[float] = []
    stop = threading.Event()
    sampler = threading.Thread(target=_cpu_busy_fraction, args=(stop, samples), daemon=True)
    sampler.start()
    start = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - start
    stop.set()
    sampler.join()
    if result.returncode != 0:
        sys.stderr.write(result.stdout[-4000:] + result.stderr[-4000:])
        raise SystemExit(f"torchrun with {nproc} processes failed (exit {result.returncode})")
    summary = json.loads(Path(f"{prefix}.summary.json").read_text())
    return {
        "nproc": nproc,
        "wall_seconds": wall,
        "processing_seconds": summary["processing_seconds"],
        "backend": summary["backend"],
        "clips": summary["run_clips"],
        "frames": summary["run_frames"],
        "clips_per_second": summary["clips_per_second"],
        "frames_per_second": summary["frames_per_second"],
        "frames_per_second_per_process": summary["frames_per_second"] / nproc,
        "cpu_busy_mean": sum(samples) / len(samples) if samples else None,
        "cpu_busy_max": max(samples) if samples else None,
        "bin_sha256": _sha256(Path(f"{prefix}.bin")),
        "idx_sha256": _sha256(Path(f"{prefix}.idx")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, required=True, help="work folder (inputs, model, outputs)")
    parser.add_argument("--model", default="Cosmos-1.0-Tokenizer-DV8x16x16")
    parser.add_argument("--channels", type=int, default=None, help="reduced width for a CPU dry run")
    parser.add_argument("--num-videos", type=int, default=64)
    parser.add_argument("--frames", type=int, default=17)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--nprocs", default="1,2", help="comma-separated process counts")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--workers", type=int, default=4, help="decode workers per process")
    parser.add_argument("--chunk-size", type=int, default=8)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--make-procs", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    parser.add_argument("--out", type=Path, default=Path(os.environ["OUT"]) / "scaling.json" if "OUT" in os.environ
                        else None)
    args = parser.parse_args()

    import torch
    from benchmark_e2e import make_inputs  # the same synthetic clips as the end-to-end benchmark

    inputs = make_inputs(args.dir / "inputs", args.num_videos, args.frames + 8, args.height, args.width,
                         args.make_procs)
    model_dir = make_tokenizer(args.dir / "model", args.model, args.channels, seed=0)
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    rows = [run_one(i, int(n), args, inputs, model_dir) for i, n in enumerate(args.nprocs.split(","))]
    base = rows[0]
    for row in rows:
        row["efficiency_vs_first"] = row["frames_per_second"] / (base["frames_per_second"] * row["nproc"] / base["nproc"])
        row["same_bytes_as_first"] = (row["bin_sha256"], row["idx_sha256"]) == (base["bin_sha256"], base["idx_sha256"])

    print(f"\n{args.model} (random weights{f', channels {args.channels}' if args.channels else ''}), "
          f"{args.num_videos} clips of {args.frames}x{args.height}x{args.width}, batch {args.batch}, "
          f"{args.workers} decode workers per process; device: {device}; torch {torch.__version__}; "
          f"{os.cpu_count()} CPU cores")
    print("| processes | backend | wall s | clips/s | frames/s | frames/s per process | efficiency vs first | "
          "CPU busy mean / max | merged bytes equal |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        cpu = "n/a" if r["cpu_busy_mean"] is None else f"{r['cpu_busy_mean']:.0%} / {r['cpu_busy_max']:.0%}"
        print(f"| {r['nproc']} | {r['backend'] or '-'} | {r['wall_seconds']:.1f} | {r['clips_per_second']:.2f} | "
              f"{r['frames_per_second']:.1f} | {r['frames_per_second_per_process']:.1f} | "
              f"{r['efficiency_vs_first']:.2f} | {cpu} | {'yes' if r['same_bytes_as_first'] else 'NO'} |")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"device": device, "torch": torch.__version__, "args": {
            k: str(v) for k, v in vars(args).items()}, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
