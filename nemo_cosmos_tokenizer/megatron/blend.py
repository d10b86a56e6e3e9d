"""Blends of several ``--data-path`` prefixes (the chunk shards of a ``--no-merge`` build) in megatron-core 0.16:
token-count weights, and the ``--mid-level-dataset-surplus`` a weighted blend needs (see
:mod:`.settings` for why an unweighted blend does not deliver)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["DEFAULT_SURPLUS", "blend_oversamples", "blend_surplus", "blend_weights", "prefix_tokens"]

#: ``BlendedMegatronDatasetConfig.mid_level_dataset_surplus``'s default (Megatron-LM ``--mid-level-dataset-surplus``).
DEFAULT_SURPLUS = 0.005
#: Surpluses tried, in order, by :func:`blend_surplus`.
_SURPLUSES = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


def blend_weights(prefixes: Sequence[str]) -> list[int] | None:
    """``--data-path`` weights of ``prefixes``: their token counts (``None`` for a single prefix, which needs
    none). Token counts make each shard's share of the samples its share of the tokens, as in the merged file."""
    if len(prefixes) <= 1:
        return None
    return list(prefix_tokens(prefixes).values())


def prefix_tokens(prefixes: Sequence[str]) -> dict[str, int]:
    """Tokens of each prefix (the sum of its sequence lengths), read from its ``.idx`` with megatron-core."""
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    out = {}
    for prefix in prefixes:
        ds = IndexedDataset(prefix)
        out[prefix] = int(np.asarray(ds.sequence_lengths, np.int64).sum())
        del ds  # (the lengths were copied: the memory map may close)
    return out


def blend_oversamples(weights: Sequence[float], size: int, surplus: float = DEFAULT_SURPLUS) -> bool:
    """Whether megatron-core's weighted blend of ``size`` samples draws more samples from some prefix than it
    built for it, with megatron-core's own arithmetic: per prefix ``ceil(ceil(size * w) * (1 + surplus))`` built
    (``_get_size_per_split_per_dataset``), a blend of ``sum(ceil(size * w))`` samples drawn by
    ``helpers.build_blending_indices``. (A prefix's dataset can hold more than it was asked for, since it is made
    of whole epochs: ``False`` is a guarantee, ``True`` a risk of ``BlendedDataset``'s ``IndexError``.)"""
    from megatron.core.datasets import helpers
    from megatron.core.datasets.blended_megatron_dataset_builder import _get_size_per_split_per_dataset
    from megatron.core.datasets.utils import normalize

    if size <= 0 or len(weights) <= 1:
        return False
    normalized = normalize(list(weights))
    target = [row[0] for row in _get_size_per_split_per_dataset(normalized, [size])]
    built = [row[0] for row in _get_size_per_split_per_dataset(normalized, [size], surplus=surplus)]
    total = int(sum(target))
    index = np.zeros(total, dtype=np.int16)
    sample_index = np.zeros(total, dtype=np.int64)
    helpers.build_blending_indices(index, sample_index, np.asarray(normalized, np.float64), len(normalized), total,
                                   False)
    drawn = np.bincount(index, minlength=len(normalized))
    return bool(np.any(drawn > np.asarray(built)))


def blend_surplus(weights: Sequence[float], sizes: Sequence[int]) -> float | None:
    """The smallest ``--mid-level-dataset-surplus`` of a fixed ladder (0.005 first, megatron-core's default) with
    which no split of ``sizes`` (train, valid, test samples) oversamples a prefix (:func:`blend_oversamples`);
    ``None`` if even 10 does not."""
    for surplus in _SURPLUSES:
        if not any(blend_oversamples(weights, int(size), surplus) for size in sizes):
            return surplus
    return None
