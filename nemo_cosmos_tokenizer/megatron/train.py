"""Train a megatron-core ``GPTModel`` on built shards: the library behind ``scripts/train_gpt.py``.

One process per GPU under ``torchrun`` (or one CPU process with gloo): ``parallel_state`` splits the world into
tensor-parallel groups of ``tensor_parallel`` ranks and data-parallel replicas of them. Data comes from
megatron-core's ``GPTDataset`` through ``BlendedMegatronDatasetBuilder`` with :class:`SidecarTokenizer` (the
layout's eod, pad and vocabulary; ``reset_position_ids`` / ``reset_attention_mask`` / ``eod_mask_loss``), after
:func:`~nemo_cosmos_tokenizer.megatron.check_split` has refused a split that would make it hang.

Step ``s`` reads global samples ``[s * B, (s + 1) * B)`` of the train split (``B`` = micro batch x data parallel x
accumulation; replica ``r`` its ``r``-th slice of each micro batch), so a resumed run continues with exactly the
samples it would have seen. Weights are float32 and run under bfloat16 autocast on CUDA; AdamW with linear warm-up
and cosine decay; gradients clipped by global norm (across tensor-parallel shards).

Checkpoints: ``<output_dir>/checkpoints/step_<n>/mp_rank_<tp>.pt`` (model, optimizer, scheduler, step, RNG,
config and model shape) written by the first data-parallel replica, each file under a temporary name then renamed;
``checkpoints/latest`` names the newest complete one. Resume needs the same tensor-parallel size (any data-parallel
size). ``<output_dir>/train_log.jsonl`` gets one line per logged step and evaluation; ``summary.json`` the end.

This module is the loop; its parts live beside it: :mod:`.parallel` (process groups and collectives),
:mod:`.train_data` (dataset splits and the micro batches of each replica), :mod:`.checkpoints` (save and resume).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch

from .checkpoints import latest_checkpoint, load_checkpoint_file, save_checkpoint
from .config import TrainConfig, load_train_config  # noqa: F401  (defined there: light to import for --help)
from .model import GPTShape, build_gpt_model
from .parallel import all_reduce, clip_grad_norm, count_parameters, init_parallel, peak_flops
from .settings import VOCAB_DIVISIBLE_BY, data_paths, document_lengths
from .tokenizer import SidecarTokenizer
from .train_data import batch_loader, build_datasets, micro_batches, unigram_entropy

log = logging.getLogger(__name__)


def _lr_lambda(config: TrainConfig):
    def factor(step: int) -> float:
        if config.warmup_steps and step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        span = max(1, config.max_steps - config.warmup_steps)
        progress = min(1.0, (step - config.warmup_steps) / span)
        floor = config.min_lr / config.lr
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def _batch_loss(model, batch: dict[str, torch.Tensor], device: torch.device, autocast) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum of masked token losses and number of loss tokens of one micro batch."""
    tokens = batch["tokens"].to(device, non_blocking=True)  # [b, s]
    labels = batch["labels"].to(device, non_blocking=True)  # [b, s]
    loss_mask = batch["loss_mask"].to(device, non_blocking=True).float()  # [b, s]
    position_ids = batch["position_ids"].to(device, non_blocking=True)  # [b, s]
    mask = batch.get("attention_mask")  # [b, 1, s, s], True = masked
    mask = mask.to(device, non_blocking=True) if mask is not None else None
    with autocast:
        losses = model(tokens, position_ids, mask, labels=labels)  # [b, s] float32 cross entropy
    return (losses.float() * loss_mask).sum(), loss_mask.sum()


@dataclass
class TrainSummary:
    steps: int
    resumed_from: Optional[int]
    seq_length: int
    parameters: int
    tokens_per_step: int
    final_train_loss: float
    final_val_loss: Optional[float]
    unigram_entropy: float
    tokens_per_second: float
    mfu: Optional[float]
    device: str
    world_size: int
    tensor_parallel: int
    data_parallel: int
    checkpoint: str
    val_curve: list[dict[str, Optional[float]]]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def train(config: TrainConfig) -> TrainSummary:
    """Train (or resume) per ``config``; returns the summary (rank 0's view; also written to ``summary.json``)."""
    import torch.distributed as dist
    from megatron.core import parallel_state

    config.require_paths()
    device, created = init_parallel(config)
    try:
        return _train(config, device)
    finally:
        parallel_state.destroy_model_parallel()
        if created:
            dist.destroy_process_group()


