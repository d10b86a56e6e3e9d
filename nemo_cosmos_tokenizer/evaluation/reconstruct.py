"""Reading inputs for evaluation, and reconstructing them with a tokenizer (keeping the discrete tokens).

* :func:`read_frames`: every frame of a video (PyAV or decord through :mod:`nemo_cosmos_tokenizer.media`) or
  an image as a one-frame video, optionally with TokenBench's preprocessing.
* :func:`load_tokenizer`: a released name, a local folder or a built-in (``tiny-random-dv8x16x16``) as the inference
  API's tokenizer (video or image family), with the precision, backend and fast path asked for.
* :func:`reconstruct`: uint8 frames -> uint8 reconstruction (+ FSQ indices for discrete tokenizers), window by window
  (as ``reconstruct-videos``) or as one exactly streamed causal sequence.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import ReconstructionConfig

__all__ = ["Frames", "Reconstruction", "load_tokenizer", "read_frames", "reconstruct", "tokenbench_preprocess"]

#: TokenBench's preprocessing: at most this many seconds (but at least TOKENBENCH_MIN_FRAMES frames)...
TOKENBENCH_SECONDS = 10
TOKENBENCH_MIN_FRAMES = 300
#: ... and a short side of at most this many pixels.
TOKENBENCH_MAX_SHORT_SIDE = 1080


@dataclass
class Frames:
    frames: np.ndarray
    """uint8 ``[T, H, W, 3]``."""
    fps: float | None


def _is_image(path: str) -> bool:
    from ..data.manifest import IMAGE_EXTENSIONS

    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def read_frames(path: str | os.PathLike, *, backend: str = "pyav", max_frames: int | None = None,
                tokenbench: bool = False) -> Frames:
    """The frames of a video (or an image as one frame). Raises :class:`~nemo_cosmos_tokenizer.data.MediaError`
    for missing or unreadable files.

    ``tokenbench``: TokenBench's preprocessing (:func:`tokenbench_preprocess`); ``max_frames``: keep the first ones.
    """
    from ..media.decode import open_video
    from ..media.failures import MediaError
    from ..media.images import load_image

    path = str(path)
    if not os.path.exists(path):
        raise MediaError("missing", f"no such file: {path}")
    if os.path.isdir(path) or os.path.getsize(path) == 0:
        raise MediaError("empty_file" if not os.path.isdir(path) else "unreadable",
                         f"{path} is {'a directory' if os.path.isdir(path) else 'empty'}")
    if _is_image(path):
        frames, fps = load_image(path)[None], None
    else:
        source = open_video(path, backend=backend)
        count = source.num_frames if max_frames is None else min(source.num_frames, max_frames)
        if tokenbench:
            count = min(count, max(math.ceil(source.fps * TOKENBENCH_SECONDS), TOKENBENCH_MIN_FRAMES))
        frames, fps = source.get_frames(range(count)), source.fps or None
    if tokenbench:
        frames = tokenbench_preprocess(frames, fps)
    elif max_frames is not None:
        frames = frames[:max_frames]
    return Frames(np.ascontiguousarray(frames), fps)


def tokenbench_preprocess(frames: np.ndarray, fps: float | None) -> np.ndarray:
    """TokenBench's ``preprocessing_script.py``: the first ``max(ceil(10 * fps), 300)`` frames, and a short side
    above 1080 downscaled to 1080 (long side ``int(long * 1080 / short + 0.5)``) with Pillow's Lanczos filter
    (mediapy's ``resize_video``). TokenBench then writes H.264, whose loss is not reproduced here."""
    if fps:
        frames = frames[: max(math.ceil(fps * TOKENBENCH_SECONDS), TOKENBENCH_MIN_FRAMES)]
    h, w = frames.shape[1:3]
    if min(h, w) <= TOKENBENCH_MAX_SHORT_SIDE:
        return frames
    from PIL import Image

    s = TOKENBENCH_MAX_SHORT_SIDE
    new_h, new_w = (s, int(w * s / h + 0.5)) if h <= w else (int(h * s / w + 0.5), s)
    return np.stack([np.asarray(Image.fromarray(f).resize((new_w, new_h), Image.Resampling.LANCZOS)) for f in frames])


def resize_short_side(frames: np.ndarray, short_size: int) -> np.ndarray:
    """``reconstruct-videos --short-size``: short side to ``short_size``, long side ``int(long * s / short + 0.5)``
    bumped to even, antialiased bilinear (:func:`nemo_cosmos_tokenizer.media.resize.resize_frames`)."""
    from ..media.resize import resize_frames

    h, w = frames.shape[1:3]
    short, long = min(h, w), max(h, w)
    new_long = int(long * short_size / short + 0.5)
    new_long += new_long % 2
    new_h, new_w = (short_size, new_long) if h <= w else (new_long, short_size)
    return frames if (new_h, new_w) == (h, w) else resize_frames(frames, new_h, new_w, mode="crop")


# -------------------------------------------------------------------------------------------------- loading
def _weights_sha256(module: torch.nn.Module) -> str:
    """sha256 over the names, dtypes, shapes and bytes of a module's state_dict (its weights as run)."""
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}\n".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def load_tokenizer(config: ReconstructionConfig):
    """``(tokenizer, description)``: the inference API's :class:`~nemo_cosmos_tokenizer.CausalVideoTokenizer` or
    :class:`~nemo_cosmos_tokenizer.ImageTokenizer` with encoder and decoder, and what ``metrics.json`` records
    about it (name, family, config, dtype, device, backend, fast, weights sha256)."""
    from ..inference.tokenizers import resolve_device
    from ..registry import UnknownModelError, resolve_name

    device = resolve_device(config.device)
    dtype = config.dtype if config.dtype != "auto" else ("bfloat16" if device.type == "cuda" else "float32")
    name = config.tokenizer
    known = Path(name).expanduser().exists()
    if not known:
        try:
            resolve_name(name)
            known = True
        except UnknownModelError:
            known = "/" in name  # another Hub repo id: from_pretrained says whether it exists
    if known:
        tokenizer = _from_pretrained(config, device, dtype)
    else:
        from ..data import load_video_tokenizer  # built-ins (no download); raises for unknown names

        if config.backend == "jit":
            raise ValueError(f"{name} is a built-in tokenizer: it has no TorchScript files (drop backend='jit')")
        tokenizer = load_video_tokenizer(name, device, dtype, parts=("encoder", "decoder")).inference
    weights_sha256 = _weights_sha256(tokenizer)  # the plain weights (the fast module holds them in another layout)
    if config.fast:
        from ..fast import optimize

        if tokenizer.network is None:
            raise ValueError("the fast path needs the native network, not NVIDIA's .jit modules (drop --backend jit)")
        tokenizer.network = optimize(tokenizer.network, compile=device.type == "cuda")
    description = {
        "name": tokenizer.name or name,
        "requested": name,
        "family": tokenizer.config.family if tokenizer.config is not None else None,
        "config": tokenizer.config.to_dict() if tokenizer.config is not None else None,
        "backend": tokenizer.mode,
        "dtype": str(tokenizer.dtype).removeprefix("torch."),
        "device": str(tokenizer.device),
        "fast": bool(config.fast),
        "weights_sha256": weights_sha256,
    }
    return tokenizer, description


