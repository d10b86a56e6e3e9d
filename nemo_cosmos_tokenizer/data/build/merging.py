"""Merging: the chunk shards, in chunk order, into ``<prefix>.{bin,idx}``, plus the sidecar and the failures file.

Needs only the files under ``<prefix>.chunks/`` (no model). The sidecar ``<prefix>.json`` holds only what the
build determines (counts, layout, tokenizers, frame sampling, hashes): two builds of the same inputs and settings
write the same sidecar bytes, so builds can be compared by checksum. Times live in the run summary
(``<prefix>.summary.json``, :mod:`.run`) and the chunk records.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from ..cosmos_ar import COSMOS_AR, CosmosARLayout, nvidia_differences
from ..layout import TokenLayout
from ..writer import merge_shards, read_json, shard_files, sidecar_path, write_json_atomic
from .config import BuildConfig, IncompleteBuildError
from .plan import DATASET_FORMAT, FORMAT_VERSION, chunk_record, sha256_json

__all__ = ["merge"]

#: Keys of a chunk record that depend on when or how fast it ran, left out of the sidecar's chunk digest.
_TIMING_KEYS = ("seconds",)


def merge(config: BuildConfig, *, concatenate: bool = True) -> dict[str, Any]:
    """Join every chunk shard, in order, into ``<prefix>.{bin,idx}``; write the sidecar and the failures file.

    Needs only the files under ``<prefix>.chunks/`` (no model). Returns the sidecar content. Raises
    :class:`IncompleteBuildError` naming the chunks still missing. With ``concatenate=False`` (``--no-merge``) the
    chunk shards stay as they are: no ``<prefix>.{bin,idx}`` is written and the sidecar's ``megatron.data_path``
    lists the non-empty chunk prefixes in order (relative to the sidecar's folder) for Megatron's ``--data-path``.
    """
    if not config.plan_path.is_file():
        raise IncompleteBuildError(f"{config.plan_path} not found: run the build (prepare_build, run_chunks) first")
    plan = read_json(config.plan_path)
    config_hash = plan["config_hash"]
    records, missing = [], []
    for chunk_id in range(plan["num_chunks"]):
        record = chunk_record(config, chunk_id, config_hash)
        if record is None:
            missing.append(chunk_id)
        records.append(record)
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
        raise IncompleteBuildError(f"{len(missing)} of {plan['num_chunks']} chunks are not complete: {shown}")

    # A merge of exactly these chunk records is already in place (a rerun of a finished build): keep it.
    prefix = config.output_prefix
    chunks_digest = _chunks_digest(records)
    if Path(sidecar_path(prefix)).is_file():
        done = read_json(sidecar_path(prefix))
        bin_path, idx_path = shard_files(prefix)
        if (
            done.get("config_hash") == config_hash
            and done.get("chunks", {}).get("digest") == chunks_digest
            and os.path.isfile(bin_path)
            and os.path.getsize(bin_path) == done.get("bin_bytes")
            and os.path.isfile(idx_path)
            and os.path.getsize(idx_path) == done.get("idx_bytes")
        ):
            if config.nvidia_folders:
                write_nvidia_folders(config, [c for c, r in enumerate(records) if r["num_documents"]], len(records))
            return done

    failures = [f for r in records for f in r["failures"]]
    counts = {
        "samples": sum(r["num_samples"] for r in records),
        "written_samples": sum(r["num_written_samples"] for r in records),
        "failed_samples": len(failures),
        "documents": sum(r["num_documents"] for r in records),
        "clips": sum(r["num_clips"] for r in records),
        "frames": sum(r["num_frames"] for r in records),
        "tokens": sum(r["num_tokens"] for r in records),
        "failures_by_reason": dict(sorted(Counter(f["reason"] for f in failures).items())),
    }
    _write_failures(config.failures_path, failures)
    if counts["documents"] == 0:
        raise IncompleteBuildError(
            f"no sample could be tokenized ({counts['failed_samples']} failed); see {config.failures_path}"
        )
    cosmos_ar = plan["layout"].get("preset") == COSMOS_AR
    layout = (CosmosARLayout if cosmos_ar else TokenLayout).from_dict(plan["layout"])
    written = [c for c, r in enumerate(records) if r["num_documents"]]
    shards = [config.chunk_prefix(c) for c in written]
    if concatenate:
        merge_shards(shards, prefix, layout.dtype)
    if config.nvidia_folders:
        write_nvidia_folders(config, written, len(records))
    folder = os.path.dirname(os.path.abspath(prefix))
    bin_path, idx_path = shard_files(prefix)
    sidecar = {
        "format": DATASET_FORMAT,
        "version": FORMAT_VERSION,
        "bin_bytes": os.path.getsize(bin_path) if concatenate else None,
        "idx_bytes": os.path.getsize(idx_path) if concatenate else None,
        "vocab_size": layout.vocab_size,
        "dtype": np.dtype(layout.dtype).name,
        "eod_id": layout.eod_id,
        "pad_id": layout.pad_id,
        **({"document_length": layout.document_length, "nvidia": _nvidia_record(config, plan)} if cosmos_ar else {}),
        "counts": counts,
        "failures_file": config.failures_path.name,
        **{k: plan[k] for k in ("layout", "text_tokenizer", "video_tokenizer", "frames", "encoding", "manifest")},
        "config_hash": config_hash,
        "fingerprint": plan["fingerprint"],
        "chunks": {
            "directory": config.chunks_dir.name,
            "chunk_size": plan["chunk_size"],
            "count": plan["num_chunks"],
            "digest": chunks_digest,
        },
        "megatron": {
            "data_path": (
                os.path.basename(prefix) if concatenate else [os.path.relpath(os.path.abspath(p), folder) for p in shards]
            ),
            # Blend weights of the listed shards: their token counts (an unweighted blend of several prefixes
            # builds one epoch each in megatron-core; see nemo_cosmos_tokenizer.megatron.settings).
            **({} if concatenate else {"data_path_weights": [records[c]["num_tokens"] for c in written]}),
            "vocab_size": layout.vocab_size,
            # Megatron-LM's NullTokenizer(N) has eod = N and vocab_size = N + 1: it describes a layout whose eod is
            # its last id (None: use nemo_cosmos_tokenizer.megatron.SidecarTokenizer).
            "null_tokenizer_vocab_size": _null_tokenizer_vocab_size(layout),
            "note": (
                f"every document is exactly {layout.document_length} ids (raw FSQ indices), no eod: NVIDIA's "
                "Cosmos-1.0-Autoregressive post-training reads it" if cosmos_ar else
                "every document ends with eod_id; Megatron pads --vocab-size up to a multiple of 128 x TP"
            ),
        },
    }
    write_json_atomic(sidecar_path(prefix), sidecar)
    return sidecar


def _nvidia_record(config: BuildConfig, plan: dict[str, Any]) -> dict[str, Any]:
    """How this cosmos_ar build relates to NVIDIA's ``prepare_dataset.py``: the settings that differ (the dtype and
    batch size the encoder really ran with, from the plan), and the folders NVIDIA's ``general.py`` reads."""
    differences = nvidia_differences({
        "dtype": plan["encoding"]["dtype"], "batch_size": plan["encoding"]["batch_size"],
        "chunk_size": plan["chunk_size"], "nvidia_folders": config.nvidia_folders, "fast": config.fast,
    })
    return {"exact": not differences, "differences": differences,
            "folders": os.path.basename(str(config.output_prefix)) + "/" if config.nvidia_folders else None}


