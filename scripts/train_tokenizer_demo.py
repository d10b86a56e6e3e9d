#!/usr/bin/env python3
"""A tokenizer trained here, from scratch, carries a GPT's video: generated clips -> tokenizer -> shards -> GPT ->
sampled videos whose content is measured.

One command, nothing downloaded. Each step's command is printed before it runs; the report ends in a Markdown
section for TRAINING.md (``report.md``), ``report.json``, one sampled mp4 and a contact sheet of samples in --out:

1. clips of :mod:`nemo_cosmos_tokenizer.megatron.demo` (a coloured square, ball or bar moving over a plain
   background; the caption says which), 17 x 128 x 128: a training set, a held-out set, and "other clips" (the same
   kind of scenes lit from one side under fixed stripes) with a held-out part of their own;
2. ``scripts/train_tokenizer.py --config recipes/train_tokenizer_demo.yaml``: a DV tokenizer from scratch
   (17 x 128 x 128 -> 3 x 8 x 8 tokens, 64,000 codes) for exactly --max-steps, or within --minutes: a short first
   run measures the step rate, then the same command resumes in chunks until the PSNR on a validation set reaches
   --stop-psnr or the budget is spent; table: steps, minutes, PSNR and SSIM on held-out clips (never used for
   stopping), codes in use;
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

Rerunning the command in the same --work-dir reuses the tokenizer trained from scratch there (its steps and minutes
are kept in ``tokenizer/demo_stage.json``) and goes on from step 3; --stop-after tokenizer ends after step 2, so a
machine whose commands are limited in time can run the demo as two commands. Each training command also resumes
from the checkpoints it finds; use a fresh --work-dir for a new run.

examples:
  python scripts/train_tokenizer_demo.py --work-dir /tmp/tok-demo --out $OUT       # < 10 min on one H100 (estimate)
  python scripts/train_tokenizer_demo.py --work-dir /tmp/tok-demo --minutes 8 --stop-psnr 0 --gpt-steps 1000
  python scripts/train_tokenizer_demo.py --work-dir /tmp/tok-smoke --cpu-smoke     # the plumbing, minutes on a CPU
  # two commands of at most 10 minutes each: the tokenizer, then the rest (reusing it)
  python scripts/train_tokenizer_demo.py --work-dir /tmp/tok-demo --minutes 8 --stop-after tokenizer
  python scripts/train_tokenizer_demo.py --work-dir /tmp/tok-demo --minutes 8 --out $OUT
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
import tarfile
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
    val_clips: int = 16
    minutes: float = 4.5
    """Budget of the from-scratch tokenizer; the rest of the demo takes about 4 minutes on an H100 (estimate), and
    one command on the project's GPU machines may run 10."""
    probe_steps: int = 300
    chunk_seconds: float = 90.0
    finetune_steps: int = 300
    gpt_steps: int = 600
    captions: int = 20
    samples_per_caption: int = 2
    build_workers: int = 8
    tokenizer_flags: tuple[tuple[str, ...], ...] = (("--no-progress",),)
    """(flag, values...) added to both tokenizer runs (over recipes/train_tokenizer_demo.yaml)."""
    finetune_flags: tuple[tuple[str, ...], ...] = (("--ema-decay", "0.99"),)
    """(flag, values...) for the decoder-only fine-tune on top of those (the recipe's EMA 0.999 would keep most of
    the starting decoder over a few hundred steps)."""
    gpt_flags: tuple[str, ...] = ()
    device: str = "auto"


