"""Measure what a demo clip shows: the moving object's colour and direction, recovered from the pixels alone.

The clips of :mod:`.demo` are one coloured shape moving in a straight line over a plain background, and the caption
names the colour, the direction and the background. :func:`analyse_clip` recovers those three from uint8 frames
(a rendered clip, a tokenizer's reconstruction, or a video a GPT sampled from a caption), so "does the sample show
what the caption asks for?" becomes a number (:func:`match_rate`) instead of a look at an mp4:

1. **background**: the per-channel median over every pixel of every frame (the object covers ~5 % of a frame);
2. **object mask**: pixels nearer to some palette colour than to that background, and farther than
   ``min_contrast`` from it (a per-direction threshold: white on cream, 48 apart, still separates), cleaned of lone
   pixels by a 3x3 majority so speckle noise does not count;
3. **colour**: the median colour of the masked pixels, named by the nearest palette colour (``"none"`` when no frame
   holds an object of at least ``min_area`` of the frame);
4. **direction**: the mask's centroid per frame; steps between frames are wrapped to ``[-size/2, size/2)`` (the
   generator wraps the object around the frame edges), and the median step per axis is the velocity. The larger
   axis names the direction if it moves at least ``min_speed`` pixels per frame, else ``"none"`` (a static clip).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np

from .demo import BACKGROUNDS, COLOURS, DIRECTIONS

__all__ = ["CaptionContent", "ClipContent", "analyse_clip", "caption_content", "compare", "match_rate"]

_CAPTION = re.compile(r"^A (?P<colour>.+?) (?P<shape>\w+) moves (?P<direction>.+?) on a (?P<background>.+) background\.$")


@dataclass(frozen=True)
class ClipContent:
    """What :func:`analyse_clip` measured in one clip."""

    colour: str
    """Nearest palette colour of the moving object (:data:`.demo.COLOURS`), or ``"none"`` if no object was found."""
    direction: str
    """A key of :data:`.demo.DIRECTIONS` (``"to the right"``, ``"up"``, ...), or ``"none"`` if nothing moves."""
    background: str
    """Nearest named background (:data:`.demo.BACKGROUNDS`)."""
    object_rgb: tuple[float, float, float] | None
    """Median colour of the object's pixels (0-255), ``None`` without an object."""
    velocity: tuple[float, float]
    """Median centroid step per frame ``(dy, dx)`` in pixels (y grows downwards); ``(0, 0)`` without an object."""
    object_fraction: float
    """Mean fraction of a frame's pixels in the object mask, over the frames that hold one."""


@dataclass(frozen=True)
class CaptionContent:
    colour: str
    shape: str
    direction: str
    background: str


def caption_content(caption: str) -> CaptionContent:
    """Parse a :class:`.demo.DemoClip` caption ("A red ball moves to the left on a grey background.")."""
    m = _CAPTION.match(caption.strip())
    if m is None or m["colour"] not in COLOURS or m["direction"] not in DIRECTIONS or m["background"] not in BACKGROUNDS:
        raise ValueError(f"not a demo caption: {caption!r}")
    return CaptionContent(m["colour"], m["shape"], m["direction"], m["background"])


def _nearest(rgb: np.ndarray, palette: Mapping[str, tuple[int, int, int]]) -> str:
    names = list(palette)
    table = np.asarray([palette[n] for n in names], np.float64)  # [K, 3]
    return names[int(np.argmin(((table - rgb) ** 2).sum(axis=1)))]


def _majority_3x3(mask: np.ndarray) -> np.ndarray:
    """Keep a pixel of ``mask [T, H, W]`` if at least 5 of the 9 pixels of its 3x3 neighbourhood are set."""
    padded = np.pad(mask.astype(np.int16), ((0, 0), (1, 1), (1, 1)))
    h, w = mask.shape[1:]
    counts = sum(padded[:, i:i + h, j:j + w] for i in range(3) for j in range(3))  # [T, H, W]
    return mask & (counts >= 5)


