"""One chunk of a build: read its samples, encode their clips, write its shard and its record.

A chunk is a fixed run of ``chunk_size`` manifest samples. :func:`run_chunks` turns each into its own shard
``<prefix>.chunks/chunk-<i:06d>.{bin,idx}`` (written under a temporary name, renamed when complete) and then its
record ``chunk-<i:06d>.json`` (sample ids, counts, failures, config hash), written last: the record marks the chunk
complete, so a killed writer leaves a chunk that the next run redoes. Reading, encoding and writing overlap: the
``nvdec`` reader reads ahead across chunk boundaries, and a chunk's shard is written by a thread of its own while the
next chunk is read and encoded, on a CUDA stream of its own (:func:`consumer_stream`).

The bytes do not depend on who processed which chunk, on restarts, or on the chunk size: batches are formed inside
a chunk, group clips of equal shape in manifest order, and always hold ``batch_size`` clips (a short last batch is
padded by repeating its last clip), so a clip's tokens depend only on its pixels, the model, the dtype and the
batch size. Per-sample problems (unreadable or too short videos) are recorded as failures and the chunk goes on.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import torch

from ...interrupts import raise_if_interrupted
from ..cosmos_ar import encode_unit_range
from ..manifest import Sample
from ...media.clips import ClipSpec
from ..video import SampleClips, read_sample
from ..video_tokenizer import VideoTokenizer
from ..writer import ShardWriter, shard_files, sidecar_path, write_json_atomic
from .plan import DATASET_FORMAT, FORMAT_VERSION, BuildContext, chunk_record

log = logging.getLogger(__name__)

__all__ = ["run_chunks"]

#: Which CUDA stream a chunk's encoding runs on: ``side`` (a stream of its own) or ``current`` (the caller's, usually
#: the legacy default stream). Work queued on the legacy default stream is waited for by every operation any library
#: issues on it (an implicit synchronization), so the encoder keeps off it. Run 12 measured no difference in build
#: rate (BENCHMARKS.md): a new NVDEC decoder's first decode waits for queued work on any stream, and the reader's
#: CPU probe was what held the build back.
CONSUMER_STREAM = "side"
_side_streams: dict = {}


def consumer_stream(device: torch.device):
    """A context that runs a chunk's GPU work on the stream :data:`CONSUMER_STREAM` names (nothing off CUDA)."""
    if device.type != "cuda" or CONSUMER_STREAM == "current":
        return contextlib.nullcontext()
    if CONSUMER_STREAM != "side":
        raise ValueError(f"CONSUMER_STREAM must be 'side' or 'current', got {CONSUMER_STREAM!r}")
    index = device.index if device.index is not None else torch.cuda.current_device()
    if index not in _side_streams:
        _side_streams[index] = torch.cuda.Stream(torch.device("cuda", index))
    stream = _side_streams[index]
    stream.wait_stream(torch.cuda.current_stream(stream.device))  # after whatever the caller queued before
    return torch.cuda.stream(stream)


def _clips_as_tensors(item: SampleClips) -> SampleClips:
    """DataLoader ``collate_fn`` (runs in the worker): clips as torch tensors, which the DataLoader hands over
    through shared memory; numpy arrays would be pickled through a pipe (~47 MB per 17-frame 720p clip), which
    serialises the main process on reading them."""
    item.clips = [torch.from_numpy(np.ascontiguousarray(clip)) for clip in item.clips]
    return item


class _SampleReader:
    """``Dataset`` of one chunk's samples -> :class:`SampleClips` (picklable for DataLoader workers)."""

    def __init__(self, samples: Sequence[Sample], spec: ClipSpec, backend: str, read: Callable = read_sample,
                 storage=None) -> None:
        self.samples = samples
        self.spec = spec
        self.backend = backend
        self.read = read
        self.storage = storage  # how tar shards / remote objects are reached (a picklable sources.Storage)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> SampleClips:
        return self.read(self.samples[i], self.spec, self.backend, self.storage)