def _from_pretrained(config: ReconstructionConfig, device: torch.device, dtype: str):
    from ..hub.resolve import WrongFamilyError
    from ..inference import CausalVideoTokenizer, ImageTokenizer

    kwargs: dict[str, Any] = dict(
        use_pytorch=None if config.backend is None else config.backend == "torch", dtype=dtype, device=device,
        cache_dir=config.cache_dir, revision=config.revision, local_files_only=config.local_files_only,
    )
    try:
        return CausalVideoTokenizer.from_pretrained(config.tokenizer, **kwargs)
    except WrongFamilyError:
        return ImageTokenizer.from_pretrained(config.tokenizer, **kwargs)


# -------------------------------------------------------------------------------------------- reconstruction
@dataclass
class Reconstruction:
    frames: np.ndarray
    """uint8 ``[T, H, W, 3]``, the input's shape."""
    indices: np.ndarray | None
    """Discrete tokenizers: the FSQ indices of every window, int32 (video: ``[t, h, w]`` windows concatenated along
    t; image: ``[T, h, w]``); ``None`` for continuous ones."""
    window_starts: list[int] | None
    """First frame of each window (``None`` for one causal sequence)."""


def _is_video_tokenizer(tokenizer) -> bool:
    from ..inference import CausalVideoTokenizer

    return isinstance(tokenizer, CausalVideoTokenizer)