def _object_mask(frames: np.ndarray, background: np.ndarray, min_contrast: float) -> np.ndarray:
    """Bool ``[T, H, W]``: pixels nearer to a palette colour than to ``background`` and ``min_contrast`` away from it."""
    pixels = frames.astype(np.float32)  # [T, H, W, 3]
    to_background = ((pixels - background.astype(np.float32)) ** 2).sum(-1)  # [T, H, W] squared distances
    palette = np.asarray(list(COLOURS.values()), np.float32)  # [K, 3]
    to_palette = np.min(np.stack([((pixels - c) ** 2).sum(-1) for c in palette]), axis=0)  # [T, H, W]
    mask = (to_palette < to_background) & (to_background > min_contrast**2)
    return _majority_3x3(mask)


def _wrapped(step: np.ndarray, size: int) -> np.ndarray:
    """Steps in pixels folded into ``[-size/2, size/2)``: an object leaving one edge re-enters at the other."""
    return (step + size / 2) % size - size / 2


def analyse_clip(frames: np.ndarray, *, min_area: float = 0.005, min_speed: float = 0.5,
                 min_contrast: float = 20.0) -> ClipContent:
    """Measure colour, direction and background of a demo clip.

    Args:
        frames: uint8 ``[T, H, W, 3]`` RGB (T >= 2 for a direction).
        min_area: a frame holds the object if at least this fraction of its pixels is in the mask (the generator's
            smallest object, the bar, covers ~4 % of a frame).
        min_speed: pixels per frame along the main axis below which the clip counts as static (the generator moves
            2-4 pixels per frame).
        min_contrast: RGB distance from the background below which a pixel is background whatever its hue.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected uint8 frames [T, H, W, 3], got {frames.dtype} {frames.shape}")
    t, h, w, _ = frames.shape
    background = np.median(frames.reshape(-1, 3), axis=0)  # [3]
    background_name = _nearest(background, BACKGROUNDS)
    mask = _object_mask(frames, background, min_contrast)  # [T, H, W]
    counts = mask.sum(axis=(1, 2))  # [T]
    present = counts >= min_area * h * w
    if not present.any():
        return ClipContent("none", "none", background_name, None, (0.0, 0.0), 0.0)
    rgb = np.median(frames[mask & present[:, None, None]], axis=0)  # [3] over the object's pixels
    yy, xx = np.mgrid[0:h, 0:w]
    times = np.flatnonzero(present)
    centroids = np.asarray([[yy[mask[i]].mean(), xx[mask[i]].mean()] for i in times])  # [N, 2] (y, x)
    velocity = (0.0, 0.0)
    direction = "none"
    if len(times) >= 2:
        gaps = np.diff(times)[:, None]  # [N-1, 1] frames between consecutive frames with an object
        steps = np.concatenate([_wrapped(np.diff(centroids[:, :1], axis=0), h),
                                _wrapped(np.diff(centroids[:, 1:], axis=0), w)], axis=1) / gaps  # [N-1, 2]
        vy, vx = (float(v) for v in np.median(steps, axis=0))
        velocity = (vy, vx)
        if max(abs(vy), abs(vx)) >= min_speed:
            unit = (int(np.sign(vy)), 0) if abs(vy) > abs(vx) else (0, int(np.sign(vx)))
            direction = next(name for name, d in DIRECTIONS.items() if d == unit)
    return ClipContent(_nearest(rgb, COLOURS), direction, background_name, tuple(float(c) for c in rgb), velocity,
                       float(counts[present].mean() / (h * w)))


def compare(content: ClipContent, caption: str) -> dict[str, bool]:
    """Which of the caption's colour, direction and background the measured ``content`` agrees with; ``"match"``
    is colour and direction both (the moving object's two attributes the demo reports)."""
    want = caption_content(caption)
    result = {"colour": content.colour == want.colour, "direction": content.direction == want.direction,
              "background": content.background == want.background}
    result["match"] = result["colour"] and result["direction"]
    return result


def match_rate(contents: Sequence[ClipContent], captions: Iterable[str]) -> dict[str, float]:
    """Fractions of clips whose measured colour, direction, background and both (``"match"``) agree with the caption."""
    rows = [compare(c, cap) for c, cap in zip(contents, captions, strict=True)]
    if not rows:
        raise ValueError("no clips to compare")
    return {key: sum(r[key] for r in rows) / len(rows) for key in ("colour", "direction", "background", "match")}