def _iter_samples(
    samples: Sequence[Sample], spec: ClipSpec, backend: str, num_workers: int, device: torch.device,
    read: Callable = read_sample, storage=None, nvdec_decodes: int | None = None, nvdec_resize: str = "auto",
    nvdec_probe_threads: int | None = None, nvdec_processes: int = 0,
) -> Iterator[SampleClips]:
    if backend == "nvdec" and nvdec_processes:  # reader processes; clips arrive as CUDA tensors of this process
        from ..nvdec import DEFAULT_THREADS
        from ..nvdec_processes import NvdecProcessReader

        return NvdecProcessReader(spec, device, nvdec_processes, num_workers or DEFAULT_THREADS, storage=storage,
                                  max_decodes=nvdec_decodes, resize=nvdec_resize,
                                  probe_threads=nvdec_probe_threads).iter_samples(samples)
    if backend == "nvdec":  # threads of this process; clips arrive as CUDA tensors
        from ..nvdec import DEFAULT_THREADS, NvdecReader

        return NvdecReader(spec, device, num_workers or DEFAULT_THREADS, storage=storage,
                           max_decodes=nvdec_decodes, resize=nvdec_resize,
                           probe_threads=nvdec_probe_threads).iter_samples(samples)
    reader = _SampleReader(samples, spec, backend, read, storage)
    if num_workers == 0:
        return (reader[i] for i in range(len(reader)))
    from torch.utils.data import DataLoader

    return iter(DataLoader(reader, batch_size=None, shuffle=False, num_workers=num_workers,
                           collate_fn=_clips_as_tensors, prefetch_factor=4))


class _Encoder:
    """Groups clips of equal shape into full batches, in arrival order, and encodes them.

    Windows mode never waits for the GPU: each batch's indices stay on the device (``pending_grids``) and are read
    back once, in :meth:`flush` at the end of the chunk, so the host reads, stacks and copies the next batch while
    the GPU encodes this one. Grids are numpy arrays in :attr:`grids` after :meth:`flush`.
    """

    def __init__(self, tokenizer: VideoTokenizer, batch_size: int, temporal_mode: str = "windows") -> None:
        self.tokenizer = tokenizer
        self.whole = temporal_mode == "whole"
        self.batch_size = 1 if self.whole else batch_size  # whole: one streamed clip per call
        self.pending: dict[tuple[int, ...], list[tuple[Any, torch.Tensor]]] = {}
        self.pending_grids: list[tuple[list[Any], torch.Tensor]] = []  # (keys, indices on the device) per batch
        self.grids: dict[Any, np.ndarray] = {}
        self.encoded_clips = 0
        self.encoded_frames = 0

    def add(self, key: Any, clip: np.ndarray | torch.Tensor) -> None:
        shape = tuple(clip.shape)
        group = self.pending.setdefault(shape, [])
        group.append((key, clip if isinstance(clip, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(clip))))
        if len(group) == self.batch_size:
            self._encode(shape)

    def flush(self) -> None:
        for shape in list(self.pending):
            self._encode(shape)
        for keys, indices in self.pending_grids:
            for key, grid in zip(keys, indices.cpu().numpy()):  # the only wait for the GPU in a chunk
                self.grids[key] = grid
        self.pending_grids.clear()

    def _encode(self, shape: tuple[int, ...]) -> None:
        group = self.pending.pop(shape)
        keys = [key for key, _ in group]
        clips = [clip for _, clip in group]
        clips += [clips[-1]] * (self.batch_size - len(clips))  # always a full batch (see the module docstring)
        if self.whole:
            for key, grid in zip(keys, self.tokenizer.encode_streaming(torch.stack(clips))):
                self.grids[key] = grid
        elif clips[0].is_floating_point():  # cosmos_ar: [3, T, H, W] in [-1, 1], preprocessed in float
            self.pending_grids.append((keys, encode_unit_range(self.tokenizer, clips)))  # [batch, T', H', W']
        else:
            self.pending_grids.append((keys, self.tokenizer.encode_on_device(clips)))  # [batch, T', H', W']
        self.encoded_clips += len(group)
        self.encoded_frames += len(group) * shape[1 if clips[0].is_floating_point() else 0]  # [3, T, ...] / [T, ...]


def _failure_entry(item: SampleClips) -> dict[str, Any]:
    sample, failure = item.sample, item.failure
    entry = {"index": sample.index, "id": sample.id, "path": sample.path, "reason": failure.reason, "message": failure.message}
    if sample.member is not None:
        entry["member"] = sample.member  # the media inside a tar shard
    return entry


