"""The data side of a training run: megatron-core ``GPTDataset`` splits, the micro batches each data-parallel
replica reads at each step (so a resumed run continues with exactly the samples it would have seen), and the
unigram entropy of the shards (the loss of the best model that ignores context)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Optional

import numpy as np
import torch

from .blend import blend_weights
from .config import TrainConfig
from .settings import data_paths, document_lengths
from .splits import check_split, suggest_split
from .tokenizer import SidecarTokenizer


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


def micro_batches(first_step: int, steps: int, micro: int, dp: int, accum: int, rank: int) -> list[list[int]]:
    per_step = micro * dp * accum
    out = []
    for step in range(first_step, steps):
        for m in range(accum):
            start = step * per_step + m * micro * dp + rank * micro
            out.append(list(range(start, start + micro)))
    return out


def batch_loader(dataset, batches: list[list[int]], num_workers: int):
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
