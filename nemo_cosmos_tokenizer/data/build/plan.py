"""Preparing a build: load what it needs once per process, fingerprint the configuration, record ``plan.json``.

The **config hash** covers every part of the configuration that changes the output bytes (manifest content;
for tar shards and remote tables also the input files' sizes and versions; tokenizers, layout, frame sampling, encoding dtype, batch size, temporal mode, ``fast``, chunk size). It is
written to ``<prefix>.chunks/plan.json`` by the first process and checked by every later one: a prefix holding
work of another configuration is refused with :class:`~.config.ConfigMismatchError` naming what changed.
The same module lists the chunks (fixed-size runs of ``chunk_size`` samples in manifest order) and tells which are
complete (their record ``chunk-NNNNNN.json`` exists with this hash and matches the shard sizes).

The input is indexed once (:mod:`..sources.plan`, into ``<prefix>.chunks/inputs/``) by rank 0 / a single process;
a process keeps only that index and reads the samples of a chunk when it runs it, so its memory does not grow
with the corpus.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..cosmos_ar import COSMOS_AR, CosmosARLayout, read_cosmos_ar_sample
from ..layout import TokenLayout
from ..manifest import Sample
from ..sources import InputPlan, plan_inputs, resolve_input
from ..text import TextTokenizer, load_text_tokenizer
from ...media.clips import ClipSpec
from ..video import SampleClips, read_sample
from ..video_tokenizer import VideoTokenizer, is_builtin_tokenizer, load_video_tokenizer
from ..writer import read_json, require_megatron, shard_files, sidecar_path, write_json_atomic
from .config import BuildConfig, ConfigMismatchError

log = logging.getLogger(__name__)

__all__ = ["DATASET_FORMAT", "FORMAT_VERSION", "BuildContext", "chunk_record", "prepare_build", "sha256_json"]

DATASET_FORMAT = "nemo-cosmos-tokenizer/video-token-dataset"
FORMAT_VERSION = 1


def sha256_json(data: Any) -> str:
    """SHA-256 of ``data`` as canonical JSON (sorted keys): the hash of a configuration part."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


@dataclass
class BuildContext:
    """Everything a build needs, loaded once per process: samples, tokenizers, layout, the config hash."""

    config: BuildConfig
    inputs: InputPlan
    """The indexed input: a process reads only the samples of the chunks it runs."""
    video_tokenizer: VideoTokenizer
    text_tokenizer: TextTokenizer | None
    """``None`` for layouts without text (``cosmos_ar``)."""
    layout: TokenLayout | CosmosARLayout
    clip_spec: ClipSpec
    fingerprint: dict[str, str]
    """Hash of each part of the configuration that changes the output (see :func:`prepare_build`)."""
    read_sample: Callable[..., SampleClips] = read_sample
    """Reads one sample into clips (a module-level function: DataLoader workers receive it by pickle)."""

    @property
    def config_hash(self) -> str:
        return sha256_json(self.fingerprint)

    @property
    def num_samples(self) -> int:
        return self.inputs.num_samples

    @property
    def num_chunks(self) -> int:
        return self.inputs.num_chunks

    def chunk_length(self, chunk_id: int) -> int:
        """Samples in chunk ``chunk_id`` (without reading them)."""
        return self.inputs.chunk_length(chunk_id)

    def chunk_samples(self, chunk_id: int) -> tuple[Sample, ...]:
        """The samples of chunk ``chunk_id``, read from the input index."""
        return self.inputs.chunk_samples(chunk_id)

    def is_chunk_complete(self, chunk_id: int) -> bool:
        return chunk_record(self.config, chunk_id, self.config_hash) is not None

    def pending_chunks(self) -> list[int]:
        """Chunk ids not yet complete, in order."""
        return [c for c in range(self.num_chunks) if not self.is_chunk_complete(c)]

    def frames_description(self) -> dict[str, Any]:
        spec = dataclasses.asdict(self.clip_spec)
        spec["video_backend"] = self.config.video_backend
        # nvdec_resize is not here: its kinds write the same bytes (BuildConfig.nvdec_resize), so a build started with
        # one resumes with the other, and machines with and without Triton build one dataset together.
        return spec

    def plan(self) -> dict[str, Any]:
        """What ``plan.json`` records (and :func:`~.merging.merge` copies into the sidecar)."""
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
            "text_tokenizer": self.text_tokenizer.describe() if self.text_tokenizer is not None else None,
            "video_tokenizer": self.video_tokenizer.describe(),
            "frames": self.frames_description(),
            "encoding": {"dtype": str(self.video_tokenizer.dtype).removeprefix("torch."), "batch_size": self.config.batch_size,
                         **encoding_options(self.config)},
        }


#: What ``deterministic`` records in the config hash. Not ``True``: that was recorded by ``--deterministic`` builds
#: made before it also asked Inductor to round as eager does, whose GPU tokens differ; they must not be resumed as one.
DETERMINISTIC_KERNELS = "untimed kernels, eager rounding"


