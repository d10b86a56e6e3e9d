"""The one entry point of a dataset build, :func:`run_build`: one process, or every GPU of one or many nodes
(torchrun, SLURM or NeMo-Run). The library behind ``scripts/build_video_token_dataset.py`` and the recipes::

    summary = run_build(config)          # every rank calls it; rank 0 gets the RunSummary, the others None

Every process:

1. reads its rank from the launcher (:mod:`nemo_cosmos_tokenizer.distributed`), takes the GPU of its local rank
   and, when the world holds more than one process, joins a process group (NCCL on GPU, gloo on CPU);
2. prepares the build (:func:`.plan.prepare_build`: tokenizers, layout, the config hash checked against
   ``<prefix>.chunks/plan.json`` and the merged sidecar), rank 0 first (one download of missing weights into a
   shared cache, one writer of the plan), then the others. The ranks compare outcomes, so a changed manifest,
   tokenizer or layout is refused by every rank with the same error before any work, and ranks that would
   disagree on the hash (different weights on different nodes) are refused too;
3. rank 0 lists the chunks not yet complete (resume: complete chunks are skipped, incomplete ones redone),
   removes temporary files killed writers left for them, and broadcasts the list; rank ``r`` of ``W`` takes
   entries ``r, r + W, r + 2W, ...`` (**static round-robin**);
4. runs its chunks with :func:`.chunk.run_chunks`. A chunk that raises a resource error (out of memory, disk
   full: anything but :data:`FATAL_CHUNK_ERRORS`) is logged and reported, and the rank goes on with its next
   chunk; rerunning retries it. A chunk that raises one of :data:`FATAL_CHUNK_ERRORS` (a ``TypeError``, say)
   **stops the build**: no rank starts another chunk, and every rank raises :class:`BuildAbortedError`;
5. counts its work for the global progress bar (:mod:`.progress`);
6. after everyone is done, the per-rank statistics are gathered and rank 0 merges the chunk shards in manifest
   order (:func:`.merging.merge`), or with ``merge=False`` leaves them in place and writes
   ``<prefix>.data_paths.txt`` (the prefixes) and ``<prefix>.data_paths_weighted.txt`` (``<tokens> <prefix>``
   lines: Megatron's ``--data-args-path``). It writes the failures report
   (``<prefix>.failures.jsonl``) and the run summary (``<prefix>.summary.json``, :class:`~.summary.RunSummary`).

Determinism: a document's tokens depend only on its clip, the model, the dtype and the batch size (batches are
formed inside a chunk and always full), chunk boundaries only on the sample count, and the merge order only on
chunk ids. So the merged ``.bin/.idx`` bytes are the same for any number of ranks or nodes and any sequence of
interrupted and resumed runs (on the same kind of device: a GPU and a CPU give different float rounding, which the
recorded config hash does not cover beyond the dtype).

Why static round-robin and no shared work queue: the split cannot change the bytes, only the balance. Chunks
hold many samples, so each rank's share averages out per-video cost differences, and on resume the remaining
chunks are dealt round-robin again, so they are evenly spread whatever was done before. A queue (lock or
exclusive-create claim files on the shared file system) would balance slow stragglers better, but it depends on
locking semantics that vary across NFS/Lustre mounts and needs leases for claims left by killed workers. The
chunk size is the knob: smaller chunks balance better and lose less work on a kill; larger ones write fewer files.

Why some chunk errors stop the build: per-sample problems (unreadable, truncated, too short videos) never raise
out of a chunk, they are recorded as failures. What does raise is either the machine (CUDA out of memory, a full
disk, a lost mount: ``RuntimeError``/``OSError``, worth a retry once fixed, and other chunks may well succeed) or
the code and its configuration (a ``TypeError`` from a model that does not fit the chosen path, an
``AttributeError``, a missing import): those fail identically on every chunk, so going on would spend the whole
job's GPU time to record every chunk as failed and then advise a retry that cannot help.
"""

from __future__ import annotations

import dataclasses
import glob
import logging
import os
import pickle
import socket
import time
from pathlib import Path
from typing import Any

from ... import distributed as dist_utils
from .chunk import run_chunks
from .config import CHUNK_NAME, BuildConfig, ConfigMismatchError, IncompleteBuildError
from .merging import merge as merge_chunks
from .plan import BuildContext, prepare_build
from .progress import REPORT_INTERVAL_S, GlobalProgress
from .summary import RunSummary, data_paths_path, summary_path, weighted_data_paths_path
from ..writer import write_json_atomic

