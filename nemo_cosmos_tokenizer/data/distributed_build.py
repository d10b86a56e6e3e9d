"""Run the chunked builder (:mod:`.builder`) on every GPU of one or many nodes: torchrun, SLURM or NeMo-Run.

The library behind ``scripts/build_video_token_dataset.py`` (one process or ``torchrun --nproc-per-node N``)::

    summary = run_build(config)          # every rank calls it; rank 0 gets the RunSummary, the others None

Every process:

1. reads its rank from the launcher (:mod:`nemo_cosmos_tokenizer.distributed`), takes the GPU of its local rank
   and, when the world holds more than one process, joins a process group (NCCL on GPU, gloo on CPU);
2. prepares the build (:func:`.builder.prepare_build`: tokenizers, layout, the config hash checked against
   ``<prefix>.chunks/plan.json`` and the merged sidecar), rank 0 first (one download of missing weights into a
   shared cache, one writer of the plan), then the others. The ranks compare outcomes, so a changed manifest,
   tokenizer or layout is refused by every rank with the same error before any work, and ranks that would
   disagree on the hash (different weights on different nodes) are refused too;
3. rank 0 lists the chunks not yet complete (resume: complete chunks are skipped, incomplete ones redone),
   removes temporary files killed writers left for them, and broadcasts the list; rank ``r`` of ``W`` takes
   entries ``r, r + W, r + 2W, ...`` (**static round-robin**);
4. runs its chunks with :func:`.builder.run_chunks`: each chunk is its own shard, written under a temporary name
   and renamed when complete, its record (``chunk-NNNNNN.json``, with the per-sample failures) written last. A
   chunk that raises (out of memory, disk full) is logged and reported, and the rank goes on with its next chunk;
5. counts samples, clips, frames and tokens; a reporter thread all-reduces them over a gloo group every few
   seconds, so rank 0's progress bar shows **global** clips/s, frames/s and tokens/s (measured, not rank 0's rate
   times the world size). Samples count as they are read, clips/frames/tokens when their chunk completes;
6. after everyone is done, the per-rank statistics are gathered and rank 0 merges the chunk shards in manifest
   order with megatron-core's ``add_index`` (:func:`.builder.merge`), or with ``merge=False`` leaves them in place
   and writes ``<prefix>.data_paths.txt`` for Megatron's ``--data-path``. It writes the failures report
   (``<prefix>.failures.jsonl``, merged from every chunk's record) and the run summary (``<prefix>.summary.json``).

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
"""

from __future__ import annotations

import dataclasses
import glob
import logging
import os
import pickle
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import distributed as dist_utils
from . import builder
from .builder import CHUNK_NAME, BuildConfig, ConfigMismatchError, IncompleteBuildError
from .writer import write_json_atomic

log = logging.getLogger(__name__)

__all__ = ["ChunkFailedError", "RunSummary", "run_build", "summary_path", "data_paths_path"]

REPORT_INTERVAL_S = 5.0
"""Seconds between two all-reduces of the progress counts."""

LOG_INTERVAL_S = 60.0
"""Seconds between two progress log lines on rank 0 when the bar is off."""


class ChunkFailedError(IncompleteBuildError):
    """Some chunks raised; the others are complete and kept. Rerunning the same command retries the failed ones."""


def summary_path(prefix: str | os.PathLike) -> Path:
    """``<prefix>.summary.json``: what the last run did (counts, time, throughput per rank and per GPU)."""
    return Path(f"{prefix}.summary.json")


def data_paths_path(prefix: str | os.PathLike) -> Path:
    """``<prefix>.data_paths.txt``: the chunk prefixes of an unmerged build, space separated, for ``--data-path``."""
    return Path(f"{prefix}.data_paths.txt")


# ------------------------------------------------------------------------------------------------ progress
_FIELDS = ("samples", "clips", "frames", "tokens", "chunks", "done")