def _train(config: TrainConfig, device: torch.device) -> TrainSummary:
    import torch.distributed as dist
    from megatron.core import parallel_state

    if config.position_embedding == "rope" and device.type != "cuda":
        raise ValueError("position_embedding 'rope' needs CUDA in megatron-core 0.16.1; use learned_absolute on CPU")
    rank = dist.get_rank()
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = SidecarTokenizer(config.data_prefix)
    prefixes = list(data_paths(tokenizer.sidecar_path, tokenizer.sidecar))
    lengths, _ = document_lengths(prefixes)
    seq_length = config.seq_length or int(math.ceil(lengths.max() / 64) * 64)
    tp = config.tensor_parallel
    dp = parallel_state.get_data_parallel_world_size()
    dp_rank = parallel_state.get_data_parallel_rank()
    multiple = VOCAB_DIVISIBLE_BY * tp
    shape = GPTShape(
        num_layers=config.num_layers, hidden_size=config.hidden_size, num_attention_heads=config.num_attention_heads,
        ffn_hidden_size=config.ffn_hidden_size or 4 * config.hidden_size,
        vocab_size=int(math.ceil(tokenizer.vocab_size / multiple) * multiple), seq_length=seq_length,
        position_embedding=config.position_embedding,
    )
    per_step = config.micro_batch_size * dp * config.gradient_accumulation
    eval_samples = config.eval_batches * config.micro_batch_size * dp
    datasets = build_datasets(config, tokenizer, seq_length, [config.max_steps * per_step, eval_samples or None, None])
    train_ds, valid_ds = datasets[0], datasets[1]
    if train_ds is None:
        raise ValueError(f"split {config.split!r} has no train split")
    entropy = unigram_entropy(prefixes) if rank == 0 else float("nan")

    torch.manual_seed(config.seed)
    model = build_gpt_model(shape, device=device, dropout=config.dropout)
    parameters = count_parameters(model, device)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr, betas=(0.9, 0.95), eps=1e-8, fused=device.type == "cuda",
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(config))

    start, resumed = 0, None
    checkpoint = latest_checkpoint(out) if config.resume else None
    if checkpoint is not None:
        state = load_checkpoint_file(checkpoint, parallel_state.get_tensor_model_parallel_rank())
        if state["tensor_parallel"] != tp:
            raise ValueError(f"{checkpoint} was saved with tensor parallel {state['tensor_parallel']}, not {tp}")
        if state["shape"] != dataclasses.asdict(shape):
            raise ValueError(f"{checkpoint} holds a model of shape {state['shape']}, this run builds {dataclasses.asdict(shape)}")
        model.load_state_dict(state["model"], strict=True)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"]["torch"])
        if device.type == "cuda" and state["rng"]["cuda"] is not None:
            torch.cuda.set_rng_state(state["rng"]["cuda"], device)
        start = resumed = int(state["step"])
        if rank == 0:
            log.info("resumed from %s (step %d)", checkpoint, start)

    if dp > 1:
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None,
            process_group=parallel_state.get_data_parallel_group(),
        )
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()
    params = [p for p in model.parameters() if p.requires_grad]
    peak = peak_flops(config, device)
    flops_per_token = shape.flops_per_token()
    tokens_per_step = per_step * seq_length
    if rank == 0:
        log.info(
            "GPT %d layers x %d hidden, %d heads, %.2fM parameters, vocab %d (padded %d), seq %d; world %d = TP %d x "
            "DP %d; %d samples (%d tokens) per step; unigram entropy of the data %.3f nats",
            shape.num_layers, shape.hidden_size, shape.num_attention_heads, parameters / 1e6, tokenizer.vocab_size,
            shape.vocab_size, seq_length, dist.get_world_size(), tp, dp, per_step, tokens_per_step, entropy,
        )

    log_file = open(out / "train_log.jsonl", "a", encoding="utf-8") if rank == 0 else None
    dp_group = parallel_state.get_data_parallel_group()

    def evaluate(step: int) -> float | None:
        if valid_ds is None or not config.eval_batches:
            return None
        model.eval()
        total = torch.zeros(2, device=device, dtype=torch.float64)
        batches = [list(range(b * config.micro_batch_size * dp + dp_rank * config.micro_batch_size,
                              b * config.micro_batch_size * dp + (dp_rank + 1) * config.micro_batch_size))
                   for b in range(config.eval_batches)]
        with torch.no_grad():
            for batch in batch_loader(valid_ds, batches, 0):
                loss_sum, count = _batch_loss(model, batch, device, autocast)
                total += torch.stack([loss_sum.double(), count.double()])
        total = all_reduce(total, dp_group)
        model.train()
        value = float(total[0] / total[1].clamp(min=1))
        if log_file is not None:
            log_file.write(json.dumps({"step": step, "val_loss": value}) + "\n")
            log_file.flush()
            log.info("step %d: validation loss %.4f (unigram entropy %.4f)", step, value, entropy)
        return value

    val_curve: list[dict[str, float]] = []
    model.train()
    loader = iter(batch_loader(train_ds, micro_batches(start, config.max_steps, config.micro_batch_size, dp,
                                                   config.gradient_accumulation, dp_rank), config.num_workers))
    window_loss = torch.zeros(2, device=device, dtype=torch.float64)
    window_start, window_steps = time.perf_counter(), 0
    measured_tokens, measured_seconds = 0, 0.0
    train_loss = float("nan")
    if start == 0 and (v := evaluate(0)) is not None:
        val_curve.append({"step": 0, "val_loss": v, "train_loss": None})
    done = start
    for step in range(start, config.max_steps):
        optimizer.zero_grad(set_to_none=True)
        micro = []
        for m in range(config.gradient_accumulation):
            batch = next(loader)
            sync = dp > 1 and m < config.gradient_accumulation - 1
            with (model.no_sync() if sync else nullcontext()):
                loss_sum, count = _batch_loss(model, batch, device, autocast)
                # Mean over each micro batch's loss tokens, averaged over micro batches (and replicas, by DDP).
                (loss_sum / count.clamp(min=1) / config.gradient_accumulation).backward()
            micro.append(torch.stack([loss_sum.detach().double(), count.double()]))
        grad_norm = clip_grad_norm(params, config.grad_clip)
        optimizer.step()
        scheduler.step()
        window_loss += torch.stack(micro).sum(0)
        window_steps += 1
        done = step + 1
        if done % config.log_interval == 0 or done == config.max_steps:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            totals = all_reduce(window_loss.clone(), dp_group)
            seconds = time.perf_counter() - window_start
            train_loss = float(totals[0] / totals[1].clamp(min=1))
            tokens_per_second = window_steps * tokens_per_step / seconds
            if done > start + config.log_interval:  # the first window holds start-up (workers, compilation)
                measured_tokens += window_steps * tokens_per_step
                measured_seconds += seconds
            mfu = tokens_per_second * flops_per_token / (peak * dist.get_world_size()) if peak else None
            if log_file is not None:
                record = {"step": done, "train_loss": train_loss, "lr": scheduler.get_last_lr()[0],
                          "grad_norm": grad_norm, "tokens_per_second": tokens_per_second, "mfu": mfu}
                log_file.write(json.dumps(record) + "\n")
                log_file.flush()
                log.info("step %d/%d: loss %.4f, lr %.2e, grad norm %.2f, %.0f tokens/s%s", done, config.max_steps,
                         train_loss, record["lr"], grad_norm, tokens_per_second,
                         f", MFU {100 * mfu:.1f}%" if mfu is not None else "")
            window_loss.zero_()
            window_start, window_steps = time.perf_counter(), 0
        if done % config.eval_interval == 0 or done == config.max_steps:
            v = evaluate(done)
            if v is not None:
                val_curve.append({"step": done, "val_loss": v, "train_loss": train_loss})
        stopping = config.exit_after is not None and done - start >= config.exit_after
        if done % config.save_interval == 0 or done == config.max_steps or stopping:
            folder = save_checkpoint(config, shape, model, optimizer, scheduler, done,
                           {"sidecar": tokenizer.sidecar_path, "seq_length": seq_length})
            if rank == 0:
                log.info("saved %s", folder)
        if stopping:
            if rank == 0:
                log.info("stopping after %d steps of this run (exit_after); rerun to resume", config.exit_after)
            break
    if log_file is not None:
        log_file.close()

    tokens_per_second = measured_tokens / measured_seconds if measured_seconds else float("nan")
    mfu = tokens_per_second * flops_per_token / (peak * dist.get_world_size()) if peak and measured_seconds else None
    final = latest_checkpoint(out)
    summary = TrainSummary(
        steps=done, resumed_from=resumed, seq_length=seq_length, parameters=parameters,
        tokens_per_step=tokens_per_step, final_train_loss=train_loss,
        final_val_loss=val_curve[-1]["val_loss"] if val_curve else None, unigram_entropy=entropy,
        tokens_per_second=tokens_per_second, mfu=mfu,
        device=torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        world_size=dist.get_world_size(), tensor_parallel=tp, data_parallel=dp,
        checkpoint=str(final) if final else "", val_curve=val_curve,
    )
    if rank == 0:
        tmp = out / f"summary.json.tmp-{os.getpid()}"
        tmp.write_text(json.dumps(summary.to_dict(), indent=1) + "\n")
        os.replace(tmp, out / "summary.json")
    return summary