log = logging.getLogger(__name__)

__all__ = ["FATAL_CHUNK_ERRORS", "BuildAbortedError", "ChunkFailedError", "run_build"]

FATAL_CHUNK_ERRORS: tuple[type[BaseException], ...] = (
    TypeError, AttributeError, NameError, ImportError, NotImplementedError, AssertionError, LookupError, ValueError,
)
"""Exceptions out of a chunk that come from the code or the configuration, not from the machine or one chunk's
data, and so would repeat on every chunk: they stop the build (see the module docstring)."""


class ChunkFailedError(IncompleteBuildError):
    """Some chunks raised; the others are complete and kept. Rerunning the same command retries the failed ones."""


class BuildAbortedError(IncompleteBuildError):
    """A chunk raised an error every chunk would repeat (:data:`FATAL_CHUNK_ERRORS`); no further chunk was
    started. Complete chunks are kept: fix the cause and rerun the same command to resume."""


def _remove_stale_temporaries(config: BuildConfig, chunk_ids: list[int]) -> int:
    """Delete temporary files that killed writers left for chunks about to be redone; returns how many."""
    removed = 0
    for chunk_id in chunk_ids:
        stem = os.path.join(glob.escape(str(config.chunks_dir)), CHUNK_NAME.format(chunk_id))
        for path in glob.glob(f"{stem}.tmp-*") + glob.glob(f"{stem}.json.tmp-*"):
            try:
                os.remove(path)
                removed += 1
            except FileNotFoundError:
                pass
    return removed


def _shareable(err: Exception) -> Exception:
    """``err`` if it pickles (to be raised again by the other ranks), else a RuntimeError with its message."""
    try:
        pickle.loads(pickle.dumps(err))
        return err
    except Exception:  # noqa: BLE001
        return RuntimeError(f"{type(err).__name__}: {err}")


def _prepare_everywhere(config: BuildConfig, env: dist_utils.DistEnv, **tokenizers) -> BuildContext:
    """:func:`prepare_build` on rank 0 first (it downloads missing weights into the cache once and records the plan),
    then on the other ranks. If a rank fails, every rank raises its exception (so a refused configuration gives
    the same :class:`ConfigMismatchError` everywhere); ranks whose config hashes differ are refused."""
    context = None
    hashes: dict[int, str] = {}
    for first in (True, False):
        status: tuple = ("wait", None, socket.gethostname())
        if (env.rank == 0) == first:
            try:
                context = prepare_build(config, **tokenizers)
                status = ("ok", context.config_hash, socket.gethostname())
            except Exception as err:  # noqa: BLE001 - shared with the other ranks, then raised by all
                status = ("error", _shareable(err), socket.gethostname())
        statuses = dist_utils.all_gather_object(status)
        for rank, (state, value, host) in enumerate(statuses):
            if state == "error":
                if rank != env.rank:
                    log.error("rank %d on %s could not prepare the build", rank, host)
                raise value
            if state == "ok":
                hashes[rank] = value
        if not env.is_distributed:
            break
    if len(set(hashes.values())) > 1:
        by_hash: dict[str, list[int]] = {}
        for rank, value in sorted(hashes.items()):
            by_hash.setdefault(value[:12], []).append(rank)
        raise ConfigMismatchError(
            f"the ranks compute different config hashes ({by_hash}): every process must see the same manifest, "
            "tokenizer weights, text tokenizer and settings (and the same dtype)"
        )
    return context


