#!/usr/bin/env python3
"""A tokenizer trained here, from scratch, carries a GPT's video: generated clips -> tokenizer -> shards -> GPT ->
sampled videos whose content is measured.

One command, nothing downloaded. Each step's command is printed before it runs; the report ends in a Markdown
section for TRAINING.md (``report.md``), ``report.json``, one sampled mp4 and a contact sheet of samples in --out:

1. clips of :mod:`nemo_cosmos_tokenizer.megatron.demo` (a coloured square, ball or bar moving over a plain
   background; the caption says which), 17 x 128 x 128: a training set, a held-out set, and "other clips" (the same
   kind of scenes lit from one side under fixed stripes) with a held-out part of their own;
2. ``scripts/train_tokenizer.py --config recipes/train_tokenizer_demo.yaml``: a DV tokenizer from scratch
   (17 x 128 x 128 -> 3 x 8 x 8 tokens, 64,000 codes) for --minutes (a short first run measures the step rate, a
   second run resumes to fill the budget) or exactly --max-steps; table: steps, minutes, held-out PSNR, SSIM, codes;
3. the same command with ``--init <final> --mode decoder`` on the other clips: their held-out PSNR before and after,
   and the ids of every held-out clip (both sets) encoded before and after, compared exactly;
4. ``scripts/build_video_token_dataset.py --tokenizer <final>`` and ``scripts/train_gpt.py --config
   recipes/train_gpt_demo.yaml`` on the training clips (as scripts/train_gpt_demo.py does);
5. for held-out captions, video blocks sampled by the GPT (the sampling library behind scripts/sample_video.py) and
   decoded by the trained tokenizer; :func:`~nemo_cosmos_tokenizer.megatron.demo_content.analyse_clip` measures the
   object's colour and direction in the decoded frames, compared with the caption.

Exit status 1 if an id changed in the decoder-only fine-tune, or (not with --cpu-smoke) a target was missed:
held-out PSNR >= 28 dB, fine-tuned PSNR above the start, >= 80 % of samples showing the caption's colour and
direction.

examples:
  python scripts/train_tokenizer_demo.py --work-dir /tmp/tok-demo --out $OUT/tok-demo            # ~14 min, one H100
  python scripts/train_tokenizer_demo.py --work-dir /tmp/tok-demo --minutes 5 --gpt-steps 600   # shorter
  python scripts/train_tokenizer_demo.py --work-dir /tmp/tok-smoke --cpu-smoke                  # plumbing, ~2 min CPU
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
try:
    import nemo_cosmos_tokenizer  # noqa: F401
except ImportError:  # a source checkout that was not pip-installed
    sys.path.insert(0, str(REPO))

from nemo_cosmos_tokenizer.megatron.demo import make_training_clips  # noqa: E402
from nemo_cosmos_tokenizer.megatron.demo_media import write_clip_set  # noqa: E402


@dataclass(frozen=True)
class Sizes:
    """How big each step is: the GPU proof, or the CPU smoke form (plumbing only, no targets)."""

    train_clips: int = 2048
    heldout_clips: int = 64
    other_clips: int = 512
    other_heldout_clips: int = 32
    frames: int = 17
    size: int = 128
    minutes: float = 8.0
    probe_steps: int = 300
    finetune_steps: int = 600
    gpt_steps: int = 800
    captions: int = 24
    samples_per_caption: int = 2
    tokenizer_flags: tuple[tuple[str, ...], ...] = ()
    """(flag, values...) added to both tokenizer runs (over recipes/train_tokenizer_demo.yaml)."""
    gpt_flags: tuple[str, ...] = ()
    device: str = "auto"


SMOKE = Sizes(
    train_clips=24, heldout_clips=4, other_clips=6, other_heldout_clips=3, frames=9, size=64, minutes=0.0,
    probe_steps=4, finetune_steps=3, gpt_steps=4, captions=2, samples_per_caption=1, device="cpu",
    tokenizer_flags=(("--channels", "8"), ("--channels-mult", "1", "1", "1"), ("--batch-size", "2"),
                     ("--warmup-steps", "1"), ("--eval-every", "100"), ("--save-every", "100"), ("--log-every", "2"),
                     ("--val-samples", "3"), ("--num-workers", "0"), ("--dtype", "float32"), ("--ema-decay", "0"),
                     ("--no-progress",)),
    gpt_flags=("--position-embedding", "learned_absolute", "--num-layers", "1", "--hidden-size", "32",
               "--num-attention-heads", "2", "--micro-batch-size", "4", "--eval-interval", "2", "--eval-batches",
               "1", "--log-interval", "2", "--save-interval", "100", "--num-workers", "0", "--warmup-steps", "1"),
)


def _run(cmd: list[str], log: Path, timings: dict[str, float], name: str) -> list[str]:
    """Run ``cmd`` from the repo root, echo and log its output; returns the output lines."""
    print(f"\n$ {shlex.join(cmd)}", flush=True)
    started, lines = time.perf_counter(), []
    with open(log, "a", encoding="utf-8") as f:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for line in proc.stdout:  # type: ignore[union-attr]
            f.write(line)
            f.flush()
            lines.append(line)
            if "UserWarning" not in line and "warnings.warn(" not in line and "\r" not in line:
                sys.stdout.write("  " + line)
        proc.wait()
    timings[name] = timings.get(name, 0.0) + time.perf_counter() - started
    if proc.returncode:
        raise SystemExit(f"{name} failed (exit {proc.returncode}); see {log}")
    return lines


def _last_json(lines: list[str]) -> dict:
    return json.loads(next(line for line in reversed(lines) if line.startswith("{")))


def _steps_per_second(log_file: Path, batch_size: int) -> float | None:
    """Training steps/s from ``train_log.jsonl`` (``samples_per_s`` of the logged windows after the first)."""
    if not log_file.exists():
        return None
    rates = [e["samples_per_s"] for e in map(json.loads, log_file.read_text().splitlines()) if e.get("samples_per_s")]
    rates = rates[1:] or rates
    return sorted(rates)[len(rates) // 2] / batch_size if rates else None


def train_from_scratch(base: list[str], out_dir: Path, sizes: Sizes, minutes: float, max_steps: int | None,
                       batch_size: int, log: Path, timings: dict[str, float]) -> tuple[dict, int]:
    """Run ``base`` for ``max_steps``, or for about ``minutes`` in all: a first run of ``probe_steps`` measures the
    step rate and the fixed cost of a run (start-up, held-out scoring, writing), then the same command resumes
    from its checkpoint with the steps that fit the rest of the budget. Returns the CLI's result and the steps."""
    if max_steps is not None:
        return _last_json(_run([*base, "--max-steps", str(max_steps)], log, timings, "tokenizer")), max_steps
    began = time.perf_counter()
    result = _last_json(_run([*base, "--max-steps", str(sizes.probe_steps)], log, timings, "tokenizer"))
    elapsed = time.perf_counter() - began
    rate = _steps_per_second(out_dir / "train_log.jsonl", batch_size) or sizes.probe_steps / elapsed
    fixed = max(elapsed - sizes.probe_steps / rate, 0.0)
    extra = int(rate * (minutes * 60 - elapsed - fixed)) // 50 * 50
    print(f"  {rate:.2f} steps/s, {fixed:.0f} s fixed cost per run: {extra} more steps fit {minutes} minutes")
    if extra <= 0:
        return result, sizes.probe_steps
    steps = sizes.probe_steps + extra
    return _last_json(_run([*base, "--max-steps", str(steps)], log, timings, "tokenizer")), steps


