"""PSNR and SSIM exactly as TokenBench computes them, in PyTorch, batched over frames on any device.

TokenBench (``token_bench/metrics_cli.py``) compares decoded uint8 frames ``[T, H, W, 3]``:

* **PSNR** per video: one MSE over every pixel of every frame, ``20 * log10(255 / (sqrt(MSE) + eps))`` with
  ``eps = float32 eps`` (a finite value for identical videos); videos are then averaged.
* **SSIM** per frame: ``skimage.metrics.structural_similarity(x, y, data_range=255, channel_axis=-1)`` with its
  defaults (7x7 uniform window, ``K1 = 0.01``, ``K2 = 0.03``, sample covariance ``N / (N - 1)``, the mean taken over
  the image cropped by the window radius, 3 px, on each side), per channel and averaged over channels; then the mean
  over frames, then over videos.

Here the squared error is summed exactly in int64, and SSIM runs in float64 (skimage runs in float64 for float64 or
integer input): the cropped region is exactly the set of windows that lie inside the image, so a "valid" box
filter (window sums without padding) gives skimage's values there without its reflect padding. The results
agree with scikit-image to about 1e-12 relative (tests check 1e-6 on real decoded video).
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = [
    "FLOAT32_EPS",
    "SSIM_WINDOW",
    "psnr_from_mse",
    "squared_error_sums",
    "ssim_frames",
]

FLOAT32_EPS = float(np.finfo(np.float32).eps)
SSIM_WINDOW = 7
_K1, _K2 = 0.01, 0.03
_DATA_RANGE = 255.0


def _check_pair(x: torch.Tensor, y: torch.Tensor) -> None:
    if x.shape != y.shape:
        raise ValueError(f"the videos differ in shape: {tuple(x.shape)} vs {tuple(y.shape)}")
    if x.dtype != torch.uint8 or y.dtype != torch.uint8:
        raise TypeError(f"expected uint8 frames, got {x.dtype} and {y.dtype}")
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"expected frames [N, H, W, 3], got {tuple(x.shape)}")


def squared_error_sums(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Sum of squared differences of each frame, exact: uint8 ``[N, H, W, 3]`` pairs -> int64 ``[N]``."""
    _check_pair(x, y)
    diff = x.to(torch.int32) - y.to(torch.int32)  # [N, H, W, 3], |d| <= 255
    return (diff * diff).flatten(1).sum(dim=1, dtype=torch.int64)


def psnr_from_mse(mse: float) -> float:
    """TokenBench's ``20 * log10(255 / (sqrt(mse) + float32 eps))`` (in float64)."""
    return 20.0 * math.log10(_DATA_RANGE / (math.sqrt(mse) + FLOAT32_EPS))


def _window_sums(maps: torch.Tensor, dim: int) -> torch.Tensor:
    """Sums of every run of 7 consecutive values along ``dim`` (size ``n`` -> ``n - 6``), by differences of a
    running sum as scipy's ``uniform_filter1d`` computes them (float64: the prefix sums of 8-bit squares stay below
    2**53 / 1e5, so the window sums are exact to ~1e-9, far below SSIM's constants)."""
    prefix = torch.cumsum(maps, dim=dim)
    n = maps.shape[dim]
    upper = prefix.narrow(dim, SSIM_WINDOW - 1, n - SSIM_WINDOW + 1)
    lower = prefix.narrow(dim, 0, n - SSIM_WINDOW)
    first = upper.narrow(dim, 0, 1)
    return torch.cat([first, upper.narrow(dim, 1, n - SSIM_WINDOW) - lower], dim=dim)


def _box_mean(maps: torch.Tensor) -> torch.Tensor:
    """7x7 box means over every window inside the image: ``[N, C, H, W]`` -> ``[N, C, H - 6, W - 6]``.

    Separable (rows, then columns), like scipy's ``uniform_filter``; the windows that would reach outside the image
    are exactly the ones skimage crops away, so no padding is needed.
    """
    return _window_sums(_window_sums(maps, 2), 3) / (SSIM_WINDOW * SSIM_WINDOW)


def ssim_frames(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """SSIM of each frame pair (skimage's ``structural_similarity(..., data_range=255, channel_axis=-1)``).

    ``x``, ``y``: uint8 ``[N, H, W, 3]`` on any device (H, W >= 7). Returns float64 ``[N]`` on that device.
    Memory: about 15 float64 maps of ``[N, 3, H, W]``; pass a few frames at a time for large frames.
    """
    _check_pair(x, y)
    n, h, w, _ = x.shape
    if h < SSIM_WINDOW or w < SSIM_WINDOW:
        raise ValueError(f"SSIM needs frames of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels, got {h}x{w}")
    a = x.permute(0, 3, 1, 2).to(torch.float64)  # [N, 3, H, W]
    b = y.permute(0, 3, 1, 2).to(torch.float64)
    # One pass over the five maps: [N, 15, H, W] (x, y, xx, yy, xy per channel).
    means = _box_mean(torch.cat([a, b, a * a, b * b, a * b], dim=1))
    ux, uy, uxx, uyy, uxy = means.split(3, dim=1)  # each [N, 3, H - 6, W - 6]
    cov_norm = SSIM_WINDOW**2 / (SSIM_WINDOW**2 - 1)  # sample covariance, skimage's default
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    c1 = (_K1 * _DATA_RANGE) ** 2
    c2 = (_K2 * _DATA_RANGE) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.mean(dim=(2, 3)).mean(dim=1)  # per channel, then over channels (skimage's order): [N]
