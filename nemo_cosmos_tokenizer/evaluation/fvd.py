"""rFVD as TokenBench computes it: I3D features of the first 300 frames of each video, Fréchet distance in float64.

TokenBench (``token_bench/fvd.py``, ``metrics_cli.py``) per video pair:

* frames ``[:300]`` as ``p / 255`` (computed in float64, cast to float32), ``[3, T, H, W]``;
* short side bilinearly resized to 224 (``align_corners=False``, no antialiasing; the long side
  ``ceil(long * 224 / short)``), centre crop to 224 x 224 (start ``(size - 224) // 2``), then ``2 * (v - 0.5)``;
* StyleGAN-V's I3D TorchScript ``detector(x, rescale=False, resize=False, return_features=True)`` on
  ``[B, 3, T, 224, 224]``: one feature vector per video (400 values);
* over all videos: means and sample covariances (``N - 1``) of the real and of the reconstructed features, and
  ``|mu_r - mu_f|^2 + tr(S_r) + tr(S_f) - 2 * sum(sqrt(eigvals(S_r @ S_f)))`` in float64 (torchmetrics'
  ``_compute_fid``).

The detector is any TorchScript (or ``nn.Module``) with that call signature; tests use a small random one.
"""

from __future__ import annotations

import math
import os

import torch
import torch.nn.functional as F

__all__ = ["FVD_FRAMES", "FVD_SIZE", "frechet_distance", "i3d_input", "load_i3d", "video_features"]

FVD_FRAMES = 300
FVD_SIZE = 224


def _unit_table(device: torch.device) -> torch.Tensor:
    """``p / 255`` for p = 0..255, in float64 and then cast to float32 (TokenBench's ``vid / 255.0`` + ``.float()``)."""
    return (torch.arange(256, dtype=torch.float64) / 255.0).to(torch.float32).to(device)


def i3d_input(frames: torch.Tensor, max_frames: int = FVD_FRAMES, chunk: int = 32) -> torch.Tensor:
    """uint8 ``[T, H, W, 3]`` (any device) -> the detector's float32 ``[3, min(T, max_frames), 224, 224]`` in [-1, 1].

    The resize runs ``chunk`` frames at a time (each frame is resized on its own, so this changes nothing but the
    memory: 300 float32 1080p frames would take 7.5 GB).
    """
    if frames.dtype != torch.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected uint8 frames [T, H, W, 3], got {frames.dtype} {tuple(frames.shape)}")
    frames = frames[:max_frames]
    t, h, w, _ = frames.shape
    scale = FVD_SIZE / min(h, w)
    size = (FVD_SIZE, math.ceil(w * scale)) if h < w else (math.ceil(h * scale), FVD_SIZE)
    table = _unit_table(frames.device)
    top, left = (size[0] - FVD_SIZE) // 2, (size[1] - FVD_SIZE) // 2
    out = torch.empty((3, t, FVD_SIZE, FVD_SIZE), dtype=torch.float32, device=frames.device)
    for s in range(0, t, chunk):
        x = table[frames[s:s + chunk].permute(3, 0, 1, 2).to(torch.int64)]  # [3, n, H, W] in [0, 1]
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)  # [3, n, h', w']
        out[:, s:s + chunk] = (x[:, :, top:top + FVD_SIZE, left:left + FVD_SIZE] - 0.5) * 2
    return out


@torch.no_grad()
def video_features(detector, videos: torch.Tensor) -> torch.Tensor:
    """Detector features of ``videos`` ``[B, 3, T, 224, 224]`` (from :func:`i3d_input`) -> float64 ``[B, D]``."""
    features = detector(videos, rescale=False, resize=False, return_features=True)
    if features.ndim == 1:
        features = features[None]
    return features.to(torch.float64)


def _mean_cov(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    n = features.shape[0]
    mean = features.mean(dim=0)
    centred = features - mean
    return mean, centred.T @ centred / (n - 1)


def frechet_distance(real: torch.Tensor, fake: torch.Tensor) -> float:
    """Fréchet distance between the Gaussians fitted to two feature sets ``[N, D]`` (float64, N >= 2 each).

    ``tr(sqrtm(S_r S_f))`` is the sum of the square roots of the eigenvalues of ``S_r @ S_f`` (real and >= 0 in
    exact arithmetic, as the product of two PSD matrices; rounding leaves tiny imaginary parts, dropped as
    torchmetrics does).
    """
    real, fake = real.to(torch.float64).cpu(), fake.to(torch.float64).cpu()
    if real.shape[0] < 2 or fake.shape[0] < 2:
        raise ValueError(f"FVD needs at least 2 videos on each side, got {real.shape[0]} and {fake.shape[0]}")
    mu_r, cov_r = _mean_cov(real)
    mu_f, cov_f = _mean_cov(fake)
    trace_sqrt = torch.linalg.eigvals(cov_r @ cov_f).sqrt().real.sum()
    value = (mu_r - mu_f).square().sum() + cov_r.trace() + cov_f.trace() - 2 * trace_sqrt
    return float(value)


def load_i3d(path: str | os.PathLike | None = None, device: str | torch.device = "cpu"):
    """The I3D TorchScript (found by :func:`~nemo_cosmos_tokenizer.evaluation.weights.find_weights`), float32 on
    ``device``, and ``{"path", "sha256"}``."""
    from .weights import file_sha256, find_weights

    found = find_weights("i3d", path)
    try:
        detector = torch.jit.load(str(found), map_location=device).eval()
    except RuntimeError as err:
        raise ValueError(f"{found} is not a TorchScript file ({err}); the I3D detector must be StyleGAN-V's "
                         "i3d_torchscript.pt") from err
    for param in detector.parameters():  # ScriptModules have no requires_grad_()
        param.requires_grad_(False)
    return detector, {"path": str(found), "sha256": file_sha256(found)}
