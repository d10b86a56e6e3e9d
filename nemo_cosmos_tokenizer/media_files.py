"""Tokenize and reconstruct media files: the library behind the ``reconstruct-*`` and ``encode`` commands.

* :func:`expand_inputs`: globs and paths -> a sorted, de-duplicated list (first occurrence wins, order kept).
* :func:`read_media`: an image (``[1, H, W, 3]``) or every frame of a video (``[T, H, W, 3]``) as uint8, with the
  video's frame rate. Reading uses :mod:`nemo_cosmos_tokenizer.media` (PyAV, display rotation applied,
  largest video stream; Pillow for images with EXIF orientation, CMYK, alpha, 16-bit). Unreadable files raise
  :class:`~nemo_cosmos_tokenizer.media.failures.MediaError` with a reason code.
* :func:`write_video` (H.264 through PyAV, at the given frame rate), :func:`write_image` (Pillow): from
  :mod:`nemo_cosmos_tokenizer.media_writing`, which the data pipeline uses too.

This module sits above both :mod:`~nemo_cosmos_tokenizer.inference` and :mod:`~nemo_cosmos_tokenizer.data` (it
reads media with the data pipeline's readers and runs the inference API), so neither imports the other through it.
It was ``nemo_cosmos_tokenizer.inference.files``; that forwarding module is gone, since forwarding from the
inference package up to this module was itself an import cycle between the two parts.
* :func:`reconstruct_file`, :func:`encode_file`: one input each; :func:`process_files` runs one of them over many
  inputs with a progress bar and collects failures instead of stopping.
"""

from __future__ import annotations

import glob
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch

from .inference.tokenizers import CausalVideoTokenizer, ImageTokenizer, _CosmosInference
from .interrupts import raise_if_interrupted
from .media.decode import open_video
from .media.failures import MediaError
from .media.images import load_image
from .media.resize import resize_frames
from .media_writing import write_image, write_video

__all__ = [
    "FileFailure",
    "Media",
    "ProcessReport",
    "encode_file",
    "expand_inputs",
    "process_files",
    "read_media",
    "reconstruct_file",
    "resize_short_side",
    "write_image",
    "write_video",
]

#: Image formats written with the input's extension; others are written as PNG.
_WRITABLE_IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}
#: Frames per network call when an image tokenizer processes a video frame by frame.
_IMAGE_BATCH = 16


@dataclass
class Media:
    """Frames of one input file."""

    frames: np.ndarray
    """uint8 ``[T, H, W, 3]`` RGB (``T = 1`` for images)."""

    fps: float | None
    """Frame rate of a video (average rate for variable-rate files); ``None`` for images."""

    is_image: bool

    frames_in_file: int | None = None
    """Frames the video holds; more than ``len(frames)`` when its data turns corrupt part-way (only the decodable
    head is used)."""


def expand_inputs(patterns: Iterable[str]) -> list[str]:
    """Expand globs (``*``, ``?``, ``[...]``, ``**``) and keep plain paths; each pattern's matches sorted, the whole
    list de-duplicated keeping the first occurrence. A pattern matching nothing is kept as is (reported later as
    missing)."""
    out: dict[str, None] = {}
    for pattern in patterns:
        pattern = os.path.expanduser(str(pattern))
        if glob.has_magic(pattern):
            matches = sorted(p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p))
            if not matches:
                out.setdefault(pattern, None)
            for match in matches:
                out.setdefault(match, None)
        else:
            out.setdefault(pattern, None)
    return list(out)


def is_image_path(path: str | os.PathLike) -> bool:
    from .data.manifest import IMAGE_EXTENSIONS

    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def read_media(path: str | os.PathLike, *, images_only: bool = False) -> Media:
    """Read an image or every frame of a video (see the module docstring). Raises ``MediaError``."""
    path = str(path)
    if not os.path.exists(path):
        raise MediaError("missing", f"no such file: {path}")
    if os.path.isdir(path):
        raise MediaError("unreadable", f"{path} is a directory")
    if os.path.getsize(path) == 0:
        raise MediaError("empty_file", "the file has zero bytes")
    if is_image_path(path):
        return Media(load_image(path)[None], None, True)
    if images_only:
        raise MediaError("unreadable", "not an image file (use reconstruct-videos for videos)")
    source = open_video(path, backend="pyav")
    try:
        frames = source.get_frames(range(source.num_frames))
    except MediaError as err:
        if not err.decodable_frames:
            raise
        # Corrupt from some frame on: use the decodable head, as the dataset builder does (data/video.py's policy).
        frames = source.get_frames(range(err.decodable_frames))
        logging.getLogger(__name__).warning("%s: %s; using those %d of %d frames", path, err.message,
                                            err.decodable_frames, source.num_frames)
    return Media(frames, source.fps or None, False, source.num_frames)


