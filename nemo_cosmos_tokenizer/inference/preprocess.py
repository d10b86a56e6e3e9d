"""Pre- and post-processing around the tokenizer networks.

Pixels travel as ``uint8`` channel-last arrays (``[B, H, W, 3]`` images, ``[B, T, H, W, 3]`` videos), the
networks take channel-first floats in ``[-1, 1]``. This module converts between the two, pads to the sizes a
model can encode exactly, crops back, and cuts long videos into temporal windows.

Padding rules (see :func:`pad_spatial`, :func:`pad_frames`):

* H and W are padded with black (zeros) to the model's own spatial multiple, split top/left =
  ``floor(pad / 2)`` and the rest bottom/right, as the reference does (the reference always pads to 16).
* Frames are padded to ``1 + k * t`` (``t`` = the model's temporal compression) by repeating the **last** frame.
  The video networks are causal, so frames appended at the end cannot change the latents of the real frames in
  front of them. (The reference pads to ``1 + 8k`` for every model and splits the replicated frames between front
  and back, which shifts the causal first frame.)
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

__all__ = [
    "crop",
    "frames_to_encode",
    "pad_frames",
    "pad_spatial",
    "spatial_padding",
    "temporal_windows",
    "to_uint8",
    "to_unit_range",
]


def to_unit_range(pixels: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 channel-last pixels -> channel-first values in ``[-1, 1]``.

    ``[B, H, W, 3]`` -> ``[B, 3, H, W]``; ``[B, T, H, W, 3]`` -> ``[B, 3, T, H, W]``. The value of pixel ``p`` is
    ``2 * (p / 255) - 1`` computed in float64 and then cast to ``dtype`` (the reference's arithmetic, so the values
    are those of the conformance inputs). Stays on the device of ``pixels``: move uint8 pixels to the GPU before
    calling this (4x less traffic than floats).
    """
    if pixels.dtype != torch.uint8:
        raise TypeError(f"expected uint8 pixels, got {pixels.dtype}")
    if pixels.ndim not in (4, 5) or pixels.shape[-1] != 3:
        raise ValueError(f"expected [B, H, W, 3] or [B, T, H, W, 3] RGB pixels, got shape {tuple(pixels.shape)}")
    x = pixels.movedim(-1, 1)  # [B, 3, (T), H, W]
    # A 256-entry table of exactly those values, gathered by pixel: no float64 temporary of the whole batch
    # (8 bytes a pixel, the largest cost of this step for 720p batches on the GPU); same values bit for bit.
    return _unit_range_table(x.device, dtype)[x.to(torch.int32, memory_format=torch.contiguous_format)]


_UNIT_RANGE_TABLES: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}


