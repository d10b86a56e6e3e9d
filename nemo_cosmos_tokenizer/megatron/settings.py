"""The flags a built dataset needs in Megatron, computed from its sidecar and its merged (or chunk) shards.

Two facts of megatron-core 0.16.1 drive this module:

* ``GPTDataset`` finds document boundaries with the tokenizer's ``eod``. Stock Megatron-LM's only tokenizer that
  takes a bare vocabulary size, ``NullTokenizer(N)``, reports ``eod = N`` and ``vocab_size = N + 1``; so a layout
  whose eod is its last id (the ``generic`` preset from layout version 2) is read right with
  ``--tokenizer-type NullTokenizer --vocab-size <vocab_size - 1>``. Any other layout (``emu3``, generic version 1)
  needs :class:`~nemo_cosmos_tokenizer.megatron.SidecarTokenizer` (megatron-core, NeMo 2, ``scripts/train_gpt.py``).
* ``BlendedMegatronDatasetBuilder`` cuts each ``--data-path`` prefix into train/valid/test by *sequences* (one per
  document here): split ``i`` covers ``[round(a_i * N), round(b_i * N))`` of the ``N`` sequences, ``(a_i, b_i)``
  from ``convert_split_vector_to_split_matrix(parse_and_normalize_split(split))``, Python's ``round`` (half to
  even). :func:`check_split` repeats that arithmetic with megatron-core's own functions.
* What a split part without a document does depends on the sample count the builder gives its ``GPTDataset``.
  Megatron-LM and NeMo always give one (an ``int``, 0 included) to a single prefix and to each prefix of a
  *weighted* blend: ``GPTDataset._get_num_epochs`` then adds epochs of 0 tokens until it reaches
  ``num_samples * seq_length + 1`` and never returns (a hang, not an error). An *unweighted* blend of several
  prefixes builds each part for one epoch only (``num_samples=None``): a part holding fewer than
  ``seq_length + 1`` tokens gives 0 samples and ``BlendedDataset`` fails with a bare ``AssertionError``
  (``assert all(map(lambda _: _ > 0, weights))``); and the blend itself is capped at the sum of those one-epoch
  lengths, whatever number of samples training asks for.
* So the chunk shards of a ``--no-merge`` build are given *weighted*, by their token counts
  (:meth:`MegatronSettings.data_path_args`): each shard's ``GPTDataset`` is asked for
  ``ceil(ceil(size * w_i) * (1 + surplus))`` samples (``surplus`` = ``--mid-level-dataset-surplus``, default
  0.005) and repeats its documents over as many epochs as that needs, and the blend holds
  ``sum_i ceil(size * w_i) >= size`` samples, the shards in proportion to their tokens, as in the merged dataset.
  With many shards and a small ``size`` those ceilings add up to more than the 0.5 % margin and ``BlendedDataset``
  raises ``IndexError`` ("oversamples"); :func:`blend_surplus` finds the surplus that megatron-core's own
  blending arithmetic needs (:mod:`.blend`).
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..data.build.summary import weighted_data_paths_path
from ..data.layout import PRESETS, TokenLayout
from ..data.writer import read_json, sidecar_path
from .blend import DEFAULT_SURPLUS, blend_surplus, prefix_tokens
from .splits import SplitProblem, check_split, suggest_split

#: Megatron-LM's default ``--make-vocab-size-divisible-by``.
VOCAB_DIVISIBLE_BY = 128


def _padded(vocab_size: int, tensor_parallel: int, divisible_by: int = VOCAB_DIVISIBLE_BY) -> int:
    """Megatron-LM's ``_vocab_size_with_padding``: up to a multiple of ``divisible_by * tensor_parallel``."""
    multiple = divisible_by * tensor_parallel
    return int(math.ceil(vocab_size / multiple) * multiple)


def _round_up(value: int, multiple: int) -> int:
    return int(math.ceil(value / multiple) * multiple)


