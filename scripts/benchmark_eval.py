#!/usr/bin/env python3
"""Throughput of the evaluation metrics (``nemo-cosmos-tokenizer evaluate``) on 720p videos, against TokenBench's way.

Scores ``--videos`` synthetic 1280x720 video pairs of ``--frames`` frames held in memory (decoding is not timed) with
:class:`nemo_cosmos_tokenizer.evaluation.scoring.VideoScorer` for several metric sets and frame batch sizes, and
times TokenBench's own loop on the same frames as the baseline: numpy PSNR, ``skimage`` SSIM per frame in a thread
pool, LPIPS one frame per call (``metrics_cli.py``), extrapolated from ``--baseline-frames`` frames. Prints a table
(videos/s, frames/s, ms/frame, peak GPU memory, speed-up over the baseline) and writes it as JSON with ``--json``.

LPIPS runs VGG16 with random weights (the same work as the real ones); rFVD is timed only with
``--i3d-weights i3d_torchscript.pt`` (StyleGAN-V's file; a random stand-in would not have I3D's cost).

    python scripts/benchmark_eval.py --json benchmarks/h100/eval-metrics.json     # ~1-2 minutes on one H100

Needs scikit-image for the baseline (``pip install scikit-image``); ``--no-baseline`` skips it.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nemo_cosmos_tokenizer.evaluation import EvalConfig  # noqa: E402
from nemo_cosmos_tokenizer.evaluation.lpips_vgg import LPIPSVGG  # noqa: E402
from nemo_cosmos_tokenizer.evaluation.metrics import FLOAT32_EPS  # noqa: E402
from nemo_cosmos_tokenizer.evaluation.scoring import VideoScorer, lpips_input  # noqa: E402


def synthetic_pair(frames: int, height: int, width: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A moving gradient scene and a noisy, slightly blurred "reconstruction" of it (uint8 ``[T, H, W, 3]``)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    video = np.empty((frames, height, width, 3), np.uint8)
    for t in range(frames):
        phase = t * 0.15 + seed
        video[t, ..., 0] = 127 + 100 * np.sin(xx / 90 + phase)
        video[t, ..., 1] = 127 + 100 * np.cos(yy / 70 - phase)
        video[t, ..., 2] = 127 + 60 * np.sin((xx + yy) / 150 + 2 * phase)
    noise = rng.integers(-6, 7, video.shape, dtype=np.int16)
    recon = np.clip(video.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    return video, recon


def random_lpips_weights(folder: Path) -> tuple[Path, Path]:
    """Random VGG16 + heads in the files' formats (the timing does not depend on the values)."""
    model = LPIPSVGG()
    vgg = folder / "vgg16-397923af.pth"
    torch.save({f"features.{k}": v for k, v in model.features.state_dict().items()}, vgg)
    heads = folder / "vgg.pth"
    torch.save({f"lin{k}.model.1.weight": head.weight.detach().abs() for k, head in enumerate(model.heads)}, heads)
    return vgg, heads


def time_scorer(config: EvalConfig, pairs, device: torch.device) -> dict:
    scorer = VideoScorer(config)
    scorer.score("warmup", pairs[0][0][:config.batch_frames], pairs[0][1][:config.batch_frames])  # kernels, cuDNN
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for i, (ref, rec) in enumerate(pairs):
        scorer.score(f"v{i}", ref, rec)
    if "fvd" in config.metrics:
        scorer.fvd()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    frames = sum(len(r) for r, _ in pairs)
    return {
        "metrics": "+".join(config.metrics), "batch_frames": config.batch_frames, "seconds": seconds,
        "videos_per_s": len(pairs) / seconds, "frames_per_s": frames / seconds, "ms_per_frame": 1000 * seconds / frames,
        "peak_gpu_mib": torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None,
    }