def _unit_range_table(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """``2 * (p / 255) - 1`` for p = 0..255, computed in float64 and cast to ``dtype``, on ``device`` (cached)."""
    key = (device, dtype)
    if key not in _UNIT_RANGE_TABLES:
        table = torch.arange(256, dtype=torch.float64) / 255.0 * 2.0 - 1.0
        _UNIT_RANGE_TABLES[key] = table.to(dtype).to(device)
    return _UNIT_RANGE_TABLES[key]


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Channel-first values in ``[-1, 1]`` -> uint8 channel-last pixels (inverse of :func:`to_unit_range`).

    ``[B, 3, (T), H, W]`` -> ``[B, (T), H, W, 3]``. Values are clamped, then rounded half up
    (``uint8(v * 255 + 0.5)``), as the reference does. Stays on the device of ``x``.
    """
    if x.ndim not in (4, 5):
        raise ValueError(f"expected [B, 3, H, W] or [B, 3, T, H, W], got shape {tuple(x.shape)}")
    unit = ((x.float() + 1.0) / 2.0).clamp_(0.0, 1.0)
    return (unit * 255.0 + 0.5).to(torch.uint8).movedim(1, -1).contiguous()


def spatial_padding(height: int, width: int, multiple: int) -> tuple[int, int, int, int]:
    """``(top, bottom, left, right)`` padding that makes ``height x width`` multiples of ``multiple``."""
    pad_h = -height % multiple
    pad_w = -width % multiple
    return pad_h // 2, pad_h - pad_h // 2, pad_w // 2, pad_w - pad_w // 2


def pad_spatial(pixels: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[slice, slice]]:
    """Zero-pad channel-last pixels ``[..., H, W, C]`` so H and W are multiples of ``multiple``.

    Returns the padded tensor and the ``(rows, cols)`` slices that crop it back (see :func:`crop`).
    """
    height, width = pixels.shape[-3], pixels.shape[-2]
    top, bottom, left, right = spatial_padding(height, width, multiple)
    window = (slice(top, top + height), slice(left, left + width))
    if top == bottom == left == right == 0:
        return pixels, window
    # F.pad pads the last dims first: (C: none, W: left/right, H: top/bottom).
    padded = torch.nn.functional.pad(pixels, (0, 0, left, right, top, bottom))
    return padded, window


def crop(pixels: torch.Tensor, window: tuple[slice, slice]) -> torch.Tensor:
    """Crop channel-last pixels ``[..., H, W, C]`` back to the ``window`` returned by :func:`pad_spatial`."""
    rows, cols = window
    return pixels[..., rows, cols, :]


def frames_to_encode(num_frames: int, temporal_compression: int) -> int:
    """Smallest ``1 + k * temporal_compression`` that is ``>= num_frames``."""
    if num_frames < 1:
        raise ValueError(f"a video needs at least one frame, got {num_frames}")
    t = temporal_compression
    return 1 + -(-(num_frames - 1) // t) * t


def pad_frames(pixels: torch.Tensor, temporal_compression: int) -> torch.Tensor:
    """Repeat the last frame of ``[B, T, ...]`` until T is ``1 + k * temporal_compression``.

    Crop back with ``out[:, :T]``. Appending (not prepending) keeps the causal encoding of the real frames exact.
    """
    frames = pixels.shape[1]
    target = frames_to_encode(frames, temporal_compression)
    if target == frames:
        return pixels
    last = pixels[:, -1:].expand(-1, target - frames, *pixels.shape[2:])
    return torch.cat([pixels, last], dim=1)


def temporal_windows(num_frames: int, window: int | None) -> list[tuple[int, int]]:
    """Cut ``num_frames`` frames into consecutive non-overlapping ``[start, stop)`` windows of ``window`` frames.

    The last window may be shorter (down to one frame), as in the reference. ``window=None`` (or ``<= 0``) gives
    one window over the whole clip.
    """
    if num_frames < 1:
        raise ValueError(f"a video needs at least one frame, got {num_frames}")
    if window is None or window <= 0 or window >= num_frames:
        return [(0, num_frames)]
    return [(start, min(start + window, num_frames)) for start in range(0, num_frames, window)]


def as_uint8_array(array: np.ndarray | torch.Tensor, ndim: int, layout: str) -> torch.Tensor:
    """Check a uint8 channel-last batch and return it as a CPU tensor (no copy for numpy input)."""
    if isinstance(array, np.ndarray):
        tensor = torch.from_numpy(np.ascontiguousarray(array))
    elif isinstance(array, torch.Tensor):
        tensor = array
    else:
        raise TypeError(f"expected a numpy array or tensor of uint8 pixels ({layout}), got {type(array).__name__}")
    if tensor.dtype != torch.uint8:
        raise TypeError(f"expected uint8 pixels ({layout}), got {tensor.dtype}; convert with .astype(np.uint8)")
    if tensor.ndim != ndim or tensor.shape[-1] != 3:
        raise ValueError(f"expected {layout} uint8 RGB pixels, got shape {tuple(tensor.shape)}")
    return tensor


def group_by_length(windows: Sequence[tuple[int, int]], temporal_compression: int) -> dict[int, list[int]]:
    """Indices of ``windows`` grouped by the padded frame count they encode with (equal shapes batch together)."""
    groups: dict[int, list[int]] = {}
    for i, (start, stop) in enumerate(windows):
        groups.setdefault(frames_to_encode(stop - start, temporal_compression), []).append(i)
    return groups