@dataclass(frozen=True)
class MegatronSettings:
    """What Megatron needs to train on one built dataset (:func:`megatron_settings`)."""

    sidecar: str
    """Path of the sidecar the settings come from."""
    data_path: tuple[str, ...]
    """``--data-path`` prefixes (the merged prefix, or the chunk shards of a ``--no-merge`` build), absolute."""
    vocab_size: int
    """Every id is below it (the layout's vocabulary)."""
    eod_id: int | None
    """End-of-document id every document ends with (``None``: the layout writes no eod)."""
    pad_id: int | None
    preset: str
    layout_version: int
    null_tokenizer_vocab_size: int | None
    """``--vocab-size`` for Megatron-LM's ``NullTokenizer`` (``vocab_size - 1``) when the layout's eod is its last
    id; ``None`` when no stock Megatron-LM tokenizer reports this layout's eod (use :class:`SidecarTokenizer`)."""
    padded_vocab_size: int
    """The embedding rows Megatron-LM allocates (``vocab_size`` up to a multiple of 128 x tensor parallel)."""
    tensor_parallel: int
    documents: int
    sequences_per_prefix: dict[str, int]
    tokens_per_prefix: dict[str, int]
    """Tokens of each ``--data-path`` prefix: the blend weights of a ``--no-merge`` build."""
    tokens: int
    document_length: dict[str, float]
    """``min``, ``p50``, ``p90``, ``max``, ``mean`` tokens per document."""
    seq_length: int
    """Suggested ``--seq-length``: the smallest multiple of 64 that holds the longest document."""
    split: str
    """The split asked about."""
    split_problems: tuple[SplitProblem, ...]
    suggested_split: str | None
    """``split`` if it is fine, else one that leaves no split empty (``None``: too few documents for any)."""
    samples: tuple[int, ...] | None = None
    """Samples training asks for per split (train, valid, test), if given: sizes the blend's surplus."""
    surplus: float | None = DEFAULT_SURPLUS
    """``--mid-level-dataset-surplus`` that the blend of several prefixes needs for :attr:`samples`
    (:func:`blend_surplus`; the default when no sample counts were given; ``None``: none found)."""

    @property
    def split_ok(self) -> bool:
        return not self.split_problems

    @property
    def blended(self) -> bool:
        """Several ``--data-path`` prefixes (the chunk shards of a ``--no-merge`` build)."""
        return len(self.data_path) > 1

    def data_path_args(self) -> list[str]:
        """The ``--data-path`` values: the prefix, or ``weight prefix`` pairs with the shards' token counts as
        weights. (Without weights megatron-core builds one epoch per shard and caps the blend there, and a shard
        part under ``seq_length + 1`` tokens fails with an ``AssertionError``: see the module docstring.)"""
        if not self.blended:
            return list(self.data_path)
        return [item for p in self.data_path for item in (str(self.tokens_per_prefix[p]), p)]

    def warnings(self) -> list[str]:
        """Human-readable problems (an empty split; a blend that needs a larger surplus)."""
        out = [p.message(self.split) for p in self.split_problems]
        if self.split_problems:
            merge = (" Or merge the shards: rerun the build command without --no-merge (complete chunks are kept "
                     "and only joined), then one prefix needs a split only for its document count.")
            if self.suggested_split:
                out.append(f"use --split {self.suggested_split}" + ("." + merge if self.blended else ""))
            elif self.blended:
                out.append(
                    f"no --split leaves a document in every split of each of the {len(self.data_path)} shards (the "
                    "smallest has " f"{min(self.sequences_per_prefix.values())}): merge them (rerun the build command "
                    "without --no-merge: complete chunks are kept and only joined), or train with --split 100,0,0"
                )
            else:
                out.append(f"the dataset has too few documents ({self.documents}) for a {self.split!r} split: build "
                           "more, or train with --split 100,0,0 (no validation)")
        if self.blended and self.surplus is None:
            out.append(f"no --mid-level-dataset-surplus up to 10 keeps megatron-core's blend of {len(self.data_path)} "
                       f"shards from oversampling a shard for {self.samples} samples: merge the shards")
        return out

    def megatron_lm_args(self) -> list[str] | None:
        """Flags for stock Megatron-LM ``pretrain_gpt.py`` (``None`` when its tokenizers cannot describe the
        layout); uses :attr:`suggested_split` when the requested split would hang."""
        if self.null_tokenizer_vocab_size is None:
            return None
        split = self.split if self.split_ok else (self.suggested_split or "100,0,0")
        args = ["--data-path", *self.data_path_args(), "--split", split,
                "--tokenizer-type", "NullTokenizer", "--vocab-size", str(self.null_tokenizer_vocab_size),
                "--seq-length", str(self.seq_length), "--max-position-embeddings", str(self.seq_length)]
        if self.eod_id is not None:
            args += ["--reset-position-ids", "--reset-attention-mask", "--eod-mask-loss"]
        if self.blended and self.surplus is not None and self.surplus > DEFAULT_SURPLUS:
            args += ["--mid-level-dataset-surplus", f"{self.surplus:g}"]
        return args

    def format(self) -> str:
        """The report ``inspect-dataset --print-megatron-args`` prints."""
        lengths = self.document_length
        lines = [
            f"dataset: {self.sidecar}",
            f"  {self.documents} documents, {self.tokens} tokens; tokens per document: min {lengths['min']:.0f}, "
            f"median {lengths['p50']:.0f}, p90 {lengths['p90']:.0f}, max {lengths['max']:.0f}",
            f"  layout {self.preset} (version {self.layout_version}): vocab_size {self.vocab_size}, eod {self.eod_id}, "
            f"pad {self.pad_id}; Megatron pads the embedding to {self.padded_vocab_size} rows "
            f"(tensor parallel {self.tensor_parallel})",
            f"  --seq-length {self.seq_length} holds the longest document "
            f"({_round_up(int(lengths['p50']), 64)} holds the median one)",
        ]
        args = self.megatron_lm_args()
        if args is not None:
            if self.eod_id is None:  # cosmos_ar: raw ids, no eod for NullTokenizer's eod (= N) to match
                why = (f"NullTokenizer(N) has vocab_size N + 1; this layout writes no eod, every id is below "
                       f"{self.vocab_size}, so no document boundary is inside a document")
            else:
                why = (f"NullTokenizer(N) has eod = N and vocab_size = N + 1, this layout's eod is {self.eod_id} = "
                       "vocab_size - 1")
            lines += ["", f"Megatron-LM (pretrain_gpt.py; {why}):", "  " + " ".join(args)]
        if self.blended:
            weighted = weighted_data_paths_path(_quote_prefix(self.sidecar))
            lines += [
                "",
                f"--no-merge build: {len(self.data_path)} chunk shards, weighted by their token counts (the same list: "
                f"--data-args-path {weighted}). Without weights megatron-core builds one epoch per shard, caps the "
                "training samples there and fails (AssertionError) on a shard part under --seq-length + 1 tokens.",
            ]
            if self.samples is None:
                lines.append(
                    f"  A split asked for fewer than about {200 * len(self.data_path)} samples (200 x shards) can make "
                    "megatron-core's blend oversample a shard (IndexError): --samples TRAIN,VALID,TEST gives the "
                    "--mid-level-dataset-surplus it needs; or merge the shards (rerun the build without --no-merge).")
            elif self.surplus is not None:
                lines.append(f"  for {','.join(map(str, self.samples))} samples: --mid-level-dataset-surplus "
                             f"{self.surplus:g} (megatron-core's blending arithmetic, checked)")
        else:
            lines += [
                "",
                f"Megatron-LM: no stock --tokenizer-type reports eod {self.eod_id} with a vocabulary of "
                f"{self.vocab_size} (NullTokenizer puts eod last); train with megatron-core / NeMo 2 and the adapter "
                "below, or rebuild with --layout generic.",
            ]
        lines += [
            "",
            "megatron-core / NeMo 2 (GPTDatasetConfig(tokenizer=...), llm.PreTrainingDataModule(tokenizer=...)):",
            f"  from nemo_cosmos_tokenizer.megatron import SidecarTokenizer; "
            f"tokenizer = SidecarTokenizer({self.data_path[0] if len(self.data_path) == 1 else self.sidecar!r})",
            "this package's trainer:",
            f"  python scripts/train_gpt.py --data-prefix {_quote_prefix(self.sidecar)} --seq-length {self.seq_length} "
            f"--split {self.split if self.split_ok else (self.suggested_split or '100,0,0')}",
        ]
        if self.preset == "cosmos_ar":
            lines += ["", _nvidia_general_note(self.documents)]
        warnings = self.warnings()
        if warnings:
            lines += ["", *(f"WARNING: {w}" for w in warnings)]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["split_problems"] = [p.message(self.split) for p in self.split_problems]
        data["megatron_lm_args"] = self.megatron_lm_args()
        return data


