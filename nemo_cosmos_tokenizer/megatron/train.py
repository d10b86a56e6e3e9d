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
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import socket
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np
import torch

from .config import TrainConfig, load_train_config  # noqa: F401  (defined there: light to import for --help)
from .model import GPTShape, build_gpt_model
from .blend import blend_weights
from .settings import VOCAB_DIVISIBLE_BY, check_split, data_paths, document_lengths, suggest_split
from .tokenizer import SidecarTokenizer

log = logging.getLogger(__name__)

#: Dense bfloat16 peak of known GPUs, TFLOP/s (NVIDIA data sheets; SXM parts), for MFU.
PEAK_TFLOPS = {"H200": 989.4, "H100 PCIe": 756.0, "H100 NVL": 835.0, "H100": 989.4, "A100": 312.0, "L40S": 362.0}


# ------------------------------------------------------------------------------------------- distributed set-up
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _init_parallel(config: TrainConfig) -> tuple[torch.device, bool]:
    """Process group (a 1-process gloo group when alone: megatron-core needs one) and parallel_state."""
    import torch.distributed as dist
    from megatron.core import parallel_state

    from ..distributed import get_dist_env, select_device

    env = get_dist_env()
    device = select_device(config.device, env)
    created = False
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if env.world_size == 1:
            dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1)
        else:
            dist.init_process_group(backend, rank=env.rank, world_size=env.world_size)
        created = True
    world = dist.get_world_size()
    if world % config.tensor_parallel:
        raise ValueError(f"{world} processes cannot be split into tensor-parallel groups of {config.tensor_parallel}")
    parallel_state.initialize_model_parallel(tensor_model_parallel_size=config.tensor_parallel)
    if device.type == "cuda":
        from megatron.core.tensor_parallel.random import model_parallel_cuda_manual_seed

        model_parallel_cuda_manual_seed(config.seed)
    return device, created


# ------------------------------------------------------------------------------------------------------ data
def build_datasets(config: TrainConfig, tokenizer: SidecarTokenizer, seq_length: int, samples: list[Optional[int]]):
    """megatron-core's ``GPTDataset`` splits (train, valid, test; ``None`` where the split has weight 0)."""
    from megatron.core.datasets.blended_megatron_dataset_builder import BlendedMegatronDatasetBuilder
    from megatron.core.datasets.gpt_dataset import GPTDataset, GPTDatasetConfig

    prefixes = list(data_paths(tokenizer.sidecar_path, tokenizer.sidecar))
    _, sequences = document_lengths(prefixes)
    problems = check_split(config.split, sequences)
    if problems:
        suggestion = suggest_split(sequences, config.split)
        fix = f"use --split {suggestion}" if suggestion else "build more documents or use --split 100,0,0"
        raise ValueError(f"{problems[0].message(config.split)}; {fix}")
    # The shards of a --no-merge build, weighted by tokens (unweighted, megatron-core builds one epoch of each);
    # a weighted blend needs a sample count for every split (0: none).
    weights = blend_weights(prefixes)
    if weights is not None:
        samples = [n or 0 for n in samples]
    gpt_config = GPTDatasetConfig(
        random_seed=config.seed,
        sequence_length=seq_length,
        blend=(prefixes, weights),
        split=config.split,
        path_to_cache=str(Path(config.output_dir) / "index_cache"),
        tokenizer=tokenizer,
        reset_position_ids=config.reset_position_ids,
        reset_attention_mask=config.reset_attention_mask,
        eod_mask_loss=config.eod_mask_loss,
        create_attention_mask=config.reset_attention_mask,
    )
    return BlendedMegatronDatasetBuilder(GPTDataset, samples, lambda: True, gpt_config).build()


class _Slices(torch.utils.data.Sampler):
    """Batches of dataset indices for this data-parallel replica: ``batches[i]`` lists the indices of its i-th
    micro batch."""

    def __init__(self, batches: list[list[int]]) -> None:
        self.batches = batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def _micro_batches(first_step: int, steps: int, micro: int, dp: int, accum: int, rank: int) -> list[list[int]]:
    per_step = micro * dp * accum
    out = []
    for step in range(first_step, steps):
        for m in range(accum):
            start = step * per_step + m * micro * dp + rank * micro
            out.append(list(range(start, start + micro)))
    return out


def _loader(dataset, batches: list[list[int]], num_workers: int):
    return torch.utils.data.DataLoader(dataset, batch_sampler=_Slices(batches), num_workers=num_workers,
                                       pin_memory=torch.cuda.is_available())


def unigram_entropy(prefixes: list[str]) -> float:
    """Entropy (nats) of the token frequencies of the shards: the loss of the best model that ignores context."""
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    counts = np.zeros(0, np.int64)
    for prefix in prefixes:
        dtype = IndexedDataset(prefix).index.dtype
        tokens = np.memmap(f"{prefix}.bin", dtype=dtype, mode="r")  # the .bin is the token arrays back to back
        found = np.bincount(np.asarray(tokens, np.int64))
        if found.size > counts.size:
            counts = np.pad(counts, (0, found.size - counts.size))
        counts[: found.size] += found
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