def score(final_dir: str, manifest: str, device: str, limit: int | None = None) -> dict:
    """Reconstruct the clips of ``manifest`` through ids with the tokenizer in ``final_dir`` (float32): TokenBench
    PSNR (per clip, averaged) and SSIM (per frame, averaged), codes in use, and the ids themselves."""
    import numpy as np
    import torch

    from nemo_cosmos_tokenizer.data.video_tokenizer import load_video_tokenizer
    from nemo_cosmos_tokenizer.evaluation.metrics import psnr_from_mse, squared_error_sums, ssim_frames
    from nemo_cosmos_tokenizer.megatron.demo_media import read_clip_set

    clips, _ = read_clip_set(manifest, limit)  # [N, T, H, W, 3]
    tokenizer = load_video_tokenizer(final_dir, device, "float32", parts=("encoder", "decoder"))
    ids, psnrs, ssims = [], [], []
    for start in range(0, len(clips), 8):
        batch = clips[start:start + 8]
        grid = tokenizer.encode(batch)  # [b, T', H', W'] int32
        recon = tokenizer.decode(grid)  # [b, T, H, W, 3] uint8
        ids.append(grid)
        for x, y in zip(batch, recon):
            a, b = torch.from_numpy(x), torch.from_numpy(np.ascontiguousarray(y))
            psnrs.append(psnr_from_mse(float(squared_error_sums(a, b).sum()) / a.numel()))
            ssims.extend(ssim_frames(a, b).tolist())
    ids_all = np.concatenate(ids)
    return {"psnr": float(np.mean(psnrs)), "ssim": float(np.mean(ssims)), "clips": len(clips),
            "codes_used": int(np.unique(ids_all).size), "codebook_size": int(tokenizer.codebook_size), "ids": ids_all}