class _GlobalProgress:
    """Counts this rank's work; a thread all-reduces the counts periodically; rank 0 shows them.

    The builder calls :meth:`update` once per sample read (main thread); :meth:`add_chunk` adds a finished chunk's
    clips, frames and tokens. Every rank's reporter runs the same sequence of all-reduces on its own gloo group
    (so it never interleaves with collectives of the main thread) until the reduced ``done`` count equals the
    world size: :meth:`finish` therefore returns on every rank at the same reduction, after all ranks are done.
    """

    def __init__(self, env: dist_utils.DistEnv, total_samples: int, total_chunks: int, *, show: bool,
                 interval: float = REPORT_INTERVAL_S) -> None:
        self.env = env
        self.interval = interval
        self.total_chunks = total_chunks
        self.local = dict.fromkeys(_FIELDS, 0)
        self.totals = dict.fromkeys(_FIELDS, 0)
        self._group = None
        if dist_utils.is_initialized():
            import torch.distributed as dist

            self._group = dist.new_group(backend="gloo", timeout=dist_utils.collective_timeout())  # collective: all ranks
        self._bar = None
        if env.is_main and show and total_samples:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total_samples, unit="sample", desc="tokenizing", smoothing=0.1)
        self._show_logs = env.is_main and not show
        self._last_log = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="nct-progress", daemon=True)
        self.started = time.perf_counter()
        self.elapsed = 0.0
        self._thread.start()

    # called from the builder (main thread)
    def update(self, n: int = 1) -> None:
        self.local["samples"] += n

    def add_chunk(self, record: dict[str, Any]) -> None:
        self.local["clips"] += record["num_clips"]
        self.local["frames"] += record["num_frames"]
        self.local["tokens"] += record["num_tokens"]
        self.local["chunks"] += 1

    def finish(self) -> dict[str, int]:
        """Mark this rank done and wait until every rank is; returns the global counts."""
        self.local["done"] = 1
        self._stop.set()
        self._thread.join()
        if self._bar is not None:
            self._bar.close()
        return dict(self.totals)

    def _reduce(self) -> dict[str, int]:
        snapshot = [float(self.local[k]) for k in _FIELDS]
        if self._group is None:
            return {k: int(v) for k, v in zip(_FIELDS, snapshot)}
        import torch
        import torch.distributed as dist

        tensor = torch.tensor(snapshot, dtype=torch.float64)
        dist.all_reduce(tensor, group=self._group)
        return {k: int(v) for k, v in zip(_FIELDS, tensor.tolist())}

    def _loop(self) -> None:
        while True:
            self._stop.wait(self.interval)
            try:
                self.totals = self._reduce()
            except Exception as err:  # a peer died: the main thread's next collective will say so
                log.warning("progress reporting stopped: %s", err)
                return
            self.elapsed = time.perf_counter() - self.started
            self._show(final=self.totals["done"] >= self.env.world_size)
            if self.totals["done"] >= self.env.world_size:
                return

    def rates(self) -> dict[str, float]:
        seconds = max(self.elapsed, 1e-9)
        return {k: self.totals[k] / seconds for k in ("samples", "clips", "frames", "tokens")}

    def _show(self, final: bool) -> None:
        rates = self.rates()
        text = (
            f"{rates['clips']:.2f} clips/s, {rates['frames']:.1f} frames/s, {rates['tokens']:.0f} tokens/s "
            f"(all {self.env.world_size} ranks), chunks {self.totals['chunks']}/{self.total_chunks}"
        )
        if self._bar is not None:
            self._bar.n = min(self.totals["samples"], self._bar.total)
            self._bar.set_postfix_str(text, refresh=False)
            self._bar.refresh()
        elif self._show_logs and (final or time.monotonic() - self._last_log >= LOG_INTERVAL_S):
            self._last_log = time.monotonic()
            log.info("progress: %d samples, %s", self.totals["samples"], text)


# ------------------------------------------------------------------------------------------------- summary
@dataclass(frozen=True)
class RunSummary:
    """What one (possibly distributed) run did; saved as ``<prefix>.summary.json``.

    Dataset counts (``samples`` ... ``failures_by_reason``) cover the whole dataset, including chunks completed by
    earlier runs; ``run_*`` counts, times and rates cover this run only. Rates are global (all ranks) over the
    processing time; ``per_gpu`` divides them by the number of processes (one per GPU).
    """

    status: str
    """``"complete"`` or ``"chunks_failed"``."""
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
        where = f"{self.output_prefix}.{{bin,idx}}" if self.merged else f"{len(self.data_path)} chunk shards"
        if self.status == "complete":
            reasons = ", ".join(f"{k}: {v}" for k, v in (self.failures_by_reason or {}).items()) or "none"
            lines.append(
                f"wrote {self.documents} documents ({self.tokens} tokens, {self.clips} clips) from "
                f"{self.written_samples} of {self.samples} samples to {where}; skipped {self.failed_samples} "
                f"({reasons}); vocab_size {self.vocab_size}"
            )
        else:
            shown = ", ".join(f"{e['chunk']} (rank {e['rank']}: {e['error']})" for e in self.chunk_errors[:5])
            lines.append(
                f"{len(self.chunks_failed)} chunks failed: {shown}{' ...' if len(self.chunk_errors) > 5 else ''}; "
                "rerun the same command to retry them (complete chunks are kept)"
            )
        procs = f"{self.world_size} {self.device_type} process{'es' if self.world_size > 1 else ''}"
        lines.append(
            f"this run: {self.chunks_run} of {self.chunks_total} chunks ({self.chunks_skipped} already complete) on "
            f"{procs}, {self.num_nodes} node{'s' if self.num_nodes > 1 else ''}, in {self.seconds:.1f}s: "
            f"{self.clips_per_second:.2f} clips/s, {self.frames_per_second:.1f} frames/s, "
            f"{self.tokens_per_second:.0f} tokens/s; per {'GPU' if self.device_type == 'cuda' else 'process'}: "
            f"{self.per_gpu['clips_per_second']:.2f} clips/s, {self.per_gpu['frames_per_second']:.1f} frames/s, "
            f"{self.per_gpu['tokens_per_second']:.0f} tokens/s"
        )
        lines.append(f"summary: {summary_path(self.output_prefix)}")
        if self.status == "complete":
            data_path = (
                self.output_prefix if self.merged else f"$(cat {data_paths_path(self.output_prefix)})"
            )
            lines.append(
                f"Megatron: --data-path {data_path} --vocab-size {self.vocab_size} (see {self.output_prefix}.json)"
            )
        return "\n".join(lines)


