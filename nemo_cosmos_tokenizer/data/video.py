"""Reading one sample of a build into clips: media (a path, a tar member's or an object's bytes) -> decoded frames
(:mod:`nemo_cosmos_tokenizer.media.decode`) -> clip plans (:mod:`nemo_cosmos_tokenizer.media.clips`) -> clips at the
target resolution (:mod:`nemo_cosmos_tokenizer.media.resize`). The CPU backends (``auto``, ``decord``, ``pyav``);
the GPU one is :mod:`.nvdec`.

* **Images** (by extension) are 1-frame clips (:func:`nemo_cosmos_tokenizer.media.images.load_image`).
* Media come as a local path, or as bytes (a tar member, an object fetched from storage: :mod:`.sources.media`),
  which every reader opens from memory without writing them to disk.
* Failures are returned as :class:`SampleClips` with a :class:`MediaError` (a short ``reason`` code, see
  :data:`FAILURE_REASONS`), never raised.

**Partly decodable videos** (all packets present, the data corrupt from some frame on): one policy for the builder,
``encode`` and ``reconstruct-*``: a video is used up to its first undecodable frame, with a warning that names the
frame; a job that needs frames past it plans again on the decodable head (the builder's clips) or takes the head
(``encode``/``reconstruct``), and a head too short for the job is a ``too_short``/``truncated`` failure. Files
cut off before the end (fewer packets than the header promises) remain ``truncated`` failures.

The media readers moved to :mod:`nemo_cosmos_tokenizer.media`; their names stay importable from here for code
written against the old layout.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..media.clips import RESIZE_MODES, SHORT_VIDEO_POLICIES, ClipSpec, frame_range, plan_clips
from ..media.decode import (
    BACKENDS,
    INSTALL_HINT,
    VideoSource,
    describe_av_error,
    last_line,
    open_video,
    plain_av_message,
    pyav_open,
)
from ..media.failures import FAILURE_REASONS, MediaError
from ..media.images import load_image
from ..media.resize import resize_clip, resize_frames
from .manifest import Sample

log = logging.getLogger(__name__)

_pyav_open = pyav_open  # the old private name (tests and scripts of earlier versions)

__all__ = [
    "BACKENDS", "FAILURE_REASONS", "INSTALL_HINT", "RESIZE_MODES", "SHORT_VIDEO_POLICIES", "ClipSpec", "MediaError",
    "SampleClips", "VideoSource", "describe_av_error", "frame_range", "load_image", "open_video", "plain_av_message",
    "plan_clips", "pyav_open", "read_sample", "resize_clip", "resize_frames",
]


# ------------------------------------------------------------------------------------------------ one sample
@dataclass
class SampleClips:
    """What reading one sample gives: its clips or why it failed."""

    sample: Sample
    clips: list[np.ndarray] = field(default_factory=list)
    """uint8 ``[T, H, W, 3]`` clips at the target resolution."""

    frame_indices: list[list[int]] = field(default_factory=list)
    """Source frame indices of each clip (empty lists for images)."""

    backend: str = ""
    failure: MediaError | None = None
    ready: Any = None
    """The ``nvdec`` backend's CUDA event after which the clips are complete (the reader makes the consumer's stream
    wait for it when it hands the sample over); ``None`` for clips in host memory."""


def read_sample(sample: Sample, spec: ClipSpec, backend: str = "auto", storage=None) -> SampleClips:
    """Clips of one sample, or a failure; never raises for bad media (only for programming errors).

    ``storage``: how to reach tar shards and remote objects (a :class:`.sources.storage.Storage`; default options).
    """
    try:
        return _read_sample(sample, spec, backend, storage)
    except MediaError as err:
        return SampleClips(sample, failure=err)


def _read_sample(sample: Sample, spec: ClipSpec, backend: str, storage=None) -> SampleClips:
    from .sources.media import load_media

    if sample.text is None and sample.failure_reason is None:
        raise MediaError("no_caption", "no caption: add a sidecar .txt next to the file (a .txt member to a tar sample)")
    media = load_media(sample, storage)  # the local path, or the bytes of a tar member / remote object
    if sample.is_image:
        frame = load_image(media)[None]  # [1, H, W, 3]
        clip = resize_frames(frame, spec.height, spec.width, spec.resize_mode)
        return SampleClips(sample, [clip], [[]], backend="pillow")
    try:
        return _read_video(sample, spec, open_video(media, backend))
    except MediaError:
        raise
    except Exception as err:
        if backend != "auto":
            raise MediaError("unreadable", f"{backend}: {last_line(err)}") from err
        # decord opened the file but failed to decode it: PyAV gets its chance (and reports its own failure).
        return _read_video(sample, spec, pyav_open(media))


def _read_video(sample: Sample, spec: ClipSpec, source: VideoSource) -> SampleClips:
    begin, end = frame_range(sample, source.num_frames, source.fps)
    plans = plan_clips(begin, end, source.fps, spec)
    try:
        frames = source.get_frames(np.concatenate(plans).tolist())
    except MediaError as err:
        usable = err.decodable_frames
        if not usable or usable <= begin or usable >= end:
            raise
        # Corrupt from frame `usable` on: plan again on the decodable head (raises too_short if it holds no clip).
        plans = plan_clips(begin, usable, source.fps, spec)
        frames = source.get_frames(np.concatenate(plans).tolist())
        log.warning("%s: %s; its clips are taken from frames %d-%d", sample.path, err.message, begin, usable - 1)
    clips, at = [], 0
    for plan in plans:
        clips.append(resize_frames(frames[at : at + len(plan)], spec.height, spec.width, spec.resize_mode))
        at += len(plan)
    return SampleClips(sample, clips, [p.tolist() for p in plans], backend=source.backend)