def frozen_weights_equal(before: str, after: str) -> bool:
    """The encoder and quant_conv tensors of two safetensors folders are bitwise equal."""
    from safetensors.torch import load_file

    a, b = (load_file(str(Path(d) / "model.safetensors")) for d in (before, after))
    keys = [k for k in a if k.startswith(("encoder.", "quant_conv."))]
    return bool(keys) and all(k in b and a[k].dtype == b[k].dtype and bool((a[k] == b[k]).all()) for k in keys)


def sample_and_measure(run_dir: Path, captions: list[str], sizes: Sizes, out_dir: Path, args) -> list[dict]:
    """Sample ``samples_per_caption`` videos per caption, decode them with the dataset's (trained) tokenizer, and
    measure what each shows."""
    from nemo_cosmos_tokenizer.megatron.demo_content import analyse_clip, compare
    from nemo_cosmos_tokenizer.megatron.demo_media import read_clip_set
    from nemo_cosmos_tokenizer.megatron.sampling import sample_videos

    rows = []
    for i, caption in enumerate(captions):
        result = sample_videos(run_dir, caption, out_dir / f"sample_{i:02d}.mp4", num_samples=sizes.samples_per_caption,
                               temperature=args.temperature, top_k=args.top_k, seed=i, device=sizes.device)
        for video in result.videos:
            manifest = Path(video).with_suffix(".jsonl")
            manifest.write_text(json.dumps({"path": Path(video).name, "text": caption}) + "\n")
            frames = read_clip_set(manifest)[0][0]  # the mp4 sample_video.py wrote: [T, H, W, 3]
            content = analyse_clip(frames)
            rows.append({"caption": caption, "video": video, **compare(content, caption),
                         "measured": dataclasses.asdict(content)})
            print(f"  {caption!r}: {content.colour}, {content.direction} -> {'match' if rows[-1]['match'] else 'NO'}")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work-dir", required=True, help="clips, tokenizer runs, shards, GPT run and samples")
    parser.add_argument("--out", default=os.environ.get("OUT"), help="report, logs, mp4, contact sheet (default $OUT)")
    parser.add_argument("--minutes", type=float, help="time budget of the from-scratch tokenizer (default 8)")
    parser.add_argument("--max-steps", type=int, help="train the tokenizer exactly this many steps (not --minutes)")
    parser.add_argument("--finetune-steps", type=int, help="decoder-only fine-tune steps (default 600)")
    parser.add_argument("--gpt-steps", type=int, help="GPT steps (default 800)")
    parser.add_argument("--captions", type=int, help="held-out captions to sample (default 24)")
    parser.add_argument("--temperature", type=float, default=0.8, help="sampling temperature")
    parser.add_argument("--top-k", type=int, default=50, help="sample among the k most likely visual ids")
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny sizes on CPU: checks the plumbing, no targets")
    args = parser.parse_args()
    sizes = SMOKE if args.cpu_smoke else Sizes()
    sizes = dataclasses.replace(sizes, **{k: v for k, v in (("finetune_steps", args.finetune_steps),
                                                            ("gpt_steps", args.gpt_steps), ("captions", args.captions))
                                          if v is not None})
    if args.max_steps is None and args.cpu_smoke:
        args.max_steps = sizes.probe_steps
    minutes = args.minutes if args.minutes is not None else sizes.minutes

    work = Path(args.work_dir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    py, timings, started = sys.executable, {}, time.perf_counter()
    geometry = ["--num-frames", str(sizes.frames), "--resolution", str(sizes.size), str(sizes.size)]
    device = ["--device", sizes.device] if sizes.device != "auto" else []
    flags = dict((f[0], list(f[1:])) for f in sizes.tokenizer_flags)

    print(f"# 1. clips ({sizes.frames} frames, {sizes.size}x{sizes.size}) -> {work / 'clips'}")
    t0 = time.perf_counter()
    train = make_training_clips(work / "clips" / "train", sizes.train_clips, frames=sizes.frames, size=sizes.size)
    heldout = write_clip_set(work / "clips" / "heldout", sizes.heldout_clips, seed=1, frames=sizes.frames, size=sizes.size)
    other = write_clip_set(work / "clips" / "other", sizes.other_clips, seed=2, frames=sizes.frames, size=sizes.size,
                           other=True)
    other_val = write_clip_set(work / "clips" / "other_heldout", sizes.other_heldout_clips, seed=3, frames=sizes.frames,
                               size=sizes.size, other=True)
    timings["clips"] = time.perf_counter() - t0

    print("# 2. a tokenizer from scratch")
    scratch_dir = work / "tokenizer"
    batch = int(flags["--batch-size"][0]) if "--batch-size" in flags else 16  # the recipe's batch_size
    base = [py, "scripts/train_tokenizer.py", "--config", "recipes/train_tokenizer_demo.yaml", "--input",
            train["manifest"], "--val-input", heldout["manifest"], "--output-dir", str(scratch_dir), *geometry,
            *device, *_flat(flags)]
    scratch_cli, steps = train_from_scratch(base, scratch_dir, sizes, minutes, args.max_steps, batch,
                                            work / "tokenizer.log", timings)
    scratch = str(scratch_cli["final_dir"])
    dev = "cuda" if sizes.device == "auto" and _cuda() else ("cpu" if sizes.device == "auto" else sizes.device)
    scratch_score = score(scratch, heldout["manifest"], dev)

    print("# 3. decoder-only fine-tune on the other clips")
    tuned_dir = work / "tokenizer_decoder"
    tuned_cli = _last_json(_run(
        [py, "scripts/train_tokenizer.py", "--config", "recipes/train_tokenizer_demo.yaml", "--init", scratch,
         "--mode", "decoder", "--input", other["manifest"], "--val-input", other_val["manifest"], "--output-dir",
         str(tuned_dir), "--max-steps", str(sizes.finetune_steps), *geometry, *device,
         *_flat({**flags, "--warmup-steps": ["0"]})],
        work / "tokenizer_decoder.log", timings, "finetune"))
    tuned = str(tuned_cli["final_dir"])
    other_before, other_after = (score(d, other_val["manifest"], dev) for d in (scratch, tuned))
    heldout_after = score(tuned, heldout["manifest"], dev)
    import numpy as np

    ids_kept = {"heldout": bool(np.array_equal(scratch_score["ids"], heldout_after["ids"])),
                "other_heldout": bool(np.array_equal(other_before["ids"], other_after["ids"])),
                "frozen_weights_equal": frozen_weights_equal(scratch, tuned)}
    print(f"  other held-out PSNR {other_before['psnr']:.2f} -> {other_after['psnr']:.2f} dB; ids unchanged: {ids_kept}")

    print("# 4. shards with the trained tokenizer, and the GPT")
    prefix, run_dir = work / "tokens" / "clips", work / "gpt"
    _run([py, "scripts/build_video_token_dataset.py", "--input", train["manifest"], "--text-tokenizer",
          train["text_tokenizer"], "--output-prefix", str(prefix), "--tokenizer", scratch, *geometry,
          "--batch-size", "32", "--num-workers", "4", "--no-progress", *device], work / "build.log", timings, "build")
    _run([py, "scripts/train_gpt.py", "--config", "recipes/train_gpt_demo.yaml", "--data-prefix", str(prefix),
          "--output-dir", str(run_dir), "--max-steps", str(sizes.gpt_steps), *device, *sizes.gpt_flags],
         work / "train_gpt.log", timings, "train_gpt")
    gpt = json.loads((run_dir / "summary.json").read_text())

    print(f"# 5. {sizes.captions} held-out captions x {sizes.samples_per_caption} samples, measured")
    t0 = time.perf_counter()
    captions = heldout["captions"][: sizes.captions]
    rows = sample_and_measure(run_dir, captions, sizes, work / "samples", args)
    timings["sample"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - started

    report = {
        "sizes": dataclasses.asdict(sizes), "tokenizer_steps": steps, "minutes_budget": minutes,
        "tokenizer": {k: v for k, v in scratch_score.items() if k != "ids"}, "tokenizer_cli_eval": scratch_cli["eval"],
        "finetune": {"steps": sizes.finetune_steps, "other_before": _plain(other_before),
                     "other_after": _plain(other_after), "heldout_after": _plain(heldout_after), "ids": ids_kept},
        "gpt": {k: gpt.get(k) for k in ("device", "steps", "final_val_loss", "final_train_loss", "unigram_entropy",
                                        "tokens_per_second", "parameters")},
        "samples": rows, "seconds": {k: round(v, 1) for k, v in timings.items()},
        "temperature": args.temperature, "top_k": args.top_k, "command": shlex.join(["python", *sys.argv]),
        "device": _device_line(dev),
    }
    failures = write_outputs(report, work, Path(args.out) if args.out else None, smoke=args.cpu_smoke)
    for failure in failures:
        print(f"FAILED: {failure}")
    return 1 if failures else 0


def write_outputs(report: dict, work: Path, out: Path | None, smoke: bool) -> list[str]:
    """``report.json``, ``report.md`` (the TRAINING.md section) and ``contact_sheet.png`` into ``work``, copied with
    the logs and one sampled mp4 into ``out``; prints the section; returns the missed targets."""
    from nemo_cosmos_tokenizer.megatron.demo_media import contact_sheet, read_clip_set
    from nemo_cosmos_tokenizer.megatron.demo_report import missed_targets, report_markdown

    missed = missed_targets(report, smoke=smoke)
    report["missed_targets"] = missed
    (work / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    markdown = report_markdown(report)
    (work / "report.md").write_text(markdown)
    print("\n" + markdown)
    shown = report["samples"][:8]
    clips = [read_clip_set(Path(s["video"]).with_suffix(".jsonl"))[0][0] for s in shown]
    labels = [f"measured: {s['measured']['colour']}, {s['measured']['direction']} ({'ok' if s['match'] else 'WRONG'})"
              for s in shown]
    contact_sheet(clips, [s["caption"] for s in shown], work / "contact_sheet.png", labels=labels,
                  label_colour=lambda i: (0, 120, 0) if shown[i]["match"] else (200, 0, 0))
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        files = [work / n for n in ("report.json", "report.md", "contact_sheet.png", "tokenizer.log",
                                    "tokenizer_decoder.log", "build.log", "train_gpt.log")]
        files += [work / "tokenizer" / "train_log.jsonl", work / "gpt" / "summary.json", Path(shown[0]["video"])]
        for path in files:
            if path.exists():
                shutil.copy(path, out / (path.name if path.name != "train_log.jsonl" else "tokenizer_train_log.jsonl"))
        print(f"copied the report, logs, contact sheet and {Path(shown[0]['video']).name} to {out}")
    return missed


def _flat(flags: dict[str, list[str]]) -> list[str]:
    return [item for flag, values in flags.items() for item in (flag, *values)]


def _device_line(dev: str) -> str:
    import platform

    import torch

    name = torch.cuda.get_device_name() if dev.startswith("cuda") else f"CPU ({platform.processor() or 'unknown'})"
    return f"{name}, torch {torch.__version__}, Python {platform.python_version()}"


def _plain(scored: dict) -> dict:
    return {k: v for k, v in scored.items() if k != "ids"}


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


if __name__ == "__main__":
    sys.exit(main())