def resize_short_side(frames: np.ndarray, short_size: int) -> np.ndarray:
    """Resize ``[T, H, W, 3]`` so the short side is ``short_size`` (the reference's rule: the long side is
    ``int(long * short_size / short + 0.5)`` bumped to the next even number); antialiased bilinear, no crop."""
    if short_size < 1:
        raise ValueError(f"short_size must be >= 1, got {short_size}")
    h, w = frames.shape[1:3]
    short, long = min(h, w), max(h, w)
    new_long = int(long * short_size / short + 0.5)
    new_long += new_long % 2
    new_h, new_w = (short_size, new_long) if h <= w else (new_long, short_size)
    if (new_h, new_w) == (h, w):
        return frames
    return resize_frames(frames, new_h, new_w, mode="crop")


# -------------------------------------------------------------------------------------------------- per file
def _output_name(path: str, suffix: str, used: set[Path], directory: Path) -> Path:
    stem = Path(path).stem
    candidate = directory / f"{stem}{suffix}"
    if candidate in used:  # e.g. clip.mov and clip.mp4 in one run: keep both
        candidate = directory / f"{stem}_{Path(path).suffix.lstrip('.').lower()}{suffix}"
    used.add(candidate)
    return candidate


def _output_dir(path: str, output_dir: str | os.PathLike | None, default_subdir: str) -> Path:
    return Path(output_dir) if output_dir is not None else Path(path).resolve().parent / default_subdir


def reconstruct_file(
    tokenizer: _CosmosInference,
    path: str,
    *,
    output_dir: str | os.PathLike | None = None,
    short_size: int | None = None,
    temporal_window: int | None = 17,
    batch_windows: int = 4,
    save_input: bool = False,
    _used: set[Path] | None = None,
) -> list[Path]:
    """Reconstruct one image or video; returns the written paths.

    Output: ``<output_dir or <input dir>/reconstructions>/<stem>.mp4`` for videos (H.264 at the input's frame
    rate, same frame count) and ``<stem><ext>`` for images (PNG for formats Pillow cannot write);
    ``save_input`` also writes the (resized) input as ``<stem>_input...``.
    """
    images_only = isinstance(tokenizer, ImageTokenizer)
    media = read_media(path, images_only=images_only)
    frames = media.frames if short_size is None else resize_short_side(media.frames, short_size)
    if isinstance(tokenizer, CausalVideoTokenizer):
        recon = tokenizer(frames[None], temporal_window=temporal_window, batch_windows=batch_windows)[0]
    else:
        recon = np.concatenate([tokenizer(frames[i:i + _IMAGE_BATCH]) for i in range(0, len(frames), _IMAGE_BATCH)])
    directory = _output_dir(path, output_dir, "reconstructions")
    used = _used if _used is not None else set()
    written = []
    if media.is_image:
        ext = Path(path).suffix.lower()
        ext = ext if ext in _WRITABLE_IMAGE_EXTENSIONS else ".png"
        target = _output_name(path, ext, used, directory)
        written.append(write_image(target, recon[0]))
        if save_input:
            written.append(write_image(target.with_name(target.stem + "_input" + ext), frames[0]))
    else:
        target = _output_name(path, ".mp4", used, directory)
        written.append(write_video(target, recon, media.fps))
        if save_input:
            written.append(write_video(target.with_name(target.stem + "_input.mp4"), frames, media.fps))
    return written


