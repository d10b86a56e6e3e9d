"""Writing media: uint8 RGB frames as an H.264 video (PyAV) or an image file (Pillow).

One home for what the inference file tools (:mod:`nemo_cosmos_tokenizer.media_files`: ``reconstruct-*``) and the
data pipeline (demo samples, :mod:`nemo_cosmos_tokenizer.data.samples`) write. Files are written under a temporary
name and renamed when complete, so an interrupted write never leaves a file that looks whole. Reading media lives
in :mod:`nemo_cosmos_tokenizer.media`.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Iterable

import numpy as np

__all__ = ["INSTALL_HINT", "write_image", "write_video"]

INSTALL_HINT = 'pip install "nemo-cosmos-tokenizer[data]"'


def write_video(path: str | os.PathLike, frames: np.ndarray | Iterable[np.ndarray], fps: float | None, crf: int = 18,
                *, threads: int | None = None) -> Path:
    """Write uint8 RGB frames (``[T, H, W, 3]`` or an iterable of ``[H, W, 3]``, consumed as they come) as H.264 at
    ``fps`` (24 when unknown; MP4 by default; yuv444p when H or W is odd). ``threads`` pins the encoder's threads
    (``1`` makes the bytes reproducible)."""
    try:
        import av
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(f"writing videos needs PyAV: {INSTALL_HINT}") from err
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = Fraction(fps if fps and fps > 0 else 24.0).limit_denominator(100000)
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise ValueError(f"no frames to write to {path}")
    h, w = first.shape[:2]
    tmp = path.with_name(path.stem + ".partial" + path.suffix)
    with av.open(str(tmp), "w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height = w, h
        # 4:2:0 needs even sizes; odd-sized frames keep full chroma rather than being cropped or padded.
        stream.pix_fmt = "yuv420p" if h % 2 == 0 and w % 2 == 0 else "yuv444p"
        stream.options = {"crf": str(crf), **({"threads": str(threads)} if threads is not None else {})}
        for frame in (first, *frames):
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    os.replace(tmp, path)
    return path


def write_image(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write uint8 ``[H, W, 3]`` with Pillow (JPEG / WebP at quality 95)."""
    try:
        from PIL import Image
    except ImportError as err:  # pragma: no cover
        raise ImportError(f"writing images needs Pillow: {INSTALL_HINT}") from err
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"quality": 95} if path.suffix.lower() in (".jpg", ".jpeg", ".webp") else {}
    tmp = path.with_name(path.stem + ".partial" + path.suffix)
    Image.fromarray(np.ascontiguousarray(image)).save(tmp, **options)
    os.replace(tmp, path)
    return path
