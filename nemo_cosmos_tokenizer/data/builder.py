"""Build a Megatron dataset of interleaved caption and video tokens: the library behind
``scripts/build_video_token_dataset.py``.

Work is cut into **chunks**: the manifest (in its order) is split into fixed-size runs of ``chunk_size`` samples;
chunk ``i`` becomes its own shard ``<prefix>.chunks/chunk-<i:06d>.{bin,idx}`` (written under a temporary name,
renamed when complete) with a record ``chunk-<i:06d>.json`` (sample ids, counts, failures, config hash) written
last. :func:`merge` joins the chunk shards in chunk order into ``<prefix>.{bin,idx}`` with megatron-core's
``add_index``, and writes ``<prefix>.json`` (the sidecar) and ``<prefix>.failures.jsonl``.

The bytes of the result do not depend on who processed which chunk, on restarts, or on the chunk size: batches
are formed inside a chunk, group clips of equal shape in manifest order, and always hold ``batch_size`` clips (a
short last batch is padded by repeating its last clip), so a clip's tokens depend only on its pixels, the model,
the dtype and the batch size.

A single process runs every chunk (:func:`build`); distributed runs give each rank a share of
``context.pending_chunks()`` and let one rank :func:`merge`::

    context = prepare_build(config)            # loads tokenizers, checks/records the config hash
    run_chunks(context, context.pending_chunks()[rank::world])
    # barrier
    if rank == 0:
        merge(config)

Rerunning skips complete chunks; a recorded config hash (manifest content, tokenizers, layout, frame sampling,
encoding dtype and batch size, chunk size) that differs from the current one is refused with
:class:`ConfigMismatchError`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence

import numpy as np
import torch

from .layout import TEMPLATES, PRESETS, TokenLayout
from .manifest import Sample
from .sources import Columns, InputPlan, InputSpec, Storage, plan_inputs
from .text import TextTokenizer, load_text_tokenizer
from .video import BACKENDS, RESIZE_MODES, SHORT_VIDEO_POLICIES, ClipSpec, SampleClips, read_sample
from .video_tokenizer import DEFAULT_TOKENIZER, VideoTokenizer, is_builtin_tokenizer, load_video_tokenizer
from .writer import (
    ShardWriter,
    merge_shards,
    read_json,
    require_megatron,
    shard_files,
    sidecar_path,
    write_json_atomic,
)

log = logging.getLogger(__name__)

DATASET_FORMAT = "nemo-cosmos-tokenizer/video-token-dataset"
FORMAT_VERSION = 1
CHUNK_NAME = "chunk-{:06d}"
TEMPORAL_MODES = ("windows", "whole")
#: The builder's video backends: the CPU readers of :mod:`.video`, and ``nvdec`` (GPU decoding, :mod:`.nvdec`).
VIDEO_BACKENDS = BACKENDS + ("nvdec",)


class ConfigMismatchError(RuntimeError):
    """The output prefix holds work done with another configuration."""


class IncompleteBuildError(RuntimeError):
    """:func:`merge` was called before every chunk was complete."""


@dataclass
class BuildConfig:
    """Settings of one dataset build (fill from YAML with OmegaConf; see :func:`load_build_config`)."""

    input: Optional[str] = None
    """A manifest (``.jsonl``, ``.csv``, ``.parquet``), WebDataset tar shards (a ``.tar``, a brace pattern like
    ``shards/{000000..000099}.tar``, a folder of ``*.tar``, or a ``.txt`` listing shard paths/URLs), or a folder of
    media with sidecar ``.txt`` captions; local, or on object storage (``s3://``, ``gs://``, ``https://``)."""

    path_column: str = "path"
    """Table column of the media path (relative paths resolve against the table's folder)."""

    text_column: str = "text"
    """Table column of the caption (a list of captions for a row of segments)."""

    id_column: str = "id"
    """Table column of the sample id (optional)."""

    start_column: str = "start"
    """Table column of the start time in seconds; a list of ``[start, end]`` pairs (Panda-70M's ``timestamp``) or of
    starts expands the row to one sample per segment."""

    end_column: str = "end"
    """Table column of the end time in seconds (a list, with a list of starts)."""

    text_key: List[str] = field(default_factory=lambda: ["caption", "text"])
    """Fields of a tar sample's ``.json`` member that hold its caption, in order (a ``.txt`` member comes first)."""

    storage_options: Dict[str, Any] = field(default_factory=dict)
    """fsspec options of remote inputs, e.g. ``{"endpoint_url": ..., "profile": ...}`` or per protocol
    ``{"s3": {...}}``; credentials otherwise from the usual environment (``AWS_ENDPOINT_URL``, ``AWS_PROFILE``, ...)."""

    io_retries: int = 5
    """Attempts per remote read on transient errors (exponential backoff from 0.5 s); then the sample is a failure."""

    output_prefix: Optional[str] = None
    """Output path without extension: writes ``<prefix>.bin/.idx/.json``, ``<prefix>.failures.jsonl`` and
    ``<prefix>.chunks/``."""

    tokenizer: str = DEFAULT_TOKENIZER
    """Discrete video/image tokenizer: released name, local directory, or a built-in (``tiny-random-dv8x16x16``:
    random weights, no download, tokens without visual meaning)."""

    text_tokenizer: Optional[str] = None
    """sentencepiece ``.model`` or Hugging Face ``tokenizer.json`` for the captions."""

    layout: str = "generic"
    """Token layout preset: ``generic`` (ids after the text vocabulary) or ``emu3`` (NeMo's Emu3 ids)."""

    template: str = "caption_first"
    """``caption_first``, ``caption_last``, or ``both`` (two documents per clip)."""

    video_backend: str = "auto"
    """``auto`` (decord, falling back to PyAV), ``decord``, ``pyav``, or ``nvdec``: decode on the GPU with NVDEC
    (PyNvVideoCodec; same frames as ``pyav`` except after a resize, see :mod:`nemo_cosmos_tokenizer.data.nvdec`),
    what keeps a GPU on the fast path busy."""

    num_frames: int = 17
    """Frames per clip: ``1 + k * t`` for the tokenizer's temporal compression ``t`` (any count for DI)."""

    fps: Optional[float] = None
    """Target frame rate of the clips (``None``: the source rate, or ``stride``)."""

    stride: Optional[int] = None
    """Take every ``stride``-th source frame (exclusive with ``fps``)."""

    clips_per_video: int = 1
    """At most this many non-overlapping clips per video."""

    short_videos: str = "skip"
    """Videos too short for one clip: ``skip`` (reported as failures) or ``shorten`` (shorter valid clip)."""

    resolution: List[int] = field(default_factory=lambda: [256, 256])
    """Target ``[height, width]`` (or ``[size]`` for a square), multiples of the spatial compression."""

    resize_mode: str = "crop"
    """``crop`` (shortest side to cover, centre crop) or ``pad`` (longest side to fit, centre pad black)."""

    device: str = "auto"
    """``auto`` (CUDA when available), ``cuda``, ``cuda:1``, ``cpu``."""

    dtype: str = "auto"
    """Compute dtype: ``auto`` (bfloat16 on CUDA, float32 on CPU), ``bfloat16``, ``float32``."""

    batch_size: int = 8
    """Clips per encoder call (always full: the last batch of a shape is padded)."""

    temporal_mode: str = "windows"
    """``windows``: each clip goes through the encoder in one call (``batch_size`` clips at a time). ``whole``: each
    clip is one causal sequence streamed through the encoder chunk by chunk (one clip at a time, memory independent
    of ``num_frames``, so clips can be long); same tokens as encoding the clip at once (equal in float32)."""

    num_workers: int = 0
    """DataLoader worker processes decoding videos while the model encodes (0: decode inline); with
    ``video_backend="nvdec"``, decoder threads (0: 8)."""

    fast: bool = False
    """Encode with :func:`nemo_cosmos_tokenizer.fast.optimize` (compiled on CUDA, checked against the eager network
    on the first batch, falling back to it by itself). Its bf16 tokens differ slightly from eager ones, so it is
    part of the config hash."""

    chunk_size: int = 512
    """Samples per chunk shard (the unit of resume and of distribution)."""

    local_files_only: bool = False
    """Never download tokenizer weights (Hugging Face cache only)."""

    progress: bool = True
    """Show a progress bar."""

    def __post_init__(self) -> None:
        choices = {
            "layout": PRESETS,
            "template": TEMPLATES,
            "video_backend": VIDEO_BACKENDS,
            "short_videos": SHORT_VIDEO_POLICIES,
            "resize_mode": RESIZE_MODES,
            "temporal_mode": TEMPORAL_MODES,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if len(self.resolution) not in (1, 2) or min(self.resolution) < 1:
            raise ValueError(f"resolution must be [height, width] or [size], got {list(self.resolution)}")
        for name in ("batch_size", "chunk_size", "clips_per_video", "num_frames"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {self.num_workers}")
        if self.io_retries < 1:
            raise ValueError(f"io_retries must be >= 1, got {self.io_retries}")

    @property
    def height(self) -> int:
        return int(self.resolution[0])

    @property
    def width(self) -> int:
        return int(self.resolution[-1])

    def require_paths(self) -> None:
        missing = [f"--{n.replace('_', '-')}" for n in ("input", "output_prefix", "text_tokenizer") if not getattr(self, n)]
        if missing:
            raise ValueError(f"missing {', '.join(missing)} (or set them in the YAML config)")

    # ------------------------------------------------------------------ paths
    @property
    def chunks_dir(self) -> Path:
        return Path(f"{self.output_prefix}.chunks")

    @property
    def failures_path(self) -> Path:
        return Path(f"{self.output_prefix}.failures.jsonl")

    @property
    def plan_path(self) -> Path:
        return self.chunks_dir / "plan.json"

    @property
    def inputs_dir(self) -> Path:
        """The input index (:mod:`.sources.plan`): every sample once, and where each chunk's samples start."""
        return self.chunks_dir / "inputs"

    def storage(self) -> Storage:
        return Storage(options=dict(self.storage_options), retries=self.io_retries)

    def input_spec(self) -> InputSpec:
        columns = Columns(self.path_column, self.text_column, self.id_column, self.start_column, self.end_column)
        return InputSpec(str(self.input), columns, tuple(self.text_key), self.storage())

    def chunk_prefix(self, chunk_id: int) -> str:
        return str(self.chunks_dir / CHUNK_NAME.format(chunk_id))


def load_build_config(yaml_path: str | os.PathLike | None = None, overrides: dict[str, Any] | None = None) -> BuildConfig:
    """Defaults < YAML file < ``overrides`` (e.g. from the command line), validated into a :class:`BuildConfig`."""
    from omegaconf import OmegaConf

    merged = OmegaConf.structured(BuildConfig)
    if yaml_path is not None:
        merged = OmegaConf.merge(merged, OmegaConf.load(yaml_path))
    if overrides:
        merged = OmegaConf.merge(merged, OmegaConf.create(dict(overrides)))
    return OmegaConf.to_object(merged)


# ----------------------------------------------------------------------------------------------- preparation
def _sha256_json(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


@dataclass
class BuildContext:
    """Everything a build needs, loaded once per process: samples, tokenizers, layout, the config hash."""

    config: BuildConfig
    inputs: InputPlan
    """The indexed input: a process reads only the samples of the chunks it runs."""
    video_tokenizer: VideoTokenizer
    text_tokenizer: TextTokenizer
    layout: TokenLayout
    clip_spec: ClipSpec
    fingerprint: dict[str, str]
    """Hash of each part of the configuration that changes the output (see :func:`prepare_build`)."""

    @property
    def config_hash(self) -> str:
        return _sha256_json(self.fingerprint)

    @property
    def num_samples(self) -> int:
        return self.inputs.num_samples

    @property
    def num_chunks(self) -> int:
        return self.inputs.num_chunks

    def chunk_length(self, chunk_id: int) -> int:
        return self.inputs.chunk_length(chunk_id)

    def chunk_samples(self, chunk_id: int) -> tuple[Sample, ...]:
        return self.inputs.chunk_samples(chunk_id)

    def is_chunk_complete(self, chunk_id: int) -> bool:
        return _chunk_record(self.config, chunk_id, self.config_hash) is not None

    def pending_chunks(self) -> list[int]:
        """Chunk ids not yet complete, in order."""
        return [c for c in range(self.num_chunks) if not self.is_chunk_complete(c)]

    def frames_description(self) -> dict[str, Any]:
        spec = dataclasses.asdict(self.clip_spec)
        spec["video_backend"] = self.config.video_backend
        return spec

    def plan(self) -> dict[str, Any]:
        """What ``plan.json`` records (and :func:`merge` copies into the sidecar)."""
        return {
            "format": DATASET_FORMAT,
            "version": FORMAT_VERSION,
            "config_hash": self.config_hash,
            "fingerprint": self.fingerprint,
            "num_samples": self.num_samples,
            "chunk_size": self.config.chunk_size,
            "num_chunks": self.num_chunks,
            "manifest": {"source": self.config.input, "kind": self.inputs.kind, "sha256": self.inputs.checksum,
                         "files": len(self.inputs.files)},
            "layout": self.layout.to_dict(),
            "text_tokenizer": self.text_tokenizer.describe(),
            "video_tokenizer": self.video_tokenizer.describe(),
            "frames": self.frames_description(),
            "encoding": {"dtype": str(self.video_tokenizer.dtype).removeprefix("torch."), "batch_size": self.config.batch_size,
                         **({"fast": True} if self.config.fast else {})},
        }


def prepare_build(
    config: BuildConfig,
    *,
    video_tokenizer: VideoTokenizer | None = None,
    text_tokenizer: TextTokenizer | None = None,
) -> BuildContext:
    """Read the manifest, load the tokenizers, check the layout, and record (or check) the config hash.

    Safe to call from every rank at once (the plan file is written atomically with identical content).
    Raises :class:`ConfigMismatchError` if ``<prefix>.chunks/plan.json`` or the merged sidecar was written with a
    different configuration.
    """
    config.require_paths()
    require_megatron()  # fail before any encoding if megatron-core is missing (and keep its import out of timings)
    inputs = _plan_inputs(config)
    if text_tokenizer is None:
        text_tokenizer = load_text_tokenizer(config.text_tokenizer)
    if video_tokenizer is None:
        if is_builtin_tokenizer(config.tokenizer):
            log.warning(
                "tokenizer %s has random weights: its tokens exercise the pipeline but carry no visual meaning "
                "(use e.g. --tokenizer Cosmos-1.0-Tokenizer-DV8x16x16 for real data)",
                config.tokenizer,
            )
        video_tokenizer = load_video_tokenizer(
            config.tokenizer, config.device, config.dtype, parts=("encoder",), local_files_only=config.local_files_only
        )
    if config.video_backend == "nvdec":
        from .nvdec import require_nvdec

        if video_tokenizer.device.type != "cuda":
            raise ValueError(
                f"video_backend nvdec decodes on the GPU the tokenizer runs on, but the device is "
                f"{video_tokenizer.device}; use --device cuda or --video-backend pyav"
            )
        require_nvdec()
    if config.fast:
        video_tokenizer.use_fast()  # takes the weight checksum first
    layout = TokenLayout.from_preset(
        config.layout, text_tokenizer.vocab_size, video_tokenizer.codebook_size, template=config.template
    )
    clip_spec = ClipSpec(
        num_frames=config.num_frames,
        fps=config.fps,
        stride=config.stride,
        clips_per_video=config.clips_per_video,
        short_videos=config.short_videos,
        height=config.height,
        width=config.width,
        resize_mode=config.resize_mode,
        temporal_compression=video_tokenizer.temporal_compression,
        spatial_compression=video_tokenizer.spatial_compression,
    )
    fingerprint = {
        "manifest": inputs.checksum,
        "video_tokenizer": _sha256_json(
            {"config": video_tokenizer.config.to_dict(), "encoder_sha256": video_tokenizer.checksum}
        ),
        "text_tokenizer": text_tokenizer.checksum,
        "layout": _sha256_json(layout.to_dict()),
        "frames": _sha256_json({**dataclasses.asdict(clip_spec), "video_backend": config.video_backend}),
        "encoding": _sha256_json(
            {"dtype": str(video_tokenizer.dtype), "batch_size": config.batch_size,
             # only when not the default, so the hashes of builds made before this option stay valid
             **({"temporal_mode": config.temporal_mode} if config.temporal_mode != "windows" else {}),
             **({"fast": True} if config.fast else {})}
        ),
        "chunking": _sha256_json({"chunk_size": config.chunk_size}),
    }
    if inputs.kind not in ("jsonl", "folder") or any("://" in f["url"] for f in inputs.files):
        # Media inside the inputs (tar shards) or remote tables: their sizes and versions (ETag, mtime) count too.
        # (Not for local manifests and folders, whose content hash alone was the hash of builds made before.)
        fingerprint["inputs"] = inputs.files_digest()
    context = BuildContext(config, inputs, video_tokenizer, text_tokenizer, layout, clip_spec, fingerprint)
    _check_or_write_plan(context)
    return context


def _plan_inputs(config: BuildConfig) -> InputPlan:
    """Rank 0 (or a single process) indexes the input (or reuses the index); the other ranks, which prepare after
    it, load the index it wrote."""
    from ..distributed import get_dist_env

    if get_dist_env().rank == 0 or not (config.inputs_dir / "index.json").is_file():
        return plan_inputs(config.input_spec(), config.inputs_dir, config.chunk_size)
    return InputPlan.load(config.inputs_dir)


_PARTS_EXPLAINED = {
    "manifest": "the manifest content",
    "inputs": "the input files (shard list, sizes or versions)",
    "video_tokenizer": "the video tokenizer (architecture or weights)",
    "text_tokenizer": "the text tokenizer",
    "layout": "the token layout or template",
    "frames": "frame sampling, resolution or video backend",
    "encoding": "the compute dtype, batch size, temporal mode or --fast",
    "chunking": "the chunk size",
}


def _mismatch_message(where: Path, old: dict[str, str], new: dict[str, str], prefix: str) -> str:
    changed = [k for k in new if old.get(k) != new[k]] or ["the configuration"]
    what = ", ".join(_PARTS_EXPLAINED.get(k, k) for k in changed)
    return (
        f"{prefix} was started with a different configuration ({where}): {what} changed. Mixing outputs of two "
        f"configurations is refused; rerun with the original settings to resume, use another --output-prefix, or "
        f"delete {prefix}.* to start over."
    )


def _check_or_write_plan(context: BuildContext) -> None:
    config = context.config
    for recorded in (Path(sidecar_path(config.output_prefix)), config.plan_path):  # a merged build, a started one
        if recorded.is_file():
            old = read_json(recorded)
            if old.get("config_hash") != context.config_hash:
                raise ConfigMismatchError(
                    _mismatch_message(recorded, old.get("fingerprint", {}), context.fingerprint, config.output_prefix)
                )
    if config.plan_path.is_file():
        return
    config.chunks_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(config.plan_path, context.plan())


def _chunk_record(config: BuildConfig, chunk_id: int, config_hash: str) -> dict[str, Any] | None:
    """The record of a complete chunk, ``None`` if it is missing or incomplete; raises on a foreign hash."""
    prefix = config.chunk_prefix(chunk_id)
    path = Path(sidecar_path(prefix))
    if not path.is_file():
        return None
    record = read_json(path)
    if record.get("config_hash") != config_hash:
        raise ConfigMismatchError(
            f"{path} was written with config hash {record.get('config_hash')}, this run has {config_hash}; "
            f"delete {config.chunks_dir} to start over"
        )
    bin_path, idx_path = shard_files(prefix)
    for file, key in ((bin_path, "bin_bytes"), (idx_path, "idx_bytes")):
        if not os.path.isfile(file) or os.path.getsize(file) != record.get(key):
            return None
    return record


# ---------------------------------------------------------------------------------------------- processing
def _clips_as_tensors(item: SampleClips) -> SampleClips:
    """DataLoader ``collate_fn`` (runs in the worker): clips as torch tensors, which the DataLoader hands over
    through shared memory; numpy arrays would be pickled through a pipe (~47 MB per 17-frame 720p clip), which
    serialises the main process on reading them."""
    item.clips = [torch.from_numpy(np.ascontiguousarray(clip)) for clip in item.clips]
    return item


class _SampleReader:
    """``Dataset`` of one chunk's samples -> :class:`SampleClips` (picklable for DataLoader workers)."""

    def __init__(self, samples: Sequence[Sample], spec: ClipSpec, backend: str, storage: Storage | None = None) -> None:
        self.samples = samples
        self.spec = spec
        self.backend = backend
        self.storage = storage

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> SampleClips:
        return read_sample(self.samples[i], self.spec, self.backend, self.storage)


def _iter_samples(
    samples: Sequence[Sample], spec: ClipSpec, backend: str, num_workers: int, device: torch.device,
    storage: Storage | None = None,
) -> Iterator[SampleClips]:
    if backend == "nvdec":  # threads of this process; clips arrive as CUDA tensors
        from .nvdec import DEFAULT_THREADS, NvdecReader

        return NvdecReader(spec, device, num_workers or DEFAULT_THREADS, storage=storage).iter_samples(samples)
    reader = _SampleReader(samples, spec, backend, storage)
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
        else:
            self.pending_grids.append((keys, self.tokenizer.encode_on_device(clips)))  # [batch, T', H', W']
        self.encoded_clips += len(group)
        self.encoded_frames += len(group) * shape[0]


def _failure_entry(item: SampleClips) -> dict[str, Any]:
    sample, failure = item.sample, item.failure
    entry = {"index": sample.index, "id": sample.id, "path": sample.path, "reason": failure.reason, "message": failure.message}
    if sample.member is not None:
        entry["member"] = sample.member  # the media inside a tar shard
    return entry


def _process_chunk(context: BuildContext, chunk_id: int, progress) -> dict[str, Any]:
    config, layout, text = context.config, context.layout, context.text_tokenizer
    samples = context.chunk_samples(chunk_id)
    started = time.perf_counter()
    encoder = _Encoder(context.video_tokenizer, config.batch_size, config.temporal_mode)
    clip_counts: dict[int, int] = {}
    failures: list[dict[str, Any]] = []
    items = _iter_samples(samples, context.clip_spec, config.video_backend, config.num_workers,
                          context.video_tokenizer.device, config.storage())
    for item in items:
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

    prefix = config.chunk_prefix(chunk_id)
    written: list[dict[str, Any]] = []
    with ShardWriter(prefix, layout.dtype) as writer:
        for sample in samples:
            if sample.index not in clip_counts:
                continue
            docs = 0
            for c in range(clip_counts[sample.index]):
                for doc in layout.encode_clip(text, sample.text, encoder.grids[(sample.index, c)]):
                    writer.add_document(doc)
                    docs += 1
            written.append({"index": sample.index, "id": sample.id, "clips": clip_counts[sample.index], "documents": docs})
        num_documents, num_tokens = writer.num_documents, writer.num_tokens
    bin_path, idx_path = shard_files(prefix)
    seconds = time.perf_counter() - started
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


def run_chunks(context: BuildContext, chunk_ids: Iterable[int], *, progress: Any = None) -> list[dict[str, Any]]:
    """Process ``chunk_ids`` (skipping complete ones); returns the record of each chunk, in the given order.

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
    records = {}
    try:
        for chunk_id in todo:
            records[chunk_id] = _process_chunk(context, chunk_id, bar)
            if own_bar and bar is not None:
                rec = records[chunk_id]
                bar.set_postfix(chunk=chunk_id, failed=rec["num_failed_samples"], refresh=False)
    finally:
        if own_bar and bar is not None:
            bar.close()
    return [records[c] if c in records else _chunk_record(context.config, c, context.config_hash) for c in chunk_ids]


# ---------------------------------------------------------------------------------------------------- merge
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
        record = _chunk_record(config, chunk_id, config_hash)
        if record is None:
            missing.append(chunk_id)
        records.append(record)
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
        raise IncompleteBuildError(f"{len(missing)} of {plan['num_chunks']} chunks are not complete: {shown}")

    # A merge of exactly these chunk records is already in place (a rerun of a finished build): keep it.
    prefix = config.output_prefix
    chunks_digest = _sha256_json([[r["chunk"], r["bin_bytes"], r["idx_bytes"], r["seconds"]] for r in records])
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
    layout = TokenLayout.from_dict(plan["layout"])
    shards = [config.chunk_prefix(c) for c, r in enumerate(records) if r["num_documents"]]
    if concatenate:
        merge_shards(shards, prefix, layout.dtype)
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
            "vocab_size": layout.vocab_size,
            "note": "every document ends with eod_id; Megatron pads --vocab-size up to a multiple of 128 x TP",
        },
    }
    write_json_atomic(sidecar_path(prefix), sidecar)
    return sidecar


def _write_failures(path: Path, failures: list[dict[str, Any]]) -> None:
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        for failure in failures:
            f.write(json.dumps(failure, ensure_ascii=False, sort_keys=True) + "\n")
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------------- build
@dataclass(frozen=True)
class BuildSummary:
    """What a build did (counts cover the whole dataset; chunks_run and the rates this process's work)."""

    output_prefix: str
    samples: int
    written_samples: int
    failed_samples: int
    documents: int
    clips: int
    frames: int
    tokens: int
    failures_by_reason: dict[str, int]
    vocab_size: int
    chunks: int
    chunks_run: int
    seconds: float
    clips_per_second: float
    frames_per_second: float
    tokens_per_second: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def format(self) -> str:
        reasons = ", ".join(f"{k}: {v}" for k, v in self.failures_by_reason.items()) or "none"
        return (
            f"wrote {self.documents} documents ({self.tokens} tokens, {self.clips} clips) from {self.written_samples} "
            f"of {self.samples} samples to {self.output_prefix}.{{bin,idx}}; skipped {self.failed_samples} "
            f"({reasons}); vocab_size {self.vocab_size}; {self.chunks_run} of {self.chunks} chunks run in "
            f"{self.seconds:.1f}s ({self.clips_per_second:.2f} clips/s, {self.frames_per_second:.1f} frames/s, "
            f"{self.tokens_per_second:.0f} tokens/s)"
        )


def build(
    config: BuildConfig,
    *,
    video_tokenizer: VideoTokenizer | None = None,
    text_tokenizer: TextTokenizer | None = None,
) -> BuildSummary:
    """Single-process build: prepare, run every pending chunk, merge. Returns the summary (also logged)."""
    started = time.perf_counter()
    context = prepare_build(config, video_tokenizer=video_tokenizer, text_tokenizer=text_tokenizer)
    pending = context.pending_chunks()
    log.info(
        "%d samples in %d chunks (%d to run) -> %s; tokenizer %s on %s/%s; layout %s, vocab %d",
        context.num_samples, context.num_chunks, len(pending), config.output_prefix, context.video_tokenizer.name,
        context.video_tokenizer.device, str(context.video_tokenizer.dtype).removeprefix("torch."),
        context.layout.preset, context.layout.vocab_size,
    )
    records = run_chunks(context, pending)
    sidecar = merge(config)
    seconds = time.perf_counter() - started
    counts = sidecar["counts"]
    run_clips = sum(r["num_clips"] for r in records)
    run_frames = sum(r["num_frames"] for r in records)
    run_tokens = sum(r["num_tokens"] for r in records)
    summary = BuildSummary(
        output_prefix=str(config.output_prefix),
        samples=counts["samples"],
        written_samples=counts["written_samples"],
        failed_samples=counts["failed_samples"],
        documents=counts["documents"],
        clips=counts["clips"],
        frames=counts["frames"],
        tokens=counts["tokens"],
        failures_by_reason=counts["failures_by_reason"],
        vocab_size=sidecar["vocab_size"],
        chunks=context.num_chunks,
        chunks_run=len(records),
        seconds=seconds,
        clips_per_second=run_clips / seconds,
        frames_per_second=run_frames / seconds,
        tokens_per_second=run_tokens / seconds,
    )
    log.info("%s", summary.format())
    return summary
