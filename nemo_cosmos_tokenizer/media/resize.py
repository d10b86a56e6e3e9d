"""Resize clips to the target resolution: ``crop`` scales the shortest side to cover the target and centre-crops;
``pad`` fits the longest side inside and pads with black, centred. Bilinear with antialiasing (area-like when
shrinking)."""

from __future__ import annotations

import numpy as np
import torch

from .clips import RESIZE_MODES


def scaled_size(h: int, w: int, height: int, width: int, mode: str) -> tuple[int, int]:
    """The size ``(new_h, new_w)`` a ``[h, w]`` frame is interpolated to before the crop or pad to ``height x width``."""
    if mode == "crop":
        scale = max(height / h, width / w)
        return max(height, round(h * scale)), max(width, round(w * scale))
    if mode == "pad":
        scale = min(height / h, width / w)
        return max(1, min(height, round(h * scale))), max(1, min(width, round(w * scale)))
    raise ValueError(f"resize mode must be one of {RESIZE_MODES}, got {mode!r}")


def resize_frames(frames: np.ndarray, height: int, width: int, mode: str = "crop") -> np.ndarray:
    """Resize uint8 ``[T, H, W, 3]`` to ``[T, height, width, 3]``: cover + centre crop, or fit + centre pad.

    Bilinear with antialiasing (area-like when shrinking), on uint8, frame by frame in small groups to bound memory.
    """
    return resize_clip(torch.from_numpy(np.ascontiguousarray(frames)), height, width, mode).numpy()


def resize_clip(frames: torch.Tensor, height: int, width: int, mode: str = "crop") -> torch.Tensor:
    """:func:`resize_frames` for a uint8 tensor ``[T, H, W, 3]`` on any device.

    On the CPU the interpolation runs on uint8 (PyTorch's exact integer path); other devices have no uint8 kernel,
    so there it runs in float32 and rounds, which can differ from the CPU result by one level at a few pixels.
    """
    t, h, w, _ = frames.shape
    if (h, w) == (height, width):
        return frames
    new_h, new_w = scaled_size(h, w, height, width, mode)
    out = torch.zeros((t, height, width, 3), dtype=torch.uint8, device=frames.device)
    top, left = (new_h - height) // 2, (new_w - width) // 2
    on_cpu = frames.device.type == "cpu"
    for g in range(0, t, 8):
        x = frames[g : g + 8].permute(0, 3, 1, 2)  # [n, 3, H, W]
        if (new_h, new_w) != (h, w):
            x = x.contiguous(memory_format=torch.channels_last)
            x = x if on_cpu else x.float()
            x = torch.nn.functional.interpolate(x, size=(new_h, new_w), mode="bilinear", antialias=True, align_corners=False)
            x = x if on_cpu else x.round_().clamp_(0, 255).to(torch.uint8)
        x = x.permute(0, 2, 3, 1)  # [n, new_h, new_w, 3]
        if mode == "crop":
            out[g : g + 8] = x[:, top : top + height, left : left + width]
        else:
            out[g : g + 8, -top : -top + new_h, -left : -left + new_w] = x
    return out