def run_build(
    config: BuildConfig,
    *,
    merge: bool = True,
    video_tokenizer=None,
    text_tokenizer=None,
    env: dist_utils.DistEnv | None = None,
    report_interval: float = REPORT_INTERVAL_S,
) -> RunSummary | None:
    """Build (or resume) the dataset of ``config`` with every process of the job; see the module docstring.

    Call it from every rank (a single process is a world of one). ``merge=False`` leaves the chunk shards in place
    and lists them in ``<prefix>.data_paths.txt`` and, weighted by tokens, ``<prefix>.data_paths_weighted.txt``. Returns the :class:`RunSummary` on rank 0 (also written to
    ``<prefix>.summary.json``) and ``None`` elsewhere. Raises :class:`~.config.ConfigMismatchError` on every rank
    if the output prefix holds work of another configuration, and :class:`ChunkFailedError` on rank 0 if chunks
    raised (after all other chunks are done).

    ``video_tokenizer`` / ``text_tokenizer``: already loaded tokenizers (tests, notebooks) instead of loading the
    ones ``config`` names. ``env``: where this process sits (default: read from the launcher's environment).
    """
    started = time.perf_counter()
    env = env or dist_utils.get_dist_env()
    device = dist_utils.select_device(config.device, env)
    created = dist_utils.init_distributed(env, device)
    try:
        config = dataclasses.replace(config, device=str(device))
        context = _prepare_everywhere(config, env, video_tokenizer=video_tokenizer, text_tokenizer=text_tokenizer)
        backend = None
        if dist_utils.is_initialized():
            import torch.distributed as dist

            backend = str(dist.get_backend())

        pending = None
        if env.is_main:
            pending = context.pending_chunks()
            removed = _remove_stale_temporaries(config, pending)
            if removed:
                log.info("removed %d temporary files left by interrupted writers", removed)
            log.info(
                "%d samples in %d chunks, %d to run (%d already complete) on %d processes -> %s; tokenizer %s, %s; "
                "layout %s, vocab %d",
                context.num_samples, context.num_chunks, len(pending), context.num_chunks - len(pending),
                env.world_size, config.output_prefix, context.video_tokenizer.name,
                str(context.video_tokenizer.dtype).removeprefix("torch."), context.layout.preset,
                context.layout.vocab_size,
            )
        pending = dist_utils.broadcast_object(pending)
        mine = pending[env.rank :: env.world_size]

        progress = GlobalProgress(
            env, sum(context.chunk_length(c) for c in pending), len(pending),
            show=bool(config.progress), interval=report_interval,
        )
        stats = {
            "rank": env.rank, "host": socket.gethostname(), "device": str(device), "chunks": mine,
            "chunks_run": 0, "samples": 0, "failed_samples": 0, "clips": 0, "frames": 0, "tokens": 0,
            "busy_seconds": 0.0,
        }
        errors: list[dict[str, Any]] = []
        fatal: BaseException | None = None  # this rank's error that stopped the build, chained to what it raises
        for chunk_id in mine:
            if progress.aborted:  # this rank or another met an error every chunk would repeat
                break
            try:
                (record,) = run_chunks(context, [chunk_id], progress=progress)
            except FATAL_CHUNK_ERRORS as err:
                log.exception("rank %d: chunk %d raised %s, an error of the code or the configuration that every "
                              "chunk would repeat: stopping the build", env.rank, chunk_id, type(err).__name__)
                errors.append({"chunk": chunk_id, "rank": env.rank, "host": stats["host"], "fatal": True,
                               "error": f"{type(err).__name__}: {err}"})
                progress.abort()
                fatal = err
                break
            except Exception as err:  # noqa: BLE001 - reported with the chunk id; the other chunks go on
                log.exception("rank %d: chunk %d failed", env.rank, chunk_id)
                errors.append({"chunk": chunk_id, "rank": env.rank, "host": stats["host"],
                               "error": f"{type(err).__name__}: {err}"})
                continue
            progress.add_chunk(record)
            stats["chunks_run"] += 1
            stats["samples"] += record["num_samples"]
            stats["failed_samples"] += record["num_failed_samples"]
            stats["clips"] += record["num_clips"]
            stats["frames"] += record["num_frames"]
            stats["tokens"] += record["num_tokens"]
            stats["busy_seconds"] += record["seconds"]
        totals = progress.finish()  # returns when every rank is done (not on an exception: that ends the job)
        processing_seconds = progress.elapsed
        gathered = dist_utils.all_gather_object((stats, errors))
        if not env.is_main:
            if any(e.get("fatal") for _, errs in gathered for e in errs):
                raise BuildAbortedError(
                    "the build was stopped by an error every chunk would repeat (rank 0 reports it)") from fatal
            return None
        ranks = [s for s, _ in gathered]
        chunk_errors = sorted((e for _, errs in gathered for e in errs), key=lambda e: e["chunk"])
        return _finish(config, context, env, device, backend, merge, pending, ranks, chunk_errors, totals,
                       processing_seconds, started, fatal)
    finally:
        if created:
            dist_utils.destroy_distributed()


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    Path(tmp).write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _shard_tokens(prefixes: list[str]) -> list[int]:
    """Tokens of each shard, from its ``.idx`` (megatron-core's reader: the writer needs megatron-core anyway)."""
    import numpy as np
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    tokens = []
    for prefix in prefixes:
        dataset = IndexedDataset(prefix)
        tokens.append(int(np.asarray(dataset.sequence_lengths, np.int64).sum()))  # copied before the map closes
        del dataset
    return tokens


