"""The settings of one dataset build: a frozen :class:`BuildConfig`, validated on creation, loadable from YAML.

Nothing here imports megatron-core, a video reader or a text tokenizer: a command line parses and validates its
arguments into a :class:`BuildConfig` before paying for any of them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from ..cosmos_ar import COSMOS_AR, NVIDIA_SETTINGS
from ..layout import PRESETS, TEMPLATES
from ...media.clips import RESIZE_MODES, SHORT_VIDEO_POLICIES
from ...media.decode import BACKENDS
from ..video_tokenizer import DEFAULT_TOKENIZER

__all__ = [
    "CHUNK_NAME",
    "LAYOUTS",
    "TEMPORAL_MODES",
    "VIDEO_BACKENDS",
    "BuildConfig",
    "ConfigMismatchError",
    "IncompleteBuildError",
    "load_build_config",
]

CHUNK_NAME = "chunk-{:06d}"
TEMPORAL_MODES = ("windows", "whole")
#: The token layouts of :mod:`..layout` (caption + video documents) and ``cosmos_ar`` (:mod:`..cosmos_ar`).
LAYOUTS = PRESETS + (COSMOS_AR,)
#: The builder's video backends: the CPU readers of :mod:`..video`, and ``nvdec`` (GPU decoding, :mod:`..nvdec`).
VIDEO_BACKENDS = BACKENDS + ("nvdec",)
#: How the ``nvdec`` backend turns NV12 surfaces into clips (:func:`nemo_cosmos_tokenizer.media.nvdec.nv12_to_clip`).
NVDEC_RESIZE_KINDS = ("auto", "exact", "fused")


class ConfigMismatchError(RuntimeError):
    """The output prefix holds work done with another configuration."""


class IncompleteBuildError(RuntimeError):
    """:func:`~.merging.merge` was called before every chunk was complete."""


@dataclass(frozen=True)
class BuildConfig:
    """Settings of one dataset build (fill from YAML with OmegaConf; see :func:`load_build_config`).

    Frozen: derive a changed copy with ``dataclasses.replace(config, field=value)``. Combinations that cannot work
    are refused on creation with a message that names the fix.
    """

    input: Optional[str] = None
    """A manifest (``.jsonl``, ``.csv``, ``.parquet``), WebDataset tar shards (a ``.tar``, a brace pattern like
    ``shards/{000000..000099}.tar``, a folder of ``*.tar``, or a ``.txt`` listing shard paths/URLs), or a folder of
    media with sidecar ``.txt`` captions; local, or on object storage (``s3://``, ``gs://``, ``https://``); see
    :mod:`nemo_cosmos_tokenizer.data.sources`."""

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
    """sentencepiece ``.model`` or Hugging Face ``tokenizer.json`` for the captions (not with ``cosmos_ar``)."""

    layout: str = "generic"
    """Token layout preset: ``generic`` (ids after the text vocabulary), ``emu3`` (NeMo's Emu3 ids) or
    ``cosmos_ar`` (NVIDIA's Cosmos-1.0-Autoregressive post-training data: raw FSQ indices of the first
    ``num_frames`` frames, no text; see :mod:`nemo_cosmos_tokenizer.data.cosmos_ar`)."""

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
    """Compute dtype: ``auto`` (bfloat16 on CUDA, float32 on CPU; with ``cosmos_ar`` bfloat16 everywhere, as
    NVIDIA encodes), ``bfloat16``, ``float32``."""

    batch_size: Optional[int] = None
    """Clips per encoder call (always full: the last batch of a shape is padded); ``None``: 8, or 1 with
    ``cosmos_ar`` (NVIDIA encodes one video per call)."""

    temporal_mode: str = "windows"
    """``windows``: each clip goes through the encoder in one call (``batch_size`` clips at a time). ``whole``: each
    clip is one causal sequence streamed through the encoder chunk by chunk (one clip at a time, memory independent
    of ``num_frames``, so clips can be long); same tokens as encoding the clip at once (equal in float32)."""

    num_workers: int = 0
    """DataLoader worker processes decoding videos while the model encodes (0: decode inline); with
    ``video_backend="nvdec"``, decoder threads (0: 8)."""

    nvdec_decodes: int = 7
    """With ``video_backend="nvdec"``: NVDEC decodes in flight at once, by default one per decode engine of an H100 or
    H200, where NVDEC alone peaks (``python scripts/benchmark_corpus_e2e.py --ceiling`` measures the rate per session
    count). With the default 8 decoder threads, 7 ran the 13 builds of BENCHMARKS.md runs 13-14 (4 gave 6 % less in
    run 13); with 14 threads, 7 ended a build in NVDEC error 208 in run 11. Speed only: the output does not depend
    on it."""

    nvdec_probe_threads: int = 12
    """With ``video_backend="nvdec"``: threads opening and planning samples with PyAV (CPU work) ahead of the decoder
    threads (runs 13-14 built with 12). Speed only: the output does not depend on it."""

    nvdec_processes: int = 0
    """With ``video_backend="nvdec"``: read in this many processes of their own (:mod:`..nvdec_processes`; clips
    handed over on the GPU by CUDA IPC), so that the reader's threads and the encoder's do not share one interpreter
    lock; ``num_workers``, ``nvdec_decodes`` and ``nvdec_probe_threads`` are then divided among them. 0: threads of
    the builder's process. On an H100 processes were slower than threads (BENCHMARKS.md run 14: 33-41 % of
    encoder-only against 47-62 %; without MPS the GPU time-slices between CUDA contexts), but a process that NVDEC
    aborts is restarted instead of ending the build. The output does not depend on it."""

    nvdec_resize: str = "auto"
    """With ``video_backend="nvdec"``: how NV12 surfaces become clips at the target size. ``exact``: swscale's
    YUV->RGB arithmetic, then torch's float32 antialiased bilinear resize on the GPU. ``fused``: one Triton kernel
    from NV12 to the target size that repeats that arithmetic: the same bytes (checked bit for bit on the GPU, and
    the same shards on the benchmark's 128 sources in BENCHMARKS.md runs 11 and 14), faster (run 14: 61 % of
    encoder-only instead of 47 %). ``auto``: ``fused`` where Triton is installed, else ``exact``. Speed only: not
    part of the config hash."""

    fast: bool = False
    """Encode with :func:`nemo_cosmos_tokenizer.fast.optimize` (compiled on CUDA, checked against the eager network
    on the first batch, falling back to it by itself). Its bf16 tokens differ slightly from eager ones, so it is
    part of the config hash."""

    deterministic: bool = True
    """GPU tokens that depend only on the clip, so every process encodes the same clips to the same tokens on the
    same GPU model and software stack, whatever rank runs a chunk and wherever a clip sits in its batch: kernels
    chosen without timing them (:func:`nemo_cosmos_tokenizer.devices.deterministic_kernels`) and, with ``fast``,
    rounding as eager rounds (:attr:`nemo_cosmos_tokenizer.fast.FastOptions.eager_numerics`). Measured on an H100
    (BENCHMARKS.md, run 10): without kernel timing, builds from files, tar shards and S3 in three processes were
    byte-identical; with eager rounding too, no token depended on the clip's batch position any more (encoder-only
    speed -4 %; builds there ran at a quarter of that speed, bound by the video reader). ``False``
    (``--no-deterministic``) times kernels in each process, which made two processes' builds differ. Part of the
    config hash."""

    chunk_size: Optional[int] = None
    """Samples per chunk shard (the unit of resume and of distribution); ``None``: 512, or 250 with ``cosmos_ar``
    (NVIDIA's videos per folder, so that the folders hold the same videos as theirs)."""

    local_files_only: bool = False
    """Never download tokenizer weights (Hugging Face cache only)."""

    progress: bool = True
    """Show a progress bar."""

    nvidia_folders: Optional[bool] = None
    """With ``layout="cosmos_ar"``: also lay the chunk shards out as NVIDIA's ``prepare_dataset.py`` writes them,
    ``<prefix>/<k>/.bin`` + ``.idx`` for every non-empty chunk ``k`` (``<prefix>/.bin`` when the build has one
    chunk; hard links, copies where links fail). ``None``: on with ``cosmos_ar``, off otherwise."""

    def __post_init__(self) -> None:
        choices = {
            "layout": LAYOUTS,
            "template": TEMPLATES,
            "video_backend": VIDEO_BACKENDS,
            "short_videos": SHORT_VIDEO_POLICIES,
            "resize_mode": RESIZE_MODES,
            "temporal_mode": TEMPORAL_MODES,
            "nvdec_resize": NVDEC_RESIZE_KINDS,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        # Defaults that depend on the layout: cosmos_ar's are NVIDIA's (explicit values win; the build logs and
        # records what then differs from NVIDIA's, see cosmos_ar.nvidia_differences).
        cosmos_ar = self.layout == COSMOS_AR
        resolved = {"chunk_size": 512, "batch_size": 8, "nvidia_folders": False}
        if cosmos_ar:
            resolved = {k: NVIDIA_SETTINGS[k] for k in resolved}
        for name, value in resolved.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        if cosmos_ar and self.dtype == "auto":
            object.__setattr__(self, "dtype", NVIDIA_SETTINGS["dtype"])
        if len(self.resolution) not in (1, 2) or min(self.resolution) < 1:
            raise ValueError(f"resolution must be [height, width] or [size], got {list(self.resolution)}")
        for name in ("batch_size", "chunk_size", "clips_per_video", "num_frames"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {self.num_workers}")
        if self.nvdec_decodes < 1:
            raise ValueError(f"nvdec_decodes must be >= 1, got {self.nvdec_decodes}")
        if self.nvdec_probe_threads < 1:
            raise ValueError(f"nvdec_probe_threads must be >= 1, got {self.nvdec_probe_threads}")
        if self.nvdec_processes < 0:
            raise ValueError(f"nvdec_processes must be >= 0 (0: threads of the builder's process), got "
                             f"{self.nvdec_processes}")
        if self.io_retries < 1:
            raise ValueError(f"io_retries must be >= 1, got {self.io_retries}")
        # Combinations that cannot work: refused here, before any model is loaded (ClipSpec and prepare_build
        # check them again, later and for callers that bypass the config).
        if self.fps is not None and self.stride is not None:
            raise ValueError(f"fps ({self.fps}) and stride ({self.stride}) both set: give --fps or --stride, not both")
        if self.fps is not None and not self.fps > 0:
            raise ValueError(f"fps must be > 0, got {self.fps} (leave it unset to keep the source frame rate)")
        if self.stride is not None and self.stride < 1:
            raise ValueError(f"stride must be >= 1, got {self.stride} (leave it unset to take every frame)")
        if self.layout == COSMOS_AR:
            from ..cosmos_ar import check_config

            check_config(self)
        elif self.nvidia_folders:
            raise ValueError("nvidia_folders lays out cosmos_ar documents for NVIDIA's scripts: use --layout cosmos_ar "
                             "or leave nvidia_folders off")
        if self.video_backend == "nvdec" and str(self.device).strip().lower() == "cpu":
            raise ValueError("video_backend nvdec decodes on the GPU the tokenizer runs on, but the device is cpu; "
                             "use --device cuda or --video-backend pyav")

    @property
    def height(self) -> int:
        return int(self.resolution[0])

    @property
    def width(self) -> int:
        return int(self.resolution[-1])

    def require_paths(self) -> None:
        needed = ("input", "output_prefix") + (() if self.layout == COSMOS_AR else ("text_tokenizer",))
        missing = [f"--{n.replace('_', '-')}" for n in needed if not getattr(self, n)]
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
        """The input index (:mod:`..sources.plan`): every sample once, and where each chunk's samples start."""
        return self.chunks_dir / "inputs"

    def storage(self):
        """How remote inputs are reached: a :class:`..sources.Storage` of ``storage_options`` and ``io_retries``."""
        from ..sources import Storage

        return Storage(options=dict(self.storage_options), retries=self.io_retries)

    def input_spec(self):
        """The :class:`..sources.InputSpec` of ``input`` with the table columns, tar caption keys and storage."""
        from ..sources import Columns, InputSpec

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
