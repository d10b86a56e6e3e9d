"""The training settings (:class:`TrainConfig`, YAML via OmegaConf): plain data, importable without torch or
megatron-core, so ``train-gpt --help`` and argument errors answer at once."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Optional

__all__ = ["POSITION_EMBEDDINGS", "TrainConfig", "load_train_config"]

#: Position embeddings the GPT can use (``rope`` needs CUDA in megatron-core 0.16; CPU runs use learned ones).
POSITION_EMBEDDINGS = ("rope", "learned_absolute")


@dataclass
class TrainConfig:
    """Settings of one training run (fill from YAML with OmegaConf; see :func:`load_train_config`)."""

    data_prefix: Optional[str] = None
    """A built dataset: the builder's ``--output-prefix`` (``<prefix>.json`` names the shards)."""

    output_dir: Optional[str] = None
    """Checkpoints, ``train_log.jsonl``, ``summary.json`` and megatron-core's index cache go here."""

    split: str = "99,1,0"
    """Megatron's ``train,valid,test`` document split; refused if it leaves a split empty."""

    seq_length: Optional[int] = None
    """Tokens per sample (``None``: the smallest multiple of 64 that holds the longest document)."""

    num_layers: int = 4
    hidden_size: int = 256
    num_attention_heads: int = 4
    ffn_hidden_size: Optional[int] = None
    """``None``: 4 x hidden_size."""
    position_embedding: str = "rope"
    """``rope`` (CUDA only in megatron-core 0.16.1) or ``learned_absolute``."""

    tensor_parallel: int = 1
    """Tensor-parallel size; the rest of the world is data parallel."""

    micro_batch_size: int = 8
    gradient_accumulation: int = 1
    max_steps: int = 1000
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_steps: int = 50
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    dropout: float = 0.0

    reset_position_ids: bool = True
    reset_attention_mask: bool = True
    """Documents do not attend to each other inside a packed sample (masked SDPA instead of causal-only)."""
    eod_mask_loss: bool = True

    eval_interval: int = 100
    eval_batches: int = 8
    log_interval: int = 10
    save_interval: int = 500
    """Steps between checkpoints (one is always written at the end)."""
    resume: bool = True
    """Continue from ``output_dir/checkpoints/latest`` when it exists."""
    exit_after: Optional[int] = None
    """Stop after this many steps of this invocation, with a checkpoint (a job with a time limit; rerun to go on).
    The schedule still runs to ``max_steps``."""

    seed: int = 1234
    device: str = "auto"
    """``auto`` (the local rank's GPU when CUDA is available, else CPU), ``cuda``, ``cpu``."""
    num_workers: int = 2
    peak_tflops: Optional[float] = None
    """Peak dense bf16 TFLOP/s of one device for MFU (``None``: known GPUs by name; no MFU on CPU)."""

    def __post_init__(self) -> None:
        if self.position_embedding not in POSITION_EMBEDDINGS:
            raise ValueError(f"position_embedding must be one of {POSITION_EMBEDDINGS}, got {self.position_embedding!r}")
        for name in ("num_layers", "hidden_size", "num_attention_heads", "tensor_parallel", "micro_batch_size",
                     "gradient_accumulation", "max_steps", "eval_interval", "log_interval", "save_interval"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.exit_after is not None and self.exit_after < 1:
            raise ValueError(f"exit_after must be >= 1, got {self.exit_after}")
        if self.eval_batches < 0 or self.warmup_steps < 0:
            raise ValueError("eval_batches and warmup_steps must be >= 0")
        if self.seq_length is not None and self.seq_length < 2:
            raise ValueError(f"seq_length must be >= 2, got {self.seq_length}")

    def require_paths(self) -> None:
        missing = [f"--{n.replace('_', '-')}" for n in ("data_prefix", "output_dir") if not getattr(self, n)]
        if missing:
            raise ValueError(f"missing {', '.join(missing)} (or set them in the YAML config)")


def load_train_config(yaml_path: str | os.PathLike | None = None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Defaults, then the YAML file, then ``overrides`` (``None`` values ignored)."""
    from omegaconf import OmegaConf

    merged = OmegaConf.structured(TrainConfig)
    if yaml_path:
        merged = OmegaConf.merge(merged, OmegaConf.load(yaml_path))
    if overrides:
        merged = OmegaConf.merge(merged, {k: v for k, v in overrides.items() if v is not None})
    return TrainConfig(**OmegaConf.to_container(merged, resolve=True))
