"""Checkpoints of a training run: ``<output_dir>/checkpoints/step_<n>/mp_rank_<tp>.pt`` (model, optimizer,
scheduler, step, RNG, config and model shape), written by the first data-parallel replica under a temporary name
then renamed; ``checkpoints/latest`` names the newest complete one (written after every shard is in place)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import torch

from .config import TrainConfig
from .model import GPTShape


def checkpoint_dir(config: TrainConfig) -> Path:
    return Path(config.output_dir) / "checkpoints"


def save_checkpoint(config: TrainConfig, shape: GPTShape, model, optimizer, scheduler, step: int, extra: dict[str, Any]) -> Path:
    import torch.distributed as dist
    from megatron.core import parallel_state

    folder = checkpoint_dir(config) / f"step_{step:07d}"
    if parallel_state.get_data_parallel_rank() == 0:
        folder.mkdir(parents=True, exist_ok=True)
        tp = parallel_state.get_tensor_model_parallel_rank()
        state = {
            "model": unwrap_model(model).state_dict(),
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
        latest = checkpoint_dir(config) / "latest"
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


def unwrap_model(model):
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model