def encoding_options(config: BuildConfig) -> dict[str, Any]:
    """The encoding settings beyond dtype and batch size, each recorded only where it differs from what builds made
    before the option existed did (so their config hashes stay valid): temporal mode, fast path, deterministic
    kernels."""
    return {**({"temporal_mode": config.temporal_mode} if config.temporal_mode != "windows" else {}),
            **({"fast": True} if config.fast else {}),
            **({"deterministic": DETERMINISTIC_KERNELS} if config.deterministic else {})}


def _log_nvidia_differences(config: BuildConfig, video_tokenizer: Any) -> None:
    """Say whether a cosmos_ar build runs with NVIDIA's settings (the sidecar records the same, ``nvidia``)."""
    from ..cosmos_ar import nvidia_differences

    dtype = config.dtype if video_tokenizer is None else str(video_tokenizer.dtype)
    differences = nvidia_differences({"dtype": dtype, "batch_size": config.batch_size, "chunk_size": config.chunk_size,
                                      "nvidia_folders": config.nvidia_folders, "fast": config.fast})
    if differences:
        log.warning("layout cosmos_ar with settings other than NVIDIA's prepare_dataset.py: %s", "; ".join(differences))
    else:
        log.info("layout cosmos_ar with NVIDIA's settings: bfloat16, one video per call, 250 videos per folder")


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
    resolve_input(config.input_spec())  # a wrong --input fails now, before the tokenizers load (indexing comes later)
    cosmos_ar = config.layout == COSMOS_AR
    if cosmos_ar and (config.text_tokenizer or text_tokenizer is not None):
        log.warning("layout cosmos_ar writes no text: the text tokenizer is not used")
    if cosmos_ar:
        _log_nvidia_differences(config, video_tokenizer)
    if text_tokenizer is None and not cosmos_ar:
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
        from ..nvdec import require_nvdec

        if video_tokenizer.device.type != "cuda":
            raise ValueError(
                f"video_backend nvdec decodes on the GPU the tokenizer runs on, but the device is "
                f"{video_tokenizer.device}; use --device cuda or --video-backend pyav"
            )
        require_nvdec()
    if config.deterministic:
        from ...devices import deterministic_kernels

        log.info("deterministic kernels: %s", deterministic_kernels())  # before anything is compiled or timed
    if config.fast:
        # takes the weight checksum first; deterministic: no kernel timing, and rounding that does not depend on fusion
        video_tokenizer.use_fast(cudnn_benchmark=not config.deterministic, eager_numerics=config.deterministic)
    if cosmos_ar:
        if not video_tokenizer.config.is_video:
            raise ValueError(f"layout cosmos_ar needs a discrete video tokenizer (DV), got {video_tokenizer.name}; "
                             "use e.g. --tokenizer Cosmos-1.0-Tokenizer-DV8x16x16")
        text_tokenizer = None  # no caption in the documents
        layout = CosmosARLayout(video_tokenizer.codebook_size,
                                video_tokenizer.grid_shape(config.num_frames, config.height, config.width))
    else:
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
    inputs = _plan_inputs(config)  # after the checks above: a refused configuration leaves no files behind
    fingerprint = {
        "manifest": inputs.checksum,
        "video_tokenizer": sha256_json(
            {"config": video_tokenizer.config.to_dict(), "encoder_sha256": video_tokenizer.checksum}
        ),
        "text_tokenizer": text_tokenizer.checksum if text_tokenizer is not None else None,
        "layout": sha256_json(layout.to_dict()),
        "frames": sha256_json({**dataclasses.asdict(clip_spec), "video_backend": config.video_backend}),
        "encoding": sha256_json(
            {"dtype": str(video_tokenizer.dtype), "batch_size": config.batch_size, **encoding_options(config)}
        ),
        "chunking": sha256_json({"chunk_size": config.chunk_size}),
    }
    if inputs.kind not in ("jsonl", "folder") or any("://" in f["url"] for f in inputs.files):
        # Media inside the inputs (tar shards) or remote tables: their sizes and versions (ETag, mtime) count too.
        # (Not for local manifests and folders, whose content hash alone was the hash of builds made before.)
        fingerprint["inputs"] = inputs.files_digest()
    context = BuildContext(config, inputs, video_tokenizer, text_tokenizer, layout, clip_spec, fingerprint,
                           read_cosmos_ar_sample if cosmos_ar else read_sample)
    _check_or_write_plan(context)
    return context


def _plan_inputs(config: BuildConfig) -> InputPlan:
    """Rank 0 (or a single process) indexes the input, or reuses an index that still matches it; the other ranks,
    which prepare after rank 0 (:func:`.run._prepare_everywhere`), load the index it wrote."""
    from ...distributed import get_dist_env

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
    "encoding": "the compute dtype, batch size, temporal mode, --fast or --deterministic",
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


def chunk_record(config: BuildConfig, chunk_id: int, config_hash: str) -> dict[str, Any] | None:
    """The record of a complete chunk, ``None`` if it is missing or incomplete (no record, or shard sizes that
    differ from it); raises :class:`ConfigMismatchError` on a record of another configuration."""
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