# ------------------------------------------------------------------------------------------------- the run
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


def _prepare_everywhere(config: BuildConfig, env: dist_utils.DistEnv, **tokenizers) -> builder.BuildContext:
    """:func:`prepare_build` on rank 0 first (it downloads missing weights into the cache once and records the plan),
    then on the other ranks. If a rank fails, every rank raises its exception (so a refused configuration gives
    the same :class:`ConfigMismatchError` everywhere); ranks whose config hashes differ are refused."""
    context = None
    hashes: dict[int, str] = {}
    for first in (True, False):
        status: tuple = ("wait", None, socket.gethostname())
        if (env.rank == 0) == first:
            try:
                context = builder.prepare_build(config, **tokenizers)
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
    and lists them in ``<prefix>.data_paths.txt``. Returns the :class:`RunSummary` on rank 0 (also written to
    ``<prefix>.summary.json``) and ``None`` elsewhere. Raises :class:`~.builder.ConfigMismatchError` on every rank
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

        progress = _GlobalProgress(
            env, sum(context.chunk_length(c) for c in pending), len(pending),
            show=bool(config.progress), interval=report_interval,
        )
        stats = {
            "rank": env.rank, "host": socket.gethostname(), "device": str(device), "chunks": mine,
            "chunks_run": 0, "samples": 0, "failed_samples": 0, "clips": 0, "frames": 0, "tokens": 0,
            "busy_seconds": 0.0,
        }
        errors: list[dict[str, Any]] = []
        for chunk_id in mine:
            try:
                (record,) = builder.run_chunks(context, [chunk_id], progress=progress)
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
            return None
        ranks = [s for s, _ in gathered]
        chunk_errors = sorted((e for _, errs in gathered for e in errs), key=lambda e: e["chunk"])
        return _finish(config, context, env, device, backend, merge, pending, ranks, chunk_errors, totals,
                       processing_seconds, started)
    finally:
        if created:
            dist_utils.destroy_distributed()


def _finish(config, context, env, device, backend, merge, pending, ranks, chunk_errors, totals,
            processing_seconds, started) -> RunSummary:
    """Rank 0: merge (or list the shards), write the summary, return it; raise if chunks failed."""
    sidecar = None
    if not chunk_errors:
        sidecar = builder.merge(config, concatenate=merge)
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
            tmp = f"{data_paths_path(prefix)}.tmp-{os.getpid()}"
            Path(tmp).write_text(" ".join(data_path) + "\n", encoding="utf-8")
            os.replace(tmp, data_paths_path(prefix))
    counts = sidecar["counts"] if sidecar else {}
    run_counts = {k: sum(r[k] for r in ranks) for k in ("samples", "clips", "frames", "tokens")}
    seconds = time.perf_counter() - started
    rate = {k: run_counts[k] / max(processing_seconds, 1e-9) for k in ("clips", "frames", "tokens")}
    for r in ranks:
        busy = max(r["busy_seconds"], 1e-9)
        r["clips_per_busy_second"] = r["clips"] / busy
        r["tokens_per_busy_second"] = r["tokens"] / busy
    summary = RunSummary(
        status="complete" if not chunk_errors else "chunks_failed",
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
    if chunk_errors:
        raise ChunkFailedError(summary.format().splitlines()[0] + f" (details in {summary_path(prefix)})")
    return summary