SMOKE = Sizes(
    train_clips=24, heldout_clips=4, other_clips=6, other_heldout_clips=3, val_clips=3, frames=9, size=64,
    probe_steps=4, finetune_steps=3, gpt_steps=4, captions=2, samples_per_caption=1, build_workers=0, device="cpu",
    tokenizer_flags=(("--channels", "8"), ("--channels-mult", "1,1,1"), ("--batch-size", "2"),
                     ("--warmup-steps", "1"), ("--eval-every", "100"), ("--save-every", "100"), ("--log-every", "2"),
                     ("--val-samples", "3"), ("--num-workers", "0"), ("--dtype", "float32"), ("--ema-decay", "0"),
                     ("--no-progress",)),
    finetune_flags=(("--ema-decay", "0.99"),),
    gpt_flags=("--position-embedding", "learned_absolute", "--num-layers", "1", "--hidden-size", "32",
               "--num-attention-heads", "2", "--micro-batch-size", "4", "--eval-interval", "2", "--eval-batches",
               "1", "--log-interval", "2", "--save-interval", "100", "--num-workers", "0", "--warmup-steps", "1"),
)


def _run(cmd: list[str], log: Path, timings: dict[str, float], name: str) -> list[str]:
    """Run ``cmd`` from the repo root, echo and log its output; returns the output lines."""
    print(f"\n$ {shlex.join(cmd)}", flush=True)
    started, lines = time.perf_counter(), []
    with open(log, "a", encoding="utf-8") as f:
        f.write(f"\n$ {shlex.join(cmd)}\n")
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
                       stop_psnr: float, batch_size: int, log: Path, timings: dict[str, float]) -> tuple[dict, int, str]:
    """Run ``base`` for exactly ``max_steps``, or in chunks within about ``minutes``: a first run of ``probe_steps``
    measures the step rate and the fixed cost of a run (start-up, validation, writing); then the same command resumes
    from its checkpoint with ``--max-steps`` raised by what fits ``chunk_seconds`` (and the rest of the budget),
    until the validation PSNR (``--val-input``, clips never reported as held-out) reaches ``stop_psnr`` or the
    budget is spent. Returns the CLI's last result, the steps and why it stopped."""
    if max_steps is not None:
        return _last_json(_run([*base, "--max-steps", str(max_steps)], log, timings, "tokenizer")), max_steps, "--max-steps"
    began, steps = time.perf_counter(), sizes.probe_steps
    result = _last_json(_run([*base, "--max-steps", str(steps)], log, timings, "tokenizer"))
    probe_seconds = time.perf_counter() - began
    rate = _steps_per_second(out_dir / "train_log.jsonl", batch_size) or steps / probe_seconds
    fixed = max(probe_seconds - steps / rate, 0.0)
    print(f"  {rate:.2f} steps/s, {fixed:.0f} s fixed cost per run")
    while True:
        psnr = result.get("eval", {}).get("psnr")
        if stop_psnr > 0 and psnr is not None and psnr >= stop_psnr:
            return result, steps, f"validation PSNR {psnr:.2f} >= {stop_psnr:g} dB"
        left = minutes * 60 - (time.perf_counter() - began) - fixed
        # Chunks only to look at the validation PSNR between them: without a target, the rest in one run (each run
        # starts again: start-up and, with --compile, compiling from the cache).
        chunk = sizes.chunk_seconds if stop_psnr > 0 else left
        extra = int(rate * min(left, chunk)) // 50 * 50
        if extra < 50:
            return result, steps, f"the {minutes:g}-minute budget"
        steps += extra
        print(f"  validation PSNR {psnr} dB after {steps - extra} steps: {extra} more ({left:.0f} s left)")
        result = _last_json(_run([*base, "--max-steps", str(steps)], log, timings, "tokenizer"))


def score(final_dir: str, manifest: str, device: str, limit: int | None = None) -> dict:
    """Reconstruct the clips of ``manifest`` through ids with the tokenizer in ``final_dir`` (float32): TokenBench
    PSNR (per clip, averaged) and SSIM (per frame, averaged), codes in use, and the ids themselves."""
    import numpy as np
    import torch

    from nemo_cosmos_tokenizer.data.video_tokenizer import load_video_tokenizer
    from nemo_cosmos_tokenizer.devices import deterministic_kernels
    from nemo_cosmos_tokenizer.evaluation.metrics import psnr_from_mse, squared_error_sums, ssim_frames
    from nemo_cosmos_tokenizer.megatron.demo_media import read_clip_set

    # The ids of two tokenizers are compared bit for bit: the same weights must meet the same kernels (no cuDNN
    # timing, which may pick another algorithm per process or call) in true float32 (no TF32).
    deterministic_kernels()
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
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