def time_tokenbench(ref: np.ndarray, rec: np.ndarray, frames: int, lpips_model, device: torch.device) -> dict:
    """TokenBench's metrics_cli loop on ``frames`` frames: seconds per frame of each metric."""
    from concurrent.futures import ThreadPoolExecutor

    from skimage.metrics import structural_similarity

    a, b = ref[:frames].astype(np.float32), rec[:frames].astype(np.float32)
    out = {}
    start = time.perf_counter()
    mse = ((a - b) ** 2).mean()
    _ = 20 * np.log10(255.0 / (np.sqrt(mse) + FLOAT32_EPS))
    out["psnr"] = (time.perf_counter() - start) / frames
    start = time.perf_counter()
    with ThreadPoolExecutor() as pool:
        list(pool.map(lambda p: structural_similarity(p[0], p[1], data_range=255.0, channel_axis=-1), zip(a, b)))
    out["ssim"] = (time.perf_counter() - start) / frames
    if lpips_model is not None:
        x = lpips_input(torch.from_numpy(ref[:frames]))
        y = lpips_input(torch.from_numpy(rec[:frames]))
        with torch.no_grad():
            lpips_model(x[:1].to(device), y[:1].to(device))  # warm-up
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            for i in range(frames):
                lpips_model(x[i:i + 1].to(device), y[i:i + 1].to(device)).item()
        out["lpips"] = (time.perf_counter() - start) / frames
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--frames", type=int, default=33, help="frames per video (default 33)")
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--batches", type=int, nargs="+", default=[8, 16], help="frame batch sizes to time")
    parser.add_argument("--device", default=None)
    parser.add_argument("--i3d-weights", default=None, help="StyleGAN-V's i3d_torchscript.pt (times rFVD too)")
    parser.add_argument("--baseline-frames", type=int, default=8, help="frames timed for TokenBench's loop")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args()

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    pairs = [synthetic_pair(args.frames, args.height, args.width, seed) for seed in range(args.videos)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        vgg, heads = random_lpips_weights(Path(tmp))
        metric_sets = [("psnr",), ("psnr", "ssim"), ("psnr", "ssim", "lpips")]
        if args.i3d_weights:
            metric_sets.append(("psnr", "ssim", "lpips", "fvd"))
        for metrics in metric_sets:
            for batch in args.batches:
                config = EvalConfig(metrics=metrics, device=str(device), batch_frames=batch, vgg16_weights=str(vgg),
                                    lpips_heads=str(heads), i3d_weights=args.i3d_weights)
                rows.append(time_scorer(config, pairs, device))
                row = rows[-1]
                print(f"{row['metrics']:>22} batch {batch:>3}: {row['videos_per_s']:.3f} videos/s", flush=True)
        baseline = None
        if not args.no_baseline:
            from nemo_cosmos_tokenizer.evaluation.lpips_vgg import load_lpips

            try:
                import skimage  # noqa: F401
            except ImportError:
                print("scikit-image is not installed: no TokenBench baseline (pip install scikit-image)", flush=True)
            else:
                model, _ = load_lpips(vgg, heads)
                baseline = time_tokenbench(pairs[0][0], pairs[0][1], args.baseline_frames, model.to(device), device)

    print(f"\ndevice: {name}; {args.videos} videos of {args.frames} frames at {args.width}x{args.height}\n")
    print("| metrics | batch | videos/s | frames/s | ms/frame | peak GPU MiB | TokenBench ms/frame | speed-up |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        base = None
        if baseline is not None and all(m in baseline for m in row["metrics"].split("+")):
            base = 1000 * sum(baseline[m] for m in row["metrics"].split("+"))
        row["tokenbench_ms_per_frame"] = base
        row["speedup"] = base / row["ms_per_frame"] if base else None
        peak = f"{row['peak_gpu_mib']:.0f}" if row["peak_gpu_mib"] is not None else "-"
        base_text = "-" if base is None else f"{base:.1f}"
        speedup = "-" if row["speedup"] is None else f"{row['speedup']:.1f}x"
        print(f"| {row['metrics']} | {row['batch_frames']} | {row['videos_per_s']:.3f} | {row['frames_per_s']:.1f} | "
              f"{row['ms_per_frame']:.2f} | {peak} | {base_text} | {speedup} |")
    result = {"device": name, "videos": args.videos, "frames": args.frames, "size": [args.height, args.width],
              "rows": rows, "tokenbench_seconds_per_frame": baseline, "torch": torch.__version__}
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