# ------------------------------------------------------------------------------------------------ training
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


def _all_reduce(values: torch.Tensor, group) -> torch.Tensor:
    import torch.distributed as dist

    if dist.get_world_size(group) > 1:
        dist.all_reduce(values, group=group)
    return values


def _grad_norm_clip(params: list[torch.nn.Parameter], max_norm: float) -> float:
    """Clip by the global norm over every tensor-parallel shard (replicated parameters counted once)."""
    from megatron.core import parallel_state
    from megatron.core.tensor_parallel import param_is_not_tensor_parallel_duplicate

    grads = [p.grad for p in params if p.grad is not None]
    local = [g for p, g in zip(params, grads) if param_is_not_tensor_parallel_duplicate(p)]
    sq = torch.stack([g.float().pow(2).sum() for g in local]).sum() if local else torch.zeros((), device=grads[0].device)
    sq = _all_reduce(sq, parallel_state.get_tensor_model_parallel_group())
    norm = float(sq.sqrt())
    if max_norm > 0 and norm > max_norm:
        for g in grads:
            g.mul_(max_norm / (norm + 1e-6))
    return norm


def _count_parameters(model, device: torch.device) -> int:
    """Parameters of the whole model: tensor-parallel shards summed, replicated parameters counted once."""
    from megatron.core import parallel_state
    from megatron.core.tensor_parallel import param_is_not_tensor_parallel_duplicate

    local = sum(p.numel() for p in model.parameters() if param_is_not_tensor_parallel_duplicate(p))
    total = torch.tensor([local], dtype=torch.float64, device=device)
    return int(_all_reduce(total, parallel_state.get_tensor_model_parallel_group()).item())


def _peak_flops(config: TrainConfig, device: torch.device) -> float | None:
    if config.peak_tflops:
        return config.peak_tflops * 1e12
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, tflops in PEAK_TFLOPS.items():
        if key in name:
            return tflops * 1e12
    return None


def _checkpoint_dir(config: TrainConfig) -> Path:
    return Path(config.output_dir) / "checkpoints"


def _save(config: TrainConfig, shape: GPTShape, model, optimizer, scheduler, step: int, extra: dict[str, Any]) -> Path:
    import torch.distributed as dist
    from megatron.core import parallel_state

    folder = _checkpoint_dir(config) / f"step_{step:07d}"
    if parallel_state.get_data_parallel_rank() == 0:
        folder.mkdir(parents=True, exist_ok=True)
        tp = parallel_state.get_tensor_model_parallel_rank()
        state = {
            "model": _unwrap(model).state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "step": step,
            "config": dataclasses.asdict(config),
            "shape": dataclasses.asdict(shape),
            "tensor_parallel": config.tensor_parallel,
            "rng": {"torch": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state() if torch.cuda.is_available() else None},
            **extra,
        }
        path = folder / f"mp_rank_{tp:02d}.pt"
        tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
        torch.save(state, tmp)
        os.replace(tmp, path)
    dist.barrier()
    if dist.get_rank() == 0:  # every shard is in place: mark the checkpoint complete
        latest = _checkpoint_dir(config) / "latest"
        tmp = latest.with_name(f"latest.tmp-{os.getpid()}")
        tmp.write_text(folder.name + "\n")
        os.replace(tmp, latest)
    dist.barrier()
    return folder


def latest_checkpoint(output_dir: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint folder of a run, or ``None``."""
    latest = Path(output_dir) / "checkpoints" / "latest"
    if not latest.is_file():
        return None
    return latest.parent / latest.read_text().strip()


def load_checkpoint_file(folder: str | os.PathLike, tensor_rank: int = 0) -> dict[str, Any]:
    path = Path(folder) / f"mp_rank_{tensor_rank:02d}.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found (a checkpoint saved with another tensor-parallel size?)")
    return torch.load(path, map_location="cpu", weights_only=False)


def _unwrap(model):
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


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
    device, created = _init_parallel(config)
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
    parameters = _count_parameters(model, device)
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
    peak = _peak_flops(config, device)
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
            for batch in _loader(valid_ds, batches, 0):
                loss_sum, count = _batch_loss(model, batch, device, autocast)
                total += torch.stack([loss_sum.double(), count.double()])
        total = _all_reduce(total, dp_group)
        model.train()
        value = float(total[0] / total[1].clamp(min=1))
        if log_file is not None:
            log_file.write(json.dumps({"step": step, "val_loss": value}) + "\n")
            log_file.flush()
            log.info("step %d: validation loss %.4f (unigram entropy %.4f)", step, value, entropy)
        return value

    val_curve: list[dict[str, float]] = []
    model.train()
    loader = iter(_loader(train_ds, _micro_batches(start, config.max_steps, config.micro_batch_size, dp,
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
        grad_norm = _grad_norm_clip(params, config.grad_clip)
        optimizer.step()
        scheduler.step()
        window_loss += torch.stack(micro).sum(0)
        window_steps += 1
        done = step + 1
        if done % config.log_interval == 0 or done == config.max_steps:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            totals = _all_reduce(window_loss.clone(), dp_group)
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
            folder = _save(config, shape, model, optimizer, scheduler, done,
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
