"""The training loop behind ``train-tokenizer``: :func:`train_tokenizer` (one process, or one per GPU or CPU
worker under ``torchrun``; gloo on CPU).

Steps ``start .. max_steps - 1`` run :meth:`.trainer.Trainer.step` on the batches of :class:`.data.ClipBatches`
(read ahead by ``num_workers`` processes). Every ``log_every`` steps the loss terms, averaged over the steps since
the last log and over the processes, go to the log, ``<output_dir>/train_log.jsonl`` and :attr:`TrainResult.history`
with the learning rate, the gradient norm and samples/s; every ``eval_every`` steps (and at the end) rank 0 scores
the held-out clips; every ``save_every`` steps (and at the end) a checkpoint is written. A rerun of the same
command continues from the newest checkpoint exactly as if it had not stopped.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .. import distributed as dist_utils
from ..inference.preprocess import to_unit_range
from ..networks import CosmosTokenizer
from .checkpoints import export_jit_dir, latest_checkpoint, load_state, save_state, write_final
from .config import TokenizerTrainConfig
from .data import ClipBatches, read_eval_clips
from .trainer import TERMS, Trainer, lr_at, mean_over_processes

log = logging.getLogger(__name__)

__all__ = ["TrainResult", "train_tokenizer"]


@dataclass
class TrainResult:
    """What :func:`train_tokenizer` returns (on every process; ``eval`` is filled on rank 0)."""

    final_dir: Path
    history: list[dict[str, Any]] = field(default_factory=list)
    """One entry per log or eval step: ``step`` (steps done), ``loss`` and its terms, ``lr``, ``grad_norm``,
    ``samples_per_s``, and ``psnr``/``ssim``/``codes_used`` where the held-out set was scored."""
    eval: dict[str, Any] = field(default_factory=dict)
    """The last held-out scores: ``psnr``, ``ssim``, ``clips`` (+ ``codes_used``, ``codebook_size``)."""
    network: CosmosTokenizer | None = None
    """The weights written to ``final_dir`` (EMA weights when EMA is on), on the training device, eval mode."""
    jit_dir: Path | None = None
    steps: int = 0
    summary: dict[str, Any] = field(default_factory=dict)


def train_tokenizer(config: TokenizerTrainConfig) -> TrainResult:
    """Train (or fine-tune) a tokenizer as ``config`` says. Raises :class:`.config.TrainConfigError` (with a
    hint) for settings that cannot work."""
    config.require_paths()
    env = dist_utils.get_dist_env()
    device = dist_utils.select_device(config.device, env)
    created = dist_utils.init_distributed(env, device)
    try:
        return _run(Trainer(config, env, device))
    finally:
        if created:
            dist_utils.destroy_distributed()


def _write_log(path: Path, entries: list[dict[str, Any]]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(e) + "\n" for e in entries), encoding="utf-8")
    tmp.replace(path)


def data_workers(asked: int) -> int:
    """``asked`` data-loading processes, at most one per CPU this process may run on: a recipe sized for a GPU host
    (the demo's 12) only thrashes a small machine. Batches do not depend on the number of workers."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if asked > cpus:
        log.info("num_workers %d > the %d CPU(s) this process may use: %d data workers", asked, cpus, cpus)
        return cpus
    return asked


def _progress(config: TokenizerTrainConfig, main: bool, start: int):
    from tqdm.auto import tqdm

    return tqdm(total=config.max_steps, initial=start, disable=not (config.progress and main), unit="step",
                dynamic_ncols=True)


def _run(trainer: Trainer) -> TrainResult:
    config, env, device = trainer.config, trainer.env, trainer.device
    main = env.is_main
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    train_samples, val_samples = trainer.samples()
    arch = trainer.arch
    eval_clips: list = []
    if main and val_samples:
        eval_clips, failed = read_eval_clips(
            val_samples, num_frames=config.num_frames, resolution=config.resolution,
            temporal_compression=arch.temporal_compression, spatial_compression=arch.spatial_compression,
            fps=config.fps, images=not arch.is_video)
        if failed:
            log.warning("%d held-out sample(s) could not be read and are not scored: %s", len(failed), failed[:5])
    if main and not eval_clips:
        log.warning("no held-out clips: PSNR/SSIM are not scored (set --val-input, or give more training samples)")

    start, history = 0, []
    window, window_steps = torch.zeros(len(TERMS), device=device), 0
    checkpoint = latest_checkpoint(out) if config.resume else None
    if checkpoint is not None:
        state = load_state(checkpoint, config)
        trainer.restore(state)
        start, history = state["step"], state["history"]
        window, window_steps = state["window"].to(device), state["window_steps"]
        log.info("resuming from %s (step %d)", checkpoint, start)
    if main:
        _write_log(out / "train_log.jsonl", history)

    batches = ClipBatches(
        train_samples, batch_size=config.batch_size, rank=env.rank, world_size=env.world_size,
        num_frames=config.num_frames if arch.is_video else 1, resolution=config.resolution,
        temporal_compression=arch.temporal_compression, spatial_compression=arch.spatial_compression,
        fps=config.fps, image_every=config.image_every, is_video_model=arch.is_video, seed=config.seed,
        cache_mb=config.cache_mb)
    loader = torch.utils.data.DataLoader(batches, batch_size=None, sampler=range(start, config.max_steps),
                                         num_workers=data_workers(config.num_workers),
                                         pin_memory=device.type == "cuda")
    log.info("training %s (%s, mode %s, from %s): %d trained parameters, %d training samples, %d held-out clips, "
             "global batch %d on %d process(es), steps %d..%d", f"{arch.family}{arch.compression_label}",
             config.dtype, config.mode, trainer.source, sum(p.numel() for p in trainer.params), len(train_samples),
             len(eval_clips), config.batch_size, env.world_size, start, config.max_steps)

    last_eval: dict[str, Any] = history_eval(history)
    bar = _progress(config, main, start)
    began, window_began, window_samples = time.perf_counter(), time.perf_counter(), 0
    grad_norm = torch.zeros((), device=device)
    step = start
    for step, (pixels, _images) in zip(range(start, config.max_steps), loader):
        for group in trainer.opt.param_groups:
            group["lr"] = lr_at(config, step)
        x = to_unit_range(pixels.to(device, non_blocking=True))  # [b, 3, T, H, W]
        if not arch.is_video:
            x = x[:, :, 0]  # [b, 3, H, W]
        terms, grad_norm = trainer.step(x, step)
        window += terms
        window_steps += 1
        window_samples += config.batch_size
        done = step + 1
        entry: dict[str, Any] = {}
        if done % config.log_every == 0 or done % config.eval_every == 0 or done == config.max_steps:
            means = mean_over_processes(window / window_steps, env.world_size).tolist()
            elapsed = time.perf_counter() - window_began
            entry = {"step": done, **{k: v for k, v in zip(TERMS, means) if k in ("loss", "l1") or v != 0},
                     "lr": lr_at(config, step), "grad_norm": float(grad_norm),
                     "samples_per_s": window_samples / elapsed if elapsed > 0 else 0.0}
            window.zero_()
            window_steps, window_began, window_samples = 0, time.perf_counter(), 0
        if done % config.eval_every == 0 or done == config.max_steps:
            if main and eval_clips:
                last_eval = trainer.evaluate(eval_clips)
                entry.update({k: last_eval[k] for k in ("psnr", "ssim", "codes_used") if k in last_eval})
        if entry:
            history.append(entry)
            if main:
                with open(out / "train_log.jsonl", "a", encoding="utf-8") as f:
                    f.write(json.dumps(entry) + "\n")
                log.info("step %d/%d %s", done, config.max_steps,
                         " ".join(f"{k} {v:.4g}" for k, v in entry.items() if k != "step"))
                bar.set_postfix({k: f"{entry[k]:.4g}" for k in ("loss", "psnr") if k in entry}, refresh=False)
        bar.update(1)
        if done % config.save_every == 0 or done == config.max_steps:
            if main:
                save_state(out, done, trainer.state(done, history, window, window_steps))
            dist_utils.barrier()
    bar.close()
    seconds = time.perf_counter() - began

    final_net = trainer.final_network()
    if main and eval_clips and not last_eval:
        last_eval = trainer.evaluate(eval_clips)  # a resumed run that had nothing left to do
    summary = {"steps": config.max_steps, "resumed_from": start, "source": trainer.source,
               "architecture": arch.to_dict(), "mode": config.mode, "world_size": env.world_size,
               "device": str(device), "seconds": seconds, "eval": last_eval,
               "trained_parameters": sum(p.numel() for p in trainer.params)}
    final_dir, jit_dir = out / "final", None
    if main:
        final_net.eval()
        write_final(final_net, config, out, summary)
        if config.export_jit:
            jit_dir = export_jit_dir(final_net, out)
        log.info("wrote %s%s", final_dir, f" and {jit_dir}" if jit_dir else "")
    dist_utils.barrier()
    return TrainResult(final_dir=final_dir, history=history, eval=last_eval, network=final_net.eval(),
                       jit_dir=jit_dir if jit_dir is not None else (out / "jit" if config.export_jit else None),
                       steps=config.max_steps, summary=summary)


def history_eval(history: list[dict[str, Any]]) -> dict[str, Any]:
    """The held-out scores of the last history entry that has them (a resumed run's starting point)."""
    for entry in reversed(history):
        if "psnr" in entry:
            return {k: entry[k] for k in ("psnr", "ssim", "codes_used") if k in entry}
    return {}