class _ChunkTokens:
    """What reading and encoding one chunk gave, for :func:`_write_chunk`."""

    def __init__(self, chunk_id: int, samples: Sequence[Sample], encoder: _Encoder, clip_counts: dict[int, int],
                 failures: list[dict[str, Any]], started: float) -> None:
        self.chunk_id, self.samples, self.encoder = chunk_id, samples, encoder
        self.clip_counts, self.failures, self.started = clip_counts, failures, started


def _encode_chunk(context: BuildContext, chunk_id: int, samples: Sequence[Sample], items: Iterator[SampleClips],
                  progress) -> _ChunkTokens:
    """Take the chunk's ``len(samples)`` items from ``items`` (in sample order) and encode their clips; the indices
    are read back to the host at the end (the chunk's one wait for the GPU)."""
    config = context.config
    started = time.perf_counter()
    encoder = _Encoder(context.video_tokenizer, config.batch_size, config.temporal_mode)
    clip_counts: dict[int, int] = {}
    failures: list[dict[str, Any]] = []
    for sample in samples:
        item = next(items, None)
        if item is None:  # a reader that ended early would otherwise leak a StopIteration out of this function
            raise RuntimeError(f"chunk {chunk_id}: the reader ended before sample {sample.index}")
        raise_if_interrupted()  # a Ctrl-C the runtime swallowed (in a reader's __del__) stops the chunk here
        if item.sample.index != sample.index:
            raise RuntimeError(f"chunk {chunk_id}: the reader gave sample {item.sample.index} for {sample.index}")
        if item.failure is not None:
            failures.append(_failure_entry(item))
            log.debug("skip %s: %s (%s)", item.sample.id, item.failure.reason, item.failure.message)
        else:
            clip_counts[item.sample.index] = len(item.clips)
            for c, clip in enumerate(item.clips):
                encoder.add((item.sample.index, c), clip)
        if progress is not None:
            progress.update(1)
    encoder.flush()
    return _ChunkTokens(chunk_id, samples, encoder, clip_counts, failures, started)


def _write_chunk(context: BuildContext, tokens: _ChunkTokens) -> dict[str, Any]:
    """Write the chunk's shard (temporary name, renamed when complete), then its record (which marks it complete)."""
    config, layout, text = context.config, context.layout, context.text_tokenizer
    chunk_id, samples, encoder, clip_counts = tokens.chunk_id, tokens.samples, tokens.encoder, tokens.clip_counts
    prefix = config.chunk_prefix(chunk_id)
    written: list[dict[str, Any]] = []
    with ShardWriter(prefix, layout.dtype) as writer:
        for sample in samples:
            if sample.index not in clip_counts:
                continue
            docs = 0
            for c in range(clip_counts[sample.index]):
                for doc in layout.encode_clip(text, sample.text, encoder.grids[(sample.index, c)]):
                    raise_if_interrupted()
                    writer.add_document(doc)
                    docs += 1
            written.append({"index": sample.index, "id": sample.id, "clips": clip_counts[sample.index], "documents": docs})
        num_documents, num_tokens = writer.num_documents, writer.num_tokens
    bin_path, idx_path = shard_files(prefix)
    seconds = time.perf_counter() - tokens.started
    failures = tokens.failures
    record = {
        "format": DATASET_FORMAT + "/chunk",
        "version": FORMAT_VERSION,
        "chunk": chunk_id,
        "config_hash": context.config_hash,
        "sample_range": [samples[0].index, samples[-1].index + 1],
        "written": written,
        "failures": failures,
        "num_samples": len(samples),
        "num_written_samples": len(written),
        "num_failed_samples": len(failures),
        "num_documents": num_documents,
        "num_tokens": num_tokens,
        "num_clips": encoder.encoded_clips,
        "num_frames": encoder.encoded_frames,
        "bin_bytes": os.path.getsize(bin_path),
        "idx_bytes": os.path.getsize(idx_path),
        "seconds": seconds,
    }
    write_json_atomic(sidecar_path(prefix), record)  # last: marks the chunk complete
    log.info(
        "chunk %d: %d samples, %d written, %d failed, %d clips, %d tokens in %.1fs (%.2f clips/s, %.0f tokens/s)",
        chunk_id, len(samples), len(written), len(failures), encoder.encoded_clips, num_tokens, seconds,
        encoder.encoded_clips / max(seconds, 1e-9), num_tokens / max(seconds, 1e-9),
    )
    return record


