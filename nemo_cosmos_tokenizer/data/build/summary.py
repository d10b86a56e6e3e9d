"""The one summary of a build run (:class:`RunSummary`, saved as ``<prefix>.summary.json``) and its file names."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["RunSummary", "counted", "data_paths_path", "summary_path", "weighted_data_paths_path"]


def summary_path(prefix: str | os.PathLike) -> Path:
    """``<prefix>.summary.json``: what the last run did (counts, time, throughput per rank and per GPU)."""
    return Path(f"{prefix}.summary.json")


def data_paths_path(prefix: str | os.PathLike) -> Path:
    """``<prefix>.data_paths.txt``: the chunk prefixes of an unmerged build, space separated, for ``--data-path``."""
    return Path(f"{prefix}.data_paths.txt")


def weighted_data_paths_path(prefix: str | os.PathLike) -> Path:
    """``<prefix>.data_paths_weighted.txt``: ``<tokens> <chunk prefix>`` per line for an unmerged build, what
    Megatron-LM reads with ``--data-args-path`` (or ``--data-path $(cat ...)``): a blend weighted by token counts
    (an unweighted one builds one epoch per shard; see :mod:`nemo_cosmos_tokenizer.megatron.settings`)."""
    return Path(f"{prefix}.data_paths_weighted.txt")


def counted(n: int | None, noun: str, plural: str | None = None) -> str:
    """``"1 document"``, ``"2 documents"``, ``"1 process"`` / ``"3 processes"`` (``plural`` when not ``noun + s``)."""
    return f"{n} {noun if n == 1 else (plural or noun + 's')}"


@dataclass(frozen=True)
class RunSummary:
    """What one (possibly distributed) run did; saved as ``<prefix>.summary.json``.

    Dataset counts (``samples`` ... ``failures_by_reason``) cover the whole dataset, including chunks completed by
    earlier runs; ``run_*`` counts, times and rates cover this run only. Rates are global (all ranks) over the
    processing time; ``per_gpu`` divides them by the number of processes (one per GPU).
    """

    status: str
    """``"complete"``, ``"chunks_failed"`` (some chunks raised; rerunning retries them) or ``"aborted"`` (a chunk
    raised an error every chunk would repeat, see :data:`~.run.FATAL_CHUNK_ERRORS`; no further chunk was started)."""
    output_prefix: str
    merged: bool
    data_path: list[str]
    """What to give Megatron's ``--data-path``: the merged prefix, or every non-empty chunk prefix in order."""
    vocab_size: int | None
    world_size: int
    num_nodes: int
    device_type: str
    backend: str | None
    chunks_total: int
    chunks_run: int
    chunks_skipped: int
    """Chunks already complete when this run started (resume)."""
    chunks_failed: list[int]
    samples: int | None
    written_samples: int | None
    failed_samples: int | None
    """Inputs skipped as unreadable, too short, ... (listed in ``<prefix>.failures.jsonl``)."""
    documents: int | None
    clips: int | None
    frames: int | None
    tokens: int | None
    failures_by_reason: dict[str, int] | None
    run_samples: int
    run_clips: int
    run_frames: int
    run_tokens: int
    seconds: float
    """Wall time of this run on rank 0 (loading, processing, merge)."""
    processing_seconds: float
    """From the start of chunk processing to the last rank finishing."""
    clips_per_second: float
    frames_per_second: float
    tokens_per_second: float
    per_gpu: dict[str, float]
    ranks: list[dict[str, Any]] = field(default_factory=list)
    chunk_errors: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def format(self) -> str:
        lines = []
        where = f"{self.output_prefix}.{{bin,idx}}" if self.merged else counted(len(self.data_path), "chunk shard")
        if self.status == "complete":
            reasons = ", ".join(f"{k}: {v}" for k, v in (self.failures_by_reason or {}).items()) or "none"
            lines.append(
                f"wrote {counted(self.documents, 'document')} ({counted(self.tokens, 'token')}, "
                f"{counted(self.clips, 'clip')}) from {self.written_samples} of {counted(self.samples, 'sample')} "
                f"to {where}; skipped {self.failed_samples} ({reasons}); vocab_size {self.vocab_size}"
            )
        else:
            shown = ", ".join(f"{e['chunk']} (rank {e['rank']}: {e['error']})" for e in self.chunk_errors[:5])
            more = " ..." if len(self.chunk_errors) > 5 else ""
            if self.status == "aborted":
                lines.append(
                    f"build stopped: chunk {shown}{more}. This error comes from the code or the configuration and "
                    "would repeat on every chunk, so no further chunk was started; fix its cause and rerun the same "
                    "command to resume (complete chunks are kept)"
                )
            else:
                lines.append(
                    f"{counted(len(self.chunks_failed), 'chunk')} failed: {shown}{more}; "
                    "rerun the same command to retry them (complete chunks are kept)"
                )
        procs = counted(self.world_size, f"{self.device_type} process", f"{self.device_type} processes")
        lines.append(
            f"this run: {self.chunks_run} of {counted(self.chunks_total, 'chunk')} ({self.chunks_skipped} already "
            f"complete) on {procs}, {counted(self.num_nodes, 'node')}, in {self.seconds:.1f}s: "
            f"{self.clips_per_second:.2f} clips/s, {self.frames_per_second:.1f} frames/s, "
            f"{self.tokens_per_second:.0f} tokens/s; per {'GPU' if self.device_type == 'cuda' else 'process'}: "
            f"{self.per_gpu['clips_per_second']:.2f} clips/s, {self.per_gpu['frames_per_second']:.1f} frames/s, "
            f"{self.per_gpu['tokens_per_second']:.0f} tokens/s"
        )
        lines.append(f"summary: {summary_path(self.output_prefix)}")
        if self.status == "complete":
            data_path = (
                self.output_prefix if self.merged else f"$(cat {weighted_data_paths_path(self.output_prefix)})"
            )
            # The exact flags (NullTokenizer vocabulary, eod, seq length, a split with no empty part) need the
            # merged files: the CLI prints them after the build (megatron.settings sits above this package).
            lines.append(
                f"Megatron: --data-path {data_path}; the exact training flags: nemo-cosmos-tokenizer inspect-dataset "
                f"{self.output_prefix} --print-megatron-args"
            )
        return "\n".join(lines)