def _finish(config, context, env, device, backend, merge, pending, ranks, chunk_errors, totals,
            processing_seconds, started, fatal) -> RunSummary:
    """Rank 0: merge (or list the shards), write the summary, return it; raise if chunks failed."""
    aborted = any(e.get("fatal") for e in chunk_errors)
    sidecar = None
    if not chunk_errors:
        sidecar = merge_chunks(config, concatenate=merge)
    prefix = str(config.output_prefix)
    data_path: list[str] = []
    merged = False
    if sidecar is not None:
        listed = sidecar["megatron"]["data_path"]  # the merged prefix's name, or the chunk prefixes (--no-merge)
        merged = isinstance(listed, str)  # (a finished merge is kept, even when this run says --no-merge)
        if merged:
            data_path = [prefix]
        else:
            folder = os.path.dirname(os.path.abspath(prefix))
            data_path = [os.path.join(folder, p) for p in listed]
            _write_text_atomic(data_paths_path(prefix), " ".join(data_path) + "\n")
            # The blend Megatron needs: weighted by tokens (the chunk records' counts; a sidecar written before
            # the weights were recorded has none, then the shards' .idx files say it).
            weights = sidecar["megatron"].get("data_path_weights") or _shard_tokens(data_path)
            _write_text_atomic(weighted_data_paths_path(prefix),
                               "".join(f"{w} {p}\n" for w, p in zip(weights, data_path)))
    counts = sidecar["counts"] if sidecar else {}
    run_counts = {k: sum(r[k] for r in ranks) for k in ("samples", "clips", "frames", "tokens")}
    seconds = time.perf_counter() - started
    rate = {k: run_counts[k] / max(processing_seconds, 1e-9) for k in ("clips", "frames", "tokens")}
    for r in ranks:
        busy = max(r["busy_seconds"], 1e-9)
        r["clips_per_busy_second"] = r["clips"] / busy
        r["tokens_per_busy_second"] = r["tokens"] / busy
    summary = RunSummary(
        status="aborted" if aborted else ("chunks_failed" if chunk_errors else "complete"),
        output_prefix=prefix,
        merged=merged,
        data_path=data_path,
        vocab_size=sidecar["vocab_size"] if sidecar else context.layout.vocab_size,
        world_size=env.world_size,
        num_nodes=env.num_nodes,
        device_type=device.type,
        backend=backend,
        chunks_total=context.num_chunks,
        chunks_run=sum(r["chunks_run"] for r in ranks),
        chunks_skipped=context.num_chunks - len(pending),
        chunks_failed=[e["chunk"] for e in chunk_errors],
        samples=counts.get("samples"),
        written_samples=counts.get("written_samples"),
        failed_samples=counts.get("failed_samples"),
        documents=counts.get("documents"),
        clips=counts.get("clips"),
        frames=counts.get("frames"),
        tokens=counts.get("tokens"),
        failures_by_reason=counts.get("failures_by_reason"),
        run_samples=run_counts["samples"],
        run_clips=run_counts["clips"],
        run_frames=run_counts["frames"],
        run_tokens=run_counts["tokens"],
        seconds=seconds,
        processing_seconds=processing_seconds,
        clips_per_second=rate["clips"],
        frames_per_second=rate["frames"],
        tokens_per_second=rate["tokens"],
        per_gpu={f"{k}_per_second": v / env.world_size for k, v in rate.items()},
        ranks=ranks,
        chunk_errors=chunk_errors,
    )
    if totals.get("samples", 0) != run_counts["samples"] and not chunk_errors:  # pragma: no cover - a bug if so
        log.warning("progress counted %d samples, chunk records %d", totals.get("samples", 0), run_counts["samples"])
    write_json_atomic(summary_path(prefix), summary.to_dict())
    log.info("run summary written to %s", summary_path(prefix))
    if aborted:
        raise BuildAbortedError(summary.format().splitlines()[0] + f" (details in {summary_path(prefix)})") from fatal
    if chunk_errors:
        raise ChunkFailedError(summary.format().splitlines()[0] + f" (details in {summary_path(prefix)})")
    return summary