class _ChunkReader:
    """Each chunk's items in turn (:meth:`items`). The ``nvdec`` reader reads all the chunks' samples in one pass, so
    it reads the next chunk's first samples while this one's indices come back and its shard is written (its threads
    and decoders stay up); the CPU readers start anew per chunk."""

    def __init__(self, context: BuildContext, chunk_ids: Sequence[int]) -> None:
        self.context = context
        config, device = context.config, context.video_tokenizer.device
        self.shared = None
        if config.video_backend == "nvdec":
            samples = itertools.chain.from_iterable(context.chunk_samples(c) for c in chunk_ids)  # lazily, by chunk
            self.shared = _iter_samples(samples, context.clip_spec, "nvdec", config.num_workers, device,
                                        storage=config.storage(), nvdec_decodes=config.nvdec_decodes,
                                        nvdec_resize=config.nvdec_resize,
                                        nvdec_probe_threads=config.nvdec_probe_threads,
                                        nvdec_processes=config.nvdec_processes)

    def items(self, samples: Sequence[Sample]) -> Iterator[SampleClips]:
        if self.shared is not None:
            return self.shared
        config = self.context.config
        return iter(_iter_samples(samples, self.context.clip_spec, config.video_backend, config.num_workers,
                                  self.context.video_tokenizer.device, self.context.read_sample, config.storage()))

    def finish(self) -> None:
        """After the last chunk: end the shared reader's pass (it logs what it read and how its threads spent time)."""
        if self.shared is not None:
            for extra in self.shared:
                raise RuntimeError(f"the reader gave sample {extra.sample.index} beyond the chunks' samples")

    def close(self) -> None:
        """Stop the shared reader's threads (after an error: samples read ahead are dropped)."""
        if self.shared is not None:
            self.shared.close()


def run_chunks(context: BuildContext, chunk_ids: Iterable[int], *, progress: Any = None) -> list[dict[str, Any]]:
    """Process ``chunk_ids`` (skipping complete ones); returns the record of each chunk, in the given order.

    A chunk's shard is written in a thread of its own while the next chunk is read and encoded (at most one shard
    waits to be written); the bytes are those of processing the chunks one after another.

    ``progress``: ``True``/``False`` for this process's own tqdm bar (default ``context.config.progress``), or an
    object whose ``update(n)`` is called once per sample read (the distributed runner's global bar; not closed here).
    """
    chunk_ids = list(chunk_ids)
    show = context.config.progress if progress is None else progress
    todo = [c for c in chunk_ids if not context.is_chunk_complete(c)]
    if len(todo) < len(chunk_ids):
        log.info("resuming: %d of %d chunks already complete", len(chunk_ids) - len(todo), len(chunk_ids))
    own_bar = isinstance(show, bool)
    bar = None if own_bar else show
    if own_bar and show and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=sum(context.chunk_length(c) for c in todo), unit="sample", desc="tokenizing")
    records: dict[int, dict[str, Any]] = {}

    def finish(write: Future) -> None:
        record = write.result()  # raises what the writer raised
        records[record["chunk"]] = record
        if own_bar and bar is not None:
            bar.set_postfix(chunk=record["chunk"], failed=record["num_failed_samples"], refresh=False)

    writing: Future | None = None
    reader: _ChunkReader | None = None
    try:
        with ThreadPoolExecutor(1, thread_name_prefix="shard-writer") as writer, \
                consumer_stream(context.video_tokenizer.device):
            reader = _ChunkReader(context, todo)
            for chunk_id in todo:
                samples = context.chunk_samples(chunk_id)
                tokens = _encode_chunk(context, chunk_id, samples, reader.items(samples), bar)
                if writing is not None:
                    finish(writing)  # at most one shard waits to be written
                writing = writer.submit(_write_chunk, context, tokens)
            reader.finish()
            if writing is not None:
                finish(writing)
                writing = None
    finally:
        if reader is not None:
            reader.close()
        if own_bar and bar is not None:
            bar.close()
    return [records[c] if c in records else chunk_record(context.config, c, context.config_hash) for c in chunk_ids]