#: NVIDIA's general.py trains with ``split_string`` "98,1,1" by default.
_NVIDIA_SPLIT = "98,1,1"


def _nvidia_general_note(documents: int) -> str:
    """What NVIDIA's ``general.py`` (NeMo's ``PreTrainingDataModule``, default split 98,1,1) makes of ``documents``
    videos in one folder, and why several folders are no substitute (see the README's cosmos_ar section)."""
    one = {"folder": documents}
    if not check_split(_NVIDIA_SPLIT, one):
        verdict = f"{documents} videos in one folder leave no split empty: fine"
    else:
        fix = suggest_split(one, _NVIDIA_SPLIT)
        verdict = (f"{documents} videos in one folder leave its valid or test split empty and megatron-core hangs in "
                   f"_get_num_epochs: pass " + (f"--split_string {fix}" if fix else "more videos"))
    return (f"NVIDIA's general.py (--split_string {_NVIDIA_SPLIT} by default): {verdict}. It blends several folders "
            "without weights: one epoch of each, and with 12,800-id documents every folder needs 2 videos in each "
            "of its valid and test parts (176 per folder for 98,1,1), else AssertionError; give it one folder "
            "holding the merged <prefix>.bin/.idx as .bin/.idx (README).")


def _quote_prefix(sidecar: str) -> str:
    return sidecar[: -len(".json")] if sidecar.endswith(".json") else sidecar


