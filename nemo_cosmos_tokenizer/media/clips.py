"""Which source frames become clips: :class:`ClipSpec` (validated on creation), the usable frame range of a sample
and the clip plans in it.

* ``num_frames`` per clip (``1 + k * t`` for a video tokenizer with temporal compression ``t``), taken at a target
  ``fps`` (index step ``source_fps / fps``, never repeating a frame) or every ``stride``-th frame, or every frame;
* ``clips_per_video`` non-overlapping clips spread evenly over the usable range;
* a video too short for one clip is a ``too_short`` failure, or, with ``short_videos="shorten"``, gives one clip of
  the longest valid length it holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..config import frame_count_error, resolution_error
from .failures import MediaError

RESIZE_MODES = ("crop", "pad")
SHORT_VIDEO_POLICIES = ("skip", "shorten")


class FrameRangeRequest(Protocol):
    """What :func:`frame_range` reads of a sample (a :class:`nemo_cosmos_tokenizer.data.manifest.Sample`)."""

    start_frame: int | None
    end_frame: int | None
    start: float | None
    end: float | None


@dataclass(frozen=True)
class ClipSpec:
    """How clips are cut from a video and sized (validated on creation)."""

    num_frames: int = 17
    """Frames per clip; must be ``1 + k * temporal_compression`` of the video tokenizer."""

    fps: float | None = None
    """Target frame rate; ``None`` keeps the source rate (or uses ``stride``)."""

    stride: int | None = None
    """Take every ``stride``-th source frame (exclusive with ``fps``)."""

    clips_per_video: int = 1
    """At most this many non-overlapping clips per video, spread evenly over it."""

    short_videos: str = "skip"
    """``skip`` (a ``too_short`` failure) or ``shorten`` (one clip of the longest valid length)."""

    height: int = 256
    width: int = 256

    resize_mode: str = "crop"
    """``crop`` (cover + centre crop) or ``pad`` (fit + centre pad with black)."""

    temporal_compression: int = 1
    """The tokenizer's ``t`` (1 for image tokenizers: any clip length works)."""

    spatial_compression: int = 1
    """The tokenizer's spatial factor; height and width must be multiples of it."""

    def __post_init__(self) -> None:
        problem = frame_count_error(self.num_frames, self.temporal_compression)
        if problem is not None:
            raise ValueError(problem)
        if self.fps is not None and self.stride is not None:
            raise ValueError("give a target fps or a stride, not both")
        if self.fps is not None and not self.fps > 0:
            raise ValueError(f"fps must be > 0, got {self.fps}")
        if self.stride is not None and self.stride < 1:
            raise ValueError(f"stride must be >= 1, got {self.stride}")
        if self.clips_per_video < 1:
            raise ValueError(f"clips_per_video must be >= 1, got {self.clips_per_video}")
        if self.short_videos not in SHORT_VIDEO_POLICIES:
            raise ValueError(f"short_videos must be one of {SHORT_VIDEO_POLICIES}, got {self.short_videos!r}")
        if self.resize_mode not in RESIZE_MODES:
            raise ValueError(f"resize_mode must be one of {RESIZE_MODES}, got {self.resize_mode!r}")
        problem = resolution_error(self.height, self.width, self.spatial_compression)
        if problem is not None:
            raise ValueError(problem)



def _step(source_fps: float, spec: ClipSpec) -> float:
    if spec.stride is not None:
        return float(spec.stride)
    if spec.fps is not None:
        if not source_fps > 0:
            raise MediaError("unreadable", "the video reports no frame rate, so a target fps cannot be applied")
        return max(1.0, source_fps / spec.fps)
    return 1.0


def _offsets(length: int, step: float) -> np.ndarray:
    """Frame offsets of a clip of ``length`` frames taken every ``step`` source frames."""
    return np.floor(np.arange(length) * step + 0.5).astype(np.int64)


def frame_range(sample: FrameRangeRequest, num_frames: int, source_fps: float) -> tuple[int, int]:
    """The usable ``[begin, end)`` source frames of a sample (its manifest range, clipped to the video)."""
    begin, end = 0, num_frames
    if sample.start_frame is not None or sample.end_frame is not None:
        begin = sample.start_frame or 0
        end = num_frames if sample.end_frame is None else min(sample.end_frame, num_frames)
    elif sample.start is not None or sample.end is not None:
        if not source_fps > 0:
            raise MediaError("bad_range", "a range in seconds needs the video's frame rate, which it does not report")
        begin = int(math.ceil(sample.start * source_fps - 1e-6)) if sample.start is not None else 0
        end = num_frames if sample.end is None else min(num_frames, int(math.ceil(sample.end * source_fps - 1e-6)))
    if end <= begin:
        raise MediaError("bad_range", f"the range [{begin}, {end}) holds no frames (the video has {num_frames})")
    return begin, end


def plan_clips(begin: int, end: int, source_fps: float, spec: ClipSpec) -> list[np.ndarray]:
    """Source frame indices of each clip (int64 arrays) within ``[begin, end)``."""
    step = _step(source_fps, spec)
    available = end - begin
    length = spec.num_frames
    offsets = _offsets(length, step)
    span = int(offsets[-1]) + 1
    if span > available:
        t = spec.temporal_compression
        if spec.short_videos == "shorten":
            # Longest 1 + k*t that fits; a single frame always does.
            k = (length - 1) // t
            while k > 0 and int(_offsets(1 + k * t, step)[-1]) + 1 > available:
                k -= 1
            return [begin + _offsets(1 + k * t, step)]
        rate = f" at {spec.fps:g} fps" if spec.fps else (f" with stride {spec.stride}" if spec.stride else "")
        raise MediaError(
            "too_short",
            f"a {length}-frame clip{rate} spans {span} source frames, the usable range has {available}",
        )
    count = min(spec.clips_per_video, available // span)
    if count == 1:
        starts = [begin]
    else:
        # Evenly spread, non-overlapping: consecutive starts are at least `span` apart since count*span <= available.
        starts = [begin + (i * (available - span)) // (count - 1) for i in range(count)]
    return [start + offsets for start in starts]