def encode_file(
    tokenizer: _CosmosInference,
    path: str,
    *,
    output_dir: str | os.PathLike | None = None,
    short_size: int | None = None,
    temporal_window: int | None = 17,
    batch_windows: int = 4,
    file_format: str = "safetensors",
    tokenizer_name: str | None = None,
    _used: set[Path] | None = None,
) -> list[Path]:
    """Tokenize one image or video and save its indices (discrete) or latent (continuous).

    Saved arrays (batch axis dropped, time axis kept): video tokenizers ``indices`` int32 ``[t, h, w]`` or
    ``latent`` float32 ``[C, t, h, w]`` (windows of ``temporal_window`` frames concatenated along ``t``); image
    tokenizers encode every frame on its own: ``[T, h, w]`` / ``[T, C, h, w]``. ``file_format``:
    ``safetensors`` (``<stem>.safetensors``, metadata in its header) or ``npy`` (``<stem>.npy`` + ``<stem>.json``).
    Output dir: ``output_dir`` or ``<input dir>/tokens``. ``tokenizer_name`` is recorded in the metadata (default:
    the released name, else the family).
    """
    if file_format not in ("safetensors", "npy"):
        raise ValueError(f"file_format must be 'safetensors' or 'npy', got {file_format!r}")
    media = read_media(path)
    frames = media.frames if short_size is None else resize_short_side(media.frames, short_size)
    if isinstance(tokenizer, CausalVideoTokenizer):
        outputs = tokenizer.encode_uint8(frames[None], temporal_window=temporal_window, batch_windows=batch_windows)
        outputs = tuple(o[0] for o in outputs)
    else:
        chunks = [tokenizer.encode_uint8(frames[i:i + _IMAGE_BATCH]) for i in range(0, len(frames), _IMAGE_BATCH)]
        outputs = tuple(torch.cat(parts) for parts in zip(*chunks))
    key = "indices" if tokenizer.is_discrete else "latent"
    array = outputs[0].to(torch.int32 if tokenizer.is_discrete else torch.float32).contiguous()
    config = tokenizer.config
    metadata = {
        "source": str(path),
        "tokenizer": str(tokenizer_name or tokenizer.name or (config.family if config else "unknown")),
        "family": config.family if config else "",
        "kind": "image" if media.is_image else "video",
        "frames": str(frames.shape[0]),
        "frames_in_file": str(media.frames_in_file or frames.shape[0]),
        "height": str(frames.shape[1]),
        "width": str(frames.shape[2]),
        "fps": "" if media.fps is None else repr(media.fps),
        "temporal_window": str(temporal_window or "") if isinstance(tokenizer, CausalVideoTokenizer) else "",
        "spatial_compression": str(tokenizer.spatial_multiple),
        "temporal_compression": str(tokenizer.temporal_multiple),
        "layout": ("t h w" if tokenizer.is_discrete else "c t h w") if isinstance(tokenizer, CausalVideoTokenizer)
        else ("T h w" if tokenizer.is_discrete else "T c h w"),
    }
    directory = _output_dir(path, output_dir, "tokens")
    used = _used if _used is not None else set()
    if file_format == "safetensors":
        from safetensors.torch import save_file

        from .hub.convert import chmod_like_open

        target = _output_name(path, ".safetensors", used, directory)
        target.parent.mkdir(parents=True, exist_ok=True)
        save_file({key: array}, str(target), metadata=metadata)
        chmod_like_open(target)
        return [target]
    target = _output_name(path, ".npy", used, directory)
    target.parent.mkdir(parents=True, exist_ok=True)
    np.save(target, array.numpy())
    sidecar = target.with_suffix(".json")
    sidecar.write_text(json.dumps({"array": key, **metadata}, indent=1) + "\n", encoding="utf-8")
    return [target, sidecar]


# ---------------------------------------------------------------------------------------------- many files
@dataclass
class FileFailure:
    path: str
    reason: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}: {self.message}"


@dataclass
class ProcessReport:
    written: dict[str, list[Path]] = field(default_factory=dict)
    failures: list[FileFailure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def process_files(
    paths: Sequence[str],
    work: Callable[..., list[Path]],
    *,
    progress: bool | None = None,
    on_failure: Callable[[FileFailure], None] | None = None,
    **kwargs,
) -> ProcessReport:
    """Run ``work(path, **kwargs)`` (:func:`reconstruct_file` / :func:`encode_file` with the tokenizer bound) over
    ``paths`` in order, with a tqdm progress bar (``progress=None``: only on a terminal). Unreadable inputs
    (``MediaError``) are collected as failures (and passed to ``on_failure``); other errors propagate."""
    from tqdm import tqdm

    media_error = MediaError
    report = ProcessReport()
    used: set[Path] = set()
    bar = tqdm(paths, unit="file", disable=(None if progress is None else not progress), dynamic_ncols=True)
    for path in bar:
        raise_if_interrupted()  # a Ctrl-C swallowed in a reader's __del__ stops here, between files
        bar.set_postfix_str(os.path.basename(path)[-40:], refresh=False)
        try:
            report.written[path] = work(path, _used=used, **kwargs)
        except media_error as err:
            failure = FileFailure(path, err.reason, err.message)
            report.failures.append(failure)
            if on_failure is not None:
                on_failure(failure)
    return report