def sample_and_measure(run_dir: Path, captions: list[str], sizes: Sizes, out_dir: Path, args,
                       stop_at: float | None = None) -> list[dict]:
    """Sample ``samples_per_caption`` videos per caption, decode them with the dataset's (trained) tokenizer, and
    measure what each shows; no new caption is started after ``time.perf_counter()`` passes ``stop_at``."""
    from nemo_cosmos_tokenizer.megatron.demo_content import analyse_clip, compare
    from nemo_cosmos_tokenizer.megatron.demo_media import read_video
    from nemo_cosmos_tokenizer.megatron.sampling import sample_videos

    import warnings

    # megatron-core says once per import that Apex / Transformer Engine are missing; the log has it already.
    warnings.filterwarnings("ignore", message=".*(Apex|Transformer Engine|cuda_graph_scope).*")
    rows = []
    for i, caption in enumerate(captions):
        if stop_at is not None and time.perf_counter() > stop_at:
            print(f"  --time-limit: sampling stops after {i} of {len(captions)} captions")
            break
        result = sample_videos(run_dir, caption, out_dir / f"sample_{i:02d}.mp4", num_samples=sizes.samples_per_caption,
                               temperature=args.temperature, top_k=args.top_k, seed=i, device=sizes.device)
        for video in result.videos:
            frames = read_video(video)  # the mp4 sample_video.py writes: [T, H, W, 3]
            content = analyse_clip(frames)
            rows.append({"caption": caption, "video": video, **compare(content, caption),
                         "measured": dataclasses.asdict(content)})
            print(f"  {caption!r}: {content.colour}, {content.direction} -> {'match' if rows[-1]['match'] else 'NO'}")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work-dir", required=True, help="clips, tokenizer runs, shards, GPT run and samples")
    parser.add_argument("--out", default=os.environ.get("OUT"), help="report, logs, mp4, contact sheet (default $OUT)")
    parser.add_argument("--minutes", type=float, help="time budget of the from-scratch tokenizer (default 4.5)")
    parser.add_argument("--max-steps", type=int, help="train the tokenizer exactly this many steps (not --minutes)")
    parser.add_argument("--finetune-steps", type=int, help="decoder-only fine-tune steps (default 300)")
    parser.add_argument("--gpt-steps", type=int, help="GPT steps (default 600)")
    parser.add_argument("--captions", type=int, help="held-out captions to sample (default 20, 2 samples each)")
    parser.add_argument("--temperature", type=float, default=0.8, help="sampling temperature")
    parser.add_argument("--top-k", type=int, default=50, help="sample among the k most likely visual ids")
    parser.add_argument("--stop-psnr", type=float, default=29.0,
                        help="stop the --minutes training early once the validation PSNR reaches this (0: never)")
    parser.add_argument("--time-limit", type=float,
                        help="minutes: sample no new caption after this minus half a minute, so the report is written "
                             "inside a 10-minute device command (default 9.5; --cpu-smoke: none; 0: none)")
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny sizes on CPU: checks the plumbing, no targets")
    parser.add_argument("--compile", action="store_true",
                        help="train both tokenizers with train-tokenizer --compile (torch.compile of the step's "
                             "encoder and decoder passes: fewer host launches a step; each resumed chunk of the "
                             "from-scratch run compiles again, from Inductor's cache)")
    parser.add_argument("--stop-after", choices=("tokenizer",),
                        help="end after training the tokenizer from scratch (a rerun of the command reuses it)")
    args = parser.parse_args()
    for name in ("minutes", "max_steps", "finetune_steps", "gpt_steps", "captions"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            parser.error(f"--{name.replace('_', '-')} must be > 0, got {value}")
    if args.minutes is not None and args.max_steps is not None:
        parser.error("give --minutes or --max-steps, not both")
    import importlib.util

    if importlib.util.find_spec("nemo_cosmos_tokenizer.training") is None or \
            not (REPO / "scripts" / "train_tokenizer.py").exists() or \
            not (REPO / "recipes" / "train_tokenizer_demo.yaml").exists():
        print("error: the tokenizer training library (nemo_cosmos_tokenizer.training, scripts/train_tokenizer.py) is "
              "not in this checkout\nhint: use a checkout that has the train-tokenizer work merged", file=sys.stderr)
        return 2
    sizes = SMOKE if args.cpu_smoke else Sizes()
    sizes = dataclasses.replace(sizes, **{k: v for k, v in (("finetune_steps", args.finetune_steps),
                                                            ("gpt_steps", args.gpt_steps), ("captions", args.captions))
                                          if v is not None})
    if args.max_steps is None and args.minutes is None and args.cpu_smoke:
        args.max_steps = sizes.probe_steps
    minutes = args.minutes if args.minutes is not None else sizes.minutes

    work = Path(args.work_dir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    py, timings, started = sys.executable, {}, time.perf_counter()
    geometry = ["--num-frames", str(sizes.frames), "--resolution", str(sizes.size), str(sizes.size)]  # the builder's
    tok_geometry = ["--num-frames", str(sizes.frames), "--resolution", f"{sizes.size},{sizes.size}"]  # list flags: a,b
    device = ["--device", sizes.device] if sizes.device != "auto" else []
    flags = dict((f[0], list(f[1:])) for f in sizes.tokenizer_flags)
    if args.compile:
        flags["--compile"] = []

    print(f"# 1. clips ({sizes.frames} frames, {sizes.size}x{sizes.size}) -> {work / 'clips'}")
    t0 = time.perf_counter()
    train = make_training_clips(work / "clips" / "train", sizes.train_clips, frames=sizes.frames, size=sizes.size)
    heldout = write_clip_set(work / "clips" / "heldout", sizes.heldout_clips, seed=1, frames=sizes.frames, size=sizes.size)
    other = write_clip_set(work / "clips" / "other", sizes.other_clips, seed=2, frames=sizes.frames, size=sizes.size,
                           other=True)
    other_val = write_clip_set(work / "clips" / "other_heldout", sizes.other_heldout_clips, seed=3, frames=sizes.frames,
                               size=sizes.size, other=True)
    val = write_clip_set(work / "clips" / "val", sizes.val_clips, seed=4, frames=sizes.frames, size=sizes.size)
    log = work / "demo.log"  # every command's output, in order
    timings["clips"] = time.perf_counter() - t0

    print("# 2. a tokenizer from scratch")
    scratch_dir = work / "tokenizer"
    batch = int(flags["--batch-size"][0]) if "--batch-size" in flags else 16  # the recipe's batch_size
    base = [py, "scripts/train_tokenizer.py", "--config", "recipes/train_tokenizer_demo.yaml", "--input",
            train["manifest"], "--val-input", val["manifest"], "--output-dir", str(scratch_dir), *tok_geometry,
            *device, *_flat(flags)]
    stage = scratch_dir / "demo_stage.json"
    if stage.exists():
        done = json.loads(stage.read_text())
        scratch_cli, steps, stopped = done["cli"], done["steps"], done["stopped_by"]
        timings["tokenizer"] = done["seconds"]
        print(f"  reusing the tokenizer this work dir holds ({steps} steps in {done['seconds'] / 60:.1f} min, stopped "
              f"by {stopped}; delete {scratch_dir} to train it again)")
    else:
        scratch_cli, steps, stopped = train_from_scratch(base, scratch_dir, sizes, minutes, args.max_steps,
                                                         args.stop_psnr, batch, log, timings)
        tmp = stage.with_name(stage.name + ".tmp")
        tmp.write_text(json.dumps({"cli": scratch_cli, "steps": steps, "stopped_by": stopped,
                                   "seconds": timings["tokenizer"]}, indent=1) + "\n")
        tmp.replace(stage)
    if args.stop_after == "tokenizer":
        print(f"# stopped after the tokenizer (--stop-after tokenizer): {steps} steps, held-out scores follow in the "
              f"next run of this command; validation: {scratch_cli.get('eval')}")
        if args.out:
            Path(args.out).mkdir(parents=True, exist_ok=True)
            for name, path in (("tokenizer_train_log.jsonl", scratch_dir / "train_log.jsonl"), ("demo.log", log)):
                if path.exists():
                    shutil.copy(path, Path(args.out) / name)
        return 0
    scratch = str(scratch_cli["final_dir"])
    dev = "cuda" if sizes.device == "auto" and _cuda() else ("cpu" if sizes.device == "auto" else sizes.device)
    scratch_score = score(scratch, heldout["manifest"], dev)

    print("# 3. decoder-only fine-tune on the other clips")
    tuned_dir = work / "tokenizer_decoder"
    tuned_cli = _last_json(_run(
        [py, "scripts/train_tokenizer.py", "--config", "recipes/train_tokenizer_demo.yaml", "--init", scratch,
         "--mode", "decoder", "--input", other["manifest"], "--val-input", other_val["manifest"], "--output-dir",
         str(tuned_dir), "--max-steps", str(sizes.finetune_steps), *tok_geometry, *device,
         *_flat({**flags, "--warmup-steps": ["0"], **{f[0]: list(f[1:]) for f in sizes.finetune_flags}})],
        log, timings, "finetune"))
    tuned = str(tuned_cli["final_dir"])
    other_before, other_after = (score(d, other_val["manifest"], dev) for d in (scratch, tuned))
    heldout_after = score(tuned, heldout["manifest"], dev)
    import numpy as np

    ids_kept = {"heldout": bool(np.array_equal(scratch_score["ids"], heldout_after["ids"])),
                "other_heldout": bool(np.array_equal(other_before["ids"], other_after["ids"])),
                "frozen_weights_equal": frozen_weights_equal(scratch, tuned)}
    print(f"  other held-out PSNR {other_before['psnr']:.2f} -> {other_after['psnr']:.2f} dB; ids unchanged: {ids_kept}")
    if args.out:  # the tokenizer's results come back even if a later step runs out of time
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.json").write_text(json.dumps(
            {"partial": "steps 1-3 only", "tokenizer_steps": steps, "tokenizer_stopped_by": stopped,
             "tokenizer": _plain(scratch_score), "finetune": {"other_before": _plain(other_before),
                                                             "other_after": _plain(other_after), "ids": ids_kept},
             "seconds": {k: round(v, 1) for k, v in timings.items()}}, indent=1) + "\n")
        _tar_tokenizer(scratch, out)

    print("# 4. shards with the trained tokenizer, and the GPT")
    prefix, run_dir = work / "tokens" / "clips", work / "gpt"
    _run([py, "scripts/build_video_token_dataset.py", "--input", train["manifest"], "--text-tokenizer",
          train["text_tokenizer"], "--output-prefix", str(prefix), "--tokenizer", scratch, *geometry,
          "--batch-size", "32", "--num-workers", str(sizes.build_workers), "--no-progress", *device], log, timings, "build")
    _run([py, "scripts/train_gpt.py", "--config", "recipes/train_gpt_demo.yaml", "--data-prefix", str(prefix),
          "--output-dir", str(run_dir), "--max-steps", str(sizes.gpt_steps), *device, *sizes.gpt_flags],
         log, timings, "train_gpt")
    gpt = json.loads((run_dir / "summary.json").read_text())

    print(f"# 5. {sizes.captions} held-out captions x {sizes.samples_per_caption} samples, measured")
    t0 = time.perf_counter()
    captions = heldout["captions"][: sizes.captions]
    limit = args.time_limit if args.time_limit is not None else (0 if args.cpu_smoke else 9.5)
    stop_at = started + 60 * (limit - 0.5) if limit else None  # room for the report
    rows = sample_and_measure(run_dir, captions, sizes, work / "samples", args, stop_at)
    timings["sample"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - started

    report = {
        "sizes": dataclasses.asdict(sizes), "tokenizer_steps": steps, "minutes_budget": minutes,
        "tokenizer_stopped_by": stopped, "stop_psnr": args.stop_psnr,
        "tokenizer": {k: v for k, v in scratch_score.items() if k != "ids"}, "tokenizer_cli_eval": scratch_cli["eval"],
        "finetune": {"steps": sizes.finetune_steps, "other_before": _plain(other_before),
                     "other_after": _plain(other_after), "heldout_after": _plain(heldout_after), "ids": ids_kept},
        "gpt": {k: gpt.get(k) for k in ("device", "steps", "final_val_loss", "final_train_loss", "unigram_entropy",
                                        "tokens_per_second", "parameters")},
        "samples": rows, "seconds": {k: round(v, 1) for k, v in timings.items()},
        "temperature": args.temperature, "top_k": args.top_k, "command": shlex.join(["python", *sys.argv]),
        "device": _device_line(dev), "tokenizer_dir": scratch,
    }
    failures = write_outputs(report, work, Path(args.out) if args.out else None, smoke=args.cpu_smoke)
    for failure in failures:
        print(f"FAILED: {failure}")
    return 1 if failures else 0


def write_outputs(report: dict, work: Path, out: Path | None, smoke: bool) -> list[str]:
    """``report.json``, ``report.md`` (the TRAINING.md section) and ``contact_sheet.png`` into ``work``, copied with
    the logs and one sampled mp4 into ``out``; prints the section; returns the missed targets."""
    from nemo_cosmos_tokenizer.megatron.demo_media import contact_sheet, read_video
    from nemo_cosmos_tokenizer.megatron.demo_report import missed_targets, report_markdown

    missed = missed_targets(report, smoke=smoke)
    report["missed_targets"] = missed
    (work / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    markdown = report_markdown(report)
    (work / "report.md").write_text(markdown)
    print("\n" + markdown)
    shown = report["samples"][:8]
    if shown:
        labels = [f"measured: {s['measured']['colour']}, {s['measured']['direction']} "
                  f"({'ok' if s['match'] else 'WRONG'})" for s in shown]
        contact_sheet([read_video(s["video"]) for s in shown], [s["caption"] for s in shown],
                      work / "contact_sheet.png", labels=labels,
                      label_colour=lambda i: (0, 120, 0) if shown[i]["match"] else (200, 0, 0))
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        # Seven files and the tokenizer's weights as one tar (the device machine hands back at most eight).
        copies = {"report.json": work / "report.json", "report.md": work / "report.md",
                  "contact_sheet.png": work / "contact_sheet.png", "demo.log": work / "demo.log",
                  "tokenizer_train_log.jsonl": work / "tokenizer" / "train_log.jsonl",
                  "gpt_summary.json": work / "gpt" / "summary.json"}
        if shown:
            copies["sample.mp4"] = Path(shown[0]["video"])
        for name, path in copies.items():
            if path.exists():
                shutil.copy(path, out / name)
        _tar_tokenizer(report["tokenizer_dir"], out)
        print(f"copied the report, log, contact sheet, a sample and the tokenizer (tokenizer_final.tar) to {out}")
    return missed


def _tar_tokenizer(final_dir: str, out: Path) -> None:
    tmp = out / "tokenizer_final.tar.tmp"
    with tarfile.open(tmp, "w") as tar:
        tar.add(final_dir, arcname="tokenizer_final")
    tmp.replace(out / "tokenizer_final.tar")


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
