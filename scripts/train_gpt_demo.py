#!/usr/bin/env python3
"""End to end on one machine: generated clips -> shards -> megatron-core GPT -> sampled video -> mp4.

Runs the README's commands one after the other (each printed before it runs) and ends with a report: the loss
curve, the unigram entropy of the shards (the loss of a model that ignores context), tokens/s and MFU. Exits 1 if
the final validation loss is not below the unigram entropy. With $OUT set (or --out), copies the report, the logs,
summary.json and one sampled mp4 there.

The video tokenizer is the built-in tiny-random-dv8x16x16 (no download; its tokens are a fixed function of the
pixels but carry no visual meaning, so the decoded sample is noise-like: the point is the pipeline and the loss).
With --tokenizer the shards use another one instead: a trained folder (scripts/train_tokenizer_demo.py's
<work-dir>/tokenizer/final) or a released name.

Without CUDA (or with --device cpu) it takes the CPU preset (--preset cpu): 64 clips of 64x64 and a 2-layer,
64-wide model for 200 steps of 8 x 128 tokens instead of the recipe's 512 clips and 6 x 384 model (whose steps take
minutes each on a CPU); see nemo_cosmos_tokenizer.megatron.demo.CPU_PRESET and the README for its wall time.

examples:
  python scripts/train_gpt_demo.py --work-dir /tmp/gpt-demo                      # one GPU, ~4 minutes on an H100
  python scripts/train_gpt_demo.py --work-dir /tmp/gpt-demo --nproc 8            # torchrun, data parallel
  python scripts/train_gpt_demo.py --work-dir /tmp/cpu-demo --device cpu         # CPU preset, minutes
  python scripts/train_gpt_demo.py --work-dir /tmp/cpu-demo --device cpu --max-steps 20   # smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
try:
    import nemo_cosmos_tokenizer  # noqa: F401
except ImportError:  # a source checkout that was not pip-installed
    sys.path.insert(0, str(REPO))

from nemo_cosmos_tokenizer.megatron.demo import loss_table, make_training_clips, pick_preset  # noqa: E402


def _run(cmd: list[str], log: Path, timings: dict[str, float], name: str) -> None:
    print(f"\n$ {shlex.join(cmd)}", flush=True)
    started = time.perf_counter()
    with open(log, "w", encoding="utf-8") as f:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for line in proc.stdout:  # type: ignore[union-attr]
            f.write(line)
            f.flush()
            if "UserWarning" not in line and "warnings.warn(" not in line:
                sys.stdout.write("  " + line)
        proc.wait()
    timings[name] = time.perf_counter() - started
    if proc.returncode:
        raise SystemExit(f"{name} failed (exit {proc.returncode}); see {log}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work-dir", required=True, help="clips, shards, run and samples go here")
    parser.add_argument("--preset", choices=("auto", "gpu", "cpu"), default="auto",
                        help="sizes of the run: gpu (the recipe), cpu (small, minutes), auto (default: cpu where "
                             "CUDA is missing or --device cpu)")
    parser.add_argument("--clips", type=int, help="generated clips (default: the preset's, 512 / 64)")
    parser.add_argument("--size", type=int, help="clip width and height, multiple of 16 (default 128 / 64)")
    parser.add_argument("--frames", type=int, help="frames per clip (default 17)")
    parser.add_argument("--config", default=str(REPO / "recipes" / "train_gpt_demo.yaml"))
    parser.add_argument("--max-steps", type=int, help="override the preset's / recipe's max_steps")
    parser.add_argument("--nproc", type=int, default=1, help="processes (GPUs); >1 runs training under torchrun")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--tokenizer", default="tiny-random-dv8x16x16",
                        help="video tokenizer of the shards: the built-in random one (default), a trained folder "
                             "(config.json + model.safetensors) or a released name")
    parser.add_argument("--out", default=os.environ.get("OUT"), help="copy the results here (default $OUT)")
    args = parser.parse_args()
    import torch

    preset = pick_preset(args.preset, args.device, torch.cuda.is_available())
    args.clips = args.clips or preset.clips
    args.size = args.size or preset.size
    args.frames = args.frames or preset.frames
    if preset.name == "cpu":
        args.device = "cpu"
    print(f"# preset {preset.name}: {args.clips} clips of {args.size}x{args.size}, {args.frames} frames; device "
          f"{args.device}")

    work = Path(args.work_dir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    timings: dict[str, float] = {}
    started = time.perf_counter()

    print(f"# 1. {args.clips} generated clips ({args.frames} frames, {args.size}x{args.size}) -> {work / 'clips'}")
    t0 = time.perf_counter()
    clips = make_training_clips(work / "clips", args.clips, frames=args.frames, size=args.size)
    timings["clips"] = time.perf_counter() - t0
    prefix = work / "tokens" / "clips"
    run_dir = work / "run"

    print("# 2. build the shards")
    device_args = ["--device", args.device] if args.device != "auto" else []
    _run([py, "scripts/build_video_token_dataset.py", "--input", clips["manifest"], "--text-tokenizer",
          clips["text_tokenizer"], "--output-prefix", str(prefix), "--tokenizer", args.tokenizer,
          "--resolution", str(args.size), str(args.size), "--num-frames", str(args.frames), "--batch-size",
          str(preset.build_batch_size), "--num-workers", str(preset.build_workers), "--no-progress", *device_args],
         work / "build.log", timings, "build")

    print("# 3. the flags Megatron needs")
    _run([py, "scripts/inspect_video_token_dataset.py", str(prefix), "--print-megatron-args", "--split", "95,5,0"],
         work / "megatron_args.txt", timings, "inspect")

    print("# 4. train")
    launcher = [py] if args.nproc == 1 else [py, "-m", "torch.distributed.run", "--standalone",
                                               f"--nproc-per-node={args.nproc}"]
    extra = list(preset.train_flags) + (["--max-steps", str(args.max_steps)] if args.max_steps else [])
    if args.device == "cpu" and preset.name != "cpu":
        extra += ["--device", "cpu", "--position-embedding", "learned_absolute"]
    _run([*launcher, "scripts/train_gpt.py", "--config", args.config, "--data-prefix", str(prefix),
          "--output-dir", str(run_dir), *extra], work / "train.log", timings, "train")

    print("# 5. sample a video for a caption and decode it")
    caption = clips["captions"][-1]  # the last clip falls in the validation split (95,5,0 keeps the order)
    _run([py, "scripts/sample_video.py", str(run_dir), caption, "--output", str(work / "sample.mp4"),
          "--num-samples", "2", "--temperature", "1.0", "--json", *device_args], work / "sample.log", timings, "sample")

    summary = json.loads((run_dir / "summary.json").read_text())
    sample = json.loads(next(line for line in reversed((work / "sample.log").read_text().splitlines())
                             if line.startswith("{")))  # the --json result (warnings may follow it)
    below = summary["final_val_loss"] is not None and summary["final_val_loss"] < summary["unigram_entropy"]
    report = {
        "device": summary["device"], "world_size": summary["world_size"], "clips": args.clips,
        "parameters": summary["parameters"], "seq_length": summary["seq_length"], "steps": summary["steps"],
        "tokens_per_step": summary["tokens_per_step"], "final_train_loss": summary["final_train_loss"],
        "final_val_loss": summary["final_val_loss"], "unigram_entropy": summary["unigram_entropy"],
        "val_below_unigram_entropy": below, "tokens_per_second": summary["tokens_per_second"], "mfu": summary["mfu"],
        "seconds": {**{k: round(v, 1) for k, v in timings.items()}, "total": round(time.perf_counter() - started, 1)},
        "sample_caption": caption, "sample_grid": sample["grid_shape"], "sample_videos": sample["videos"],
    }
    (work / "demo_report.json").write_text(json.dumps(report, indent=1) + "\n")
    print("\n# report")
    print(loss_table(summary))
    mfu = f"{100 * summary['mfu']:.1f}%" if summary["mfu"] is not None else "n/a"
    print(f"\ndevice {summary['device']} x {summary['world_size']}; {summary['parameters'] / 1e6:.1f}M parameters; "
          f"seq {summary['seq_length']}; {summary['tokens_per_step']} tokens/step")
    print(f"unigram entropy of the shards: {summary['unigram_entropy']:.3f} nats; final validation loss "
          f"{summary['final_val_loss']:.3f} ({'below' if below else 'NOT below'} it)")
    print(f"throughput: {summary['tokens_per_second']:.0f} tokens/s, MFU {mfu}")
    print("seconds: " + ", ".join(f"{k} {v}" for k, v in report["seconds"].items()))
    print(f"samples: {', '.join(sample['videos'])}")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for path in [work / "demo_report.json", run_dir / "summary.json", run_dir / "train_log.jsonl",
                     work / "train.log", work / "build.log", work / "megatron_args.txt", work / "sample.log",
                     Path(sample["videos"][0])]:
            shutil.copy(path, out / path.name)
        print(f"copied the report, logs and {Path(sample['videos'][0]).name} to {out}")
    return 0 if below else 1


if __name__ == "__main__":
    sys.exit(main())