def _null_tokenizer_vocab_size(layout: Any) -> int | None:
    eod = getattr(layout, "eod_id", None)
    if eod is None:  # fixed-length documents (cosmos_ar): NullTokenizer(vocab_size) covers every id
        return int(layout.vocab_size)
    return int(layout.vocab_size) - 1 if int(eod) == int(layout.vocab_size) - 1 else None


def nvidia_folders_dir(config: BuildConfig) -> Path:
    """``<prefix>/``: the folder of NVIDIA's layout (``--data_path`` of their ``general.py``)."""
    return Path(str(config.output_prefix))


def write_nvidia_folders(config: BuildConfig, chunk_ids: list[int], num_chunks: int) -> list[Path]:
    """Lay the shards of ``chunk_ids`` out as NVIDIA's ``prepare_dataset.py`` writes its chunks: ``<prefix>/<k>/.bin``
    and ``.idx`` (an empty file stem; ``k`` the chunk id, as ``str(k)``) or, when the build has a single chunk,
    ``<prefix>/.bin`` and ``.idx``. (Their ``general.py`` reads ``<prefix>/.bin`` if it exists, else every
    subfolder holding one, in sorted order.) Chunks without a document get no folder (NVIDIA writes an empty one,
    which megatron-core cannot split). Hard links to the chunk shards (no extra space), copies where the file
    system refuses links; each file is put in place atomically; ``.bin``/``.idx`` files of an earlier layout under
    ``<prefix>/`` (other chunk folders, zero-padded names) are removed so that ``general.py`` reads these only.
    Returns the folders."""
    import shutil

    root = nvidia_folders_dir(config)
    folders = [root] if num_chunks == 1 else [root / str(c) for c in chunk_ids]
    sources = {folder: config.chunk_prefix(c) for folder, c in zip(folders, chunk_ids)}
    _remove_stale_folders(root, set(folders))
    for folder, prefix in sources.items():
        folder.mkdir(parents=True, exist_ok=True)
        for source, name in zip(shard_files(prefix), (".bin", ".idx")):
            target = folder / name
            if target.is_file() and os.path.samefile(source, target):
                continue
            tmp = folder / f"{name}.tmp-{os.getpid()}"
            try:
                os.link(source, tmp)
            except OSError:
                shutil.copyfile(source, tmp)
            os.replace(tmp, target)
    return list(sources)


def _remove_stale_folders(root: Path, keep: set[Path]) -> None:
    """Remove the ``.bin``/``.idx`` pairs under ``root`` (itself and its digit-named subfolders) that are not in
    ``keep``, and such subfolders left empty: an earlier layout of the same build (another chunk count)."""
    if not root.is_dir():
        return
    candidates = [root] + [p for p in root.iterdir() if p.is_dir() and p.name.isdigit()]
    for folder in candidates:
        if folder in keep:
            continue
        for name in (".bin", ".idx"):
            (folder / name).unlink(missing_ok=True)
        if folder != root and not any(folder.iterdir()):
            folder.rmdir()


def _chunks_digest(records: list[dict[str, Any]]) -> str:
    """Hash of the chunk records (without their timings): tells a merge of exactly these chunks, and stays the
    same for two builds of the same inputs and settings (a redone chunk has the same content by construction)."""
    return sha256_json([{k: v for k, v in r.items() if k not in _TIMING_KEYS} for r in records])


def _write_failures(path: Path, failures: list[dict[str, Any]]) -> None:
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        for failure in failures:
            f.write(json.dumps(failure, ensure_ascii=False, sort_keys=True) + "\n")
    os.replace(tmp, path)