def resolve_sidecar(prefix_or_sidecar: str | os.PathLike) -> tuple[str, dict[str, Any]]:
    """``(path, content)`` of the sidecar of a dataset prefix (or of the ``.json`` path itself)."""
    path = str(prefix_or_sidecar)
    if not path.endswith(".json"):
        path = sidecar_path(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{path} not found: give the output prefix of a finished build (the one with <prefix>.json next to "
            "<prefix>.bin/.idx)"
        )
    return path, read_json(path)


def data_paths(sidecar_file: str, sidecar: Mapping[str, Any]) -> tuple[str, ...]:
    """Absolute ``--data-path`` prefixes of a sidecar: the merged prefix, or the chunk shards of a no-merge build."""
    folder = Path(sidecar_file).resolve().parent
    recorded = sidecar.get("megatron", {}).get("data_path")
    if recorded is None:
        return (str(Path(sidecar_file).resolve())[: -len(".json")],)
    if isinstance(recorded, str):
        recorded = [recorded]
    return tuple(str(folder / p) for p in recorded)


def layout_of(sidecar: Mapping[str, Any]) -> TokenLayout | None:
    """The sidecar's :class:`TokenLayout`, or ``None`` for a format without one (e.g. raw FSQ index documents)."""
    data = sidecar.get("layout")
    if not isinstance(data, Mapping) or data.get("preset") not in PRESETS:
        return None  # another layout family with its own fields: only the sidecar's top-level ids apply
    return TokenLayout.from_dict(data)


def document_lengths(prefixes: Sequence[str]) -> tuple[np.ndarray, dict[str, int]]:
    """Tokens per document over ``prefixes`` (int64) and sequences per prefix, read with megatron-core."""
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    lengths, sequences = [], {}
    for prefix in prefixes:
        ds = IndexedDataset(prefix)
        seq = np.asarray(ds.sequence_lengths, np.int64)
        bounds = np.asarray(ds.document_indices, np.int64)
        per_doc = np.add.reduceat(seq, bounds[:-1]) if seq.size else np.zeros(0, np.int64)
        lengths.append(per_doc[np.diff(bounds) > 0] if seq.size else per_doc)
        sequences[prefix] = int(seq.shape[0])
    return (np.concatenate(lengths) if lengths else np.zeros(0, np.int64)), sequences


def megatron_settings(
    prefix_or_sidecar: str | os.PathLike, *, split: str = "99,1,0", tensor_parallel: int = 1,
    samples: Sequence[int] | None = None,
) -> MegatronSettings:
    """The Megatron flags and checks for the dataset at ``prefix_or_sidecar`` (see the module docstring).
    ``samples``: what training asks for per split (train, valid, test; Megatron-LM: ``train_iters x
    global_batch``, ``eval_iters x (train_iters // eval_interval + 1) x global_batch``, ``eval_iters x
    global_batch``), to size the surplus a blend of several shards needs."""
    if tensor_parallel < 1:
        raise ValueError(f"tensor_parallel must be >= 1, got {tensor_parallel}")
    if samples is not None and (not 1 <= len(samples) <= 3 or min(samples) < 0):
        raise ValueError(f"samples must be 1 to 3 counts >= 0 (train, valid, test), got {list(samples)}")
    path, sidecar = resolve_sidecar(prefix_or_sidecar)
    layout = layout_of(sidecar)
    vocab_size = int(layout.vocab_size if layout else sidecar["vocab_size"])
    eod = layout.eod_id if layout else sidecar.get("eod_id")
    pad = layout.pad_id if layout else sidecar.get("pad_id")
    prefixes = data_paths(path, sidecar)
    lengths, sequences = document_lengths(prefixes)
    if lengths.size == 0:
        raise ValueError(f"{path}: the dataset holds no document")
    stats = {
        "min": float(lengths.min()), "p50": float(np.percentile(lengths, 50)), "p90": float(np.percentile(lengths, 90)),
        "max": float(lengths.max()), "mean": float(lengths.mean()),
    }
    # NullTokenizer(N) says eod = N, vocab_size = N + 1; a layout without eod (fixed-length documents) only needs
    # the vocabulary, which NullTokenizer(vocab_size) covers with one unused id.
    if eod is None:
        null_size = vocab_size
    elif int(eod) == vocab_size - 1:
        null_size = vocab_size - 1
    else:
        null_size = None
    problems = tuple(check_split(split, sequences))
    tokens = prefix_tokens(prefixes)
    surplus: float | None = DEFAULT_SURPLUS
    if samples is not None and len(prefixes) > 1:
        surplus = blend_surplus(list(tokens.values()), list(samples))
    return MegatronSettings(
        sidecar=path,
        data_path=prefixes,
        vocab_size=vocab_size,
        eod_id=None if eod is None else int(eod),
        pad_id=None if pad is None else int(pad),
        preset=layout.preset if layout else str(sidecar.get("layout", {}).get("preset", "unknown")),
        layout_version=layout.version if layout else int(sidecar.get("layout", {}).get("version", 0)),
        null_tokenizer_vocab_size=null_size,
        padded_vocab_size=_padded(vocab_size if null_size is None else null_size + 1, tensor_parallel),
        tensor_parallel=tensor_parallel,
        documents=int(lengths.size),
        sequences_per_prefix=sequences,
        tokens_per_prefix=tokens,
        tokens=int(lengths.sum()),
        document_length=stats,
        seq_length=_round_up(int(stats["max"]), 64),
        split=split,
        split_problems=problems,
        suggested_split=suggest_split(sequences, split),
        samples=None if samples is None else tuple(int(n) for n in samples),
        surplus=surplus,
    )