@torch.no_grad()
def reconstruct(tokenizer, frames: np.ndarray, config: ReconstructionConfig) -> Reconstruction:
    """Encode and decode uint8 ``frames`` ``[T, H, W, 3]`` with ``tokenizer`` (see the module docstring).

    Padding as the inference API's: H, W to multiples of the spatial compression with black (cropped back), each
    window to ``1 + k * t`` frames by repeating its last frame (dropped after decoding).
    """
    from ..inference import preprocess as pp

    pixels = torch.from_numpy(np.ascontiguousarray(frames))  # [T, H, W, 3] uint8
    t_total = pixels.shape[0]
    if not _is_video_tokenizer(tokenizer):
        recon, indices = [], []
        for s in range(0, t_total, max(1, config.batch_windows)):
            out, idx = _autoencode(tokenizer, pixels[s:s + config.batch_windows], pp)  # frames as images
            recon.append(out)
            indices.append(idx)
        return Reconstruction(torch.cat(recon).numpy(), None if indices[0] is None else torch.cat(indices).numpy(),
                              None)
    t = tokenizer.temporal_multiple
    if config.temporal_mode == "streaming":
        chunk = max(t, config.chunk_frames // t * t)
        padded, window = pp.pad_spatial(pixels[None], tokenizer.spatial_multiple)  # [1, T, H', W', 3]
        latent = tokenizer.encode_uint8(padded, mode="streaming", chunk_frames=chunk)[0]
        decoded = tokenizer.decode(latent, mode="streaming")  # [1, 3, T', H', W'], T' >= T
        recon = pp.crop(pp.to_uint8(decoded)[0, :t_total], window).cpu()
        indices = latent[0].to(torch.int32).numpy() if tokenizer.is_discrete else None
        return Reconstruction(recon.contiguous().numpy(), indices, None)
    windows = pp.temporal_windows(t_total, config.temporal_window or None)
    recon = torch.empty_like(pixels)
    window_indices: list[torch.Tensor | None] = [None] * len(windows)
    groups: dict[int, list[int]] = {}
    for i, (a, b) in enumerate(windows):
        groups.setdefault(pp.frames_to_encode(b - a, t), []).append(i)
    for members in groups.values():  # windows of equal padded length run together
        for g in range(0, len(members), config.batch_windows):
            batch = members[g:g + config.batch_windows]
            clips = torch.stack([pp.pad_frames(pixels[None, windows[j][0]:windows[j][1]], t)[0] for j in batch])
            out, idx = _autoencode(tokenizer, clips, pp)  # [n, T', H, W, 3]
            for k, j in enumerate(batch):
                a, b = windows[j]
                recon[a:b] = out[k, : b - a]
                if idx is not None:
                    window_indices[j] = idx[k]
    indices = None
    if window_indices[0] is not None:
        indices = torch.cat(window_indices).numpy()  # [t, h, w]
    return Reconstruction(recon.numpy(), indices, [a for a, _ in windows])


def _autoencode(tokenizer, pixels: torch.Tensor, pp) -> tuple[torch.Tensor, torch.Tensor | None]:
    """uint8 ``[N, (T), H, W, 3]`` (CPU) -> uint8 reconstruction of the same shape (CPU) and int32 indices (CPU)
    for discrete tokenizers."""
    padded, window = pp.pad_spatial(pixels, tokenizer.spatial_multiple)
    x = pp.to_unit_range(padded.to(tokenizer.device, non_blocking=True), tokenizer.dtype)  # [N, 3, (T), H', W']
    encoded = tokenizer.encode(x)
    decoded = tokenizer.decode(encoded[0])
    recon = pp.crop(pp.to_uint8(decoded), window).cpu()
    indices = encoded[0].to(torch.int32).cpu() if tokenizer.is_discrete else None
    return recon, indices
