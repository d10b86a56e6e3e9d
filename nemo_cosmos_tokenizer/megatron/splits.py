"""Train/valid/test splits as megatron-core 0.16.1 cuts them per ``--data-path`` prefix, and splits that leave no
part empty (see :mod:`.settings` for what an empty part does in megatron-core)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

SPLIT_NAMES = ("train", "valid", "test")
#: Validation shares tried (in this order) when a requested split leaves a split empty.
_VALID_PERCENTS = (1, 2, 5, 10, 20, 25, 34, 50)


@dataclass(frozen=True)
class SplitProblem:
    """One split that would hold no document."""

    prefix: str
    split: str
    """``train``, ``valid`` or ``test``."""
    documents: int
    """Sequences (documents) of ``prefix``."""

    def message(self, requested: str) -> str:
        return (
            f"split {requested!r} leaves the {self.split} split of {self.prefix} empty ({self.documents} documents): "
            "megatron-core 0.16's GPTDataset for it, asked for a sample count (always, by Megatron-LM and NeMo), "
            "loops forever in _get_num_epochs (0 tokens per epoch): a hang, no error"
        )


def split_ranges(split: str, num_sequences: int) -> list[tuple[int, int] | None]:
    """The ``[begin, end)`` sequence range of each split megatron-core builds for one prefix (``None``: the split
    has weight 0 and no dataset is built). Same arithmetic as ``BlendedMegatronDatasetBuilder``."""
    from megatron.core.datasets.blended_megatron_dataset_config import (
        convert_split_vector_to_split_matrix,
        parse_and_normalize_split,
    )

    matrix = convert_split_vector_to_split_matrix(parse_and_normalize_split(split))
    ranges: list[tuple[int, int] | None] = []
    for bookend in matrix:
        if bookend is None:
            ranges.append(None)
        else:
            ranges.append((int(round(bookend[0] * float(num_sequences))), int(round(bookend[1] * float(num_sequences)))))
    return ranges


def check_split(split: str, sequences_per_prefix: Mapping[str, int]) -> list[SplitProblem]:
    """Every split of every prefix that ``split`` leaves empty (empty list: Megatron will not hang)."""
    problems = []
    for prefix, count in sequences_per_prefix.items():
        for name, bounds in zip(SPLIT_NAMES, split_ranges(split, count)):
            if bounds is not None and bounds[1] <= bounds[0]:
                problems.append(SplitProblem(prefix, name, int(count)))
    return problems


def suggest_split(sequences_per_prefix: Mapping[str, int], requested: str = "99,1,0") -> str | None:
    """``requested`` if it leaves no split empty, else the closest ``train,valid,test`` that does (``None`` when a
    prefix has fewer documents than the splits with weight need, one each).

    With one prefix the answer is in document counts (``"5,1,0"`` for 6 documents: exactly one valid document);
    with several, percentages tried from 1 % validation upwards, with a test split only if one was requested.
    """
    if not check_split(requested, sequences_per_prefix):
        return requested
    wants_test = split_ranges(requested, 1_000_000)[2] is not None
    counts = list(sequences_per_prefix.values())
    if len(counts) == 1:
        n = counts[0]
        for k in range(1, n):
            test = k if wants_test else 0
            candidate = f"{n - k - test},{k},{test}"
            if n - k - test >= 1 and not check_split(candidate, sequences_per_prefix):
                return candidate
        return None
    for percent in _VALID_PERCENTS:
        test = percent if wants_test else 0
        candidate = f"{100 - percent - test},{percent},{test}"
        if not check_split(candidate, sequences_per_prefix):
            return candidate
    return None
