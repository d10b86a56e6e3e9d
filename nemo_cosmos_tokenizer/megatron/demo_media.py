"""Clip sets and pictures for ``scripts/train_tokenizer_demo.py`` (a tokenizer trained on :mod:`.demo`'s clips).

* :func:`write_clip_set`: clips of :func:`.demo.clip_specs` (any seed) as mp4 + ``captions.jsonl``, optionally
  seen through :func:`other_look` - the "other clips" a decoder-only fine-tune adapts to: the same scenes lit from
  one side and overlaid with fixed diagonal stripes, which a tokenizer trained on plain clips has never seen;
* :func:`read_clip_set` / :func:`read_video`: such a set (or one video) back as uint8 frames;
* :func:`contact_sheet`: sampled clips as a PNG grid, some frames of each in a row with its caption under it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from . import demo

__all__ = ["contact_sheet", "other_look", "read_clip_set", "read_video", "write_clip_set"]


def other_look(frames: np.ndarray) -> np.ndarray:
    """uint8 ``[T, H, W, 3]`` -> the same frames lit from the right (gain 0.7 at the left edge to 1.2 at the right)
    with fixed diagonal stripes of amplitude 12 and period ~11 px: a look the plain clips never have."""
    h, w = frames.shape[1:3]
    yy, xx = np.mgrid[0:h, 0:w]
    gain = 0.7 + 0.5 * xx / max(w - 1, 1)  # [H, W]
    stripes = 12.0 * np.sin(2 * np.pi * (xx + yy) / 16)  # [H, W]
    out = frames.astype(np.float32) * gain[None, :, :, None] + stripes[None, :, :, None]  # [T, H, W, 3]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def write_clip_set(directory: str | os.PathLike, count: int, *, seed: int, frames: int = 17, size: int = 128,
                   fps: float = 12.0, other: bool = False, workers: int | None = None) -> dict:
    """Write ``count`` clips of ``clip_specs(count, seed)`` (through :func:`other_look` if ``other``) and
    ``captions.jsonl`` into ``directory``; returns ``{"manifest", "captions", "specs"}``."""
    return demo.write_clip_set(directory, count, seed=seed, frames=frames, size=size, fps=fps,
                               look=other_look if other else None, workers=workers)


def read_video(path: str | os.PathLike) -> np.ndarray:
    """Every frame of a video file, uint8 ``[T, H, W, 3]`` (PyAV, as the builder reads it)."""
    from ..media.decode import open_video

    source = open_video(str(path), backend="pyav")
    return source.get_frames(range(source.num_frames))


def read_clip_set(manifest: str | os.PathLike, limit: Optional[int] = None) -> tuple[np.ndarray, list[str]]:
    """The clips of a :func:`write_clip_set` manifest, uint8 ``[N, T, H, W, 3]``, and their captions."""
    rows = [json.loads(line) for line in Path(manifest).read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = rows[:limit] if limit is not None else rows
    return np.stack([read_video(Path(manifest).parent / row["path"]) for row in rows]), [row["text"] for row in rows]


def contact_sheet(clips: Sequence[np.ndarray], captions: Sequence[str], path: str | os.PathLike, *,
                  frames_per_row: int = 9, labels: Optional[Sequence[str]] = None,
                  label_colour: Optional[Callable[[int], tuple[int, int, int]]] = None) -> Path:
    """Write a PNG: one row per clip (``frames_per_row`` frames, evenly spaced, of uint8 ``[T, H, W, 3]``), its
    caption under it and, if given, ``labels[i]`` (e.g. what was measured) after the caption, coloured by
    ``label_colour(i)``."""
    from PIL import Image, ImageDraw

    if not clips:
        raise ValueError("no clips for the contact sheet")
    h, w = clips[0].shape[1:3]
    gap, text_h = 4, 16
    width = frames_per_row * (w + gap) + gap
    row_h = h + text_h + gap
    sheet = Image.new("RGB", (width, len(clips) * row_h + gap), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for i, (clip, caption) in enumerate(zip(clips, captions, strict=True)):
        picks = np.linspace(0, len(clip) - 1, min(frames_per_row, len(clip))).round().astype(int)
        top = gap + i * row_h
        for j, t in enumerate(picks):
            sheet.paste(Image.fromarray(np.ascontiguousarray(clip[t])), (gap + j * (w + gap), top))
        draw.text((gap, top + h + 2), caption, fill=(0, 0, 0))
        if labels is not None:
            x = gap + int(draw.textlength(caption + "   "))
            colour = label_colour(i) if label_colour else (90, 90, 90)
            draw.text((x, top + h + 2), labels[i], fill=colour)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.png")
    sheet.save(tmp)
    tmp.replace(path)
    return path
