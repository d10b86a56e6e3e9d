"""Score videos against their reconstructions: PSNR, SSIM, LPIPS per frame in batches on the device, and the I3D
features of both sides for rFVD.

:class:`VideoScorer` holds the metric networks (loaded once) and the FVD features of every video scored so far::

    scorer = VideoScorer(EvalConfig(metrics=("psnr", "ssim", "lpips", "fvd")))
    result = scorer.score("clip.mp4", reference, reconstruction)   # uint8 [T, H, W, 3] each
    scorer.fvd()                                                    # over every video scored

Per video (TokenBench's definitions, see :mod:`.metrics`, :mod:`.lpips_vgg`, :mod:`.fvd`): ``psnr`` over all
frames, ``ssim`` / ``lpips`` the means of the per-frame values. Per-frame PSNR, SSIM and LPIPS are kept too.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from .config import EvalConfig
from .fvd import i3d_input, video_features
from .metrics import psnr_from_mse, squared_error_sums, ssim_frames

__all__ = ["VideoResult", "VideoScorer", "lpips_input"]

#: Longest side of the frame thumbnails kept for the report.
THUMBNAIL_SIZE = 256


@dataclass
class VideoResult:
    """The scores of one video (``to_dict`` gives its ``metrics.json`` entry)."""

    name: str
    frames: int
    height: int
    width: int
    psnr: float
    ssim: float | None
    lpips: float | None
    frame_psnr: list[float]
    frame_ssim: list[float] | None
    frame_lpips: list[float] | None
    window_starts: list[int] | None = None
    """First frame of each temporal window of the reconstruction (``None`` when unknown)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """More fields for ``metrics.json`` (source path, reconstruction path, token agreement, ...)."""
    thumbnails: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)
    """The worst-PSNR frame of the reference and of the reconstruction, downscaled (for the report only)."""
    worst_frame: int = 0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "frames": self.frames, "height": self.height, "width": self.width,
                               "psnr": self.psnr}
        if self.ssim is not None:
            out["ssim"] = self.ssim
        if self.lpips is not None:
            out["lpips"] = self.lpips
        out["worst_frame"] = self.worst_frame
        out.update(self.extra)
        if self.window_starts is not None:
            out["window_starts"] = self.window_starts
        out["per_frame"] = {"psnr": self.frame_psnr,
                            **({"ssim": self.frame_ssim} if self.frame_ssim is not None else {}),
                            **({"lpips": self.frame_lpips} if self.frame_lpips is not None else {})}
        return out


def _lpips_table(device: torch.device) -> torch.Tensor:
    """TokenBench's LPIPS input ``2 * (p / 255 - 0.5)``, computed in float64 and cast to float32, for p = 0..255."""
    return (2 * (torch.arange(256, dtype=torch.float64) / 255.0 - 0.5)).to(torch.float32).to(device)


def lpips_input(frames: torch.Tensor) -> torch.Tensor:
    """uint8 ``[N, H, W, 3]`` -> float32 ``[N, 3, H, W]`` in [-1, 1], TokenBench's values."""
    return _lpips_table(frames.device)[frames.permute(0, 3, 1, 2).to(torch.int64)]


def _thumbnail(frame: np.ndarray) -> np.ndarray:
    """The frame with its long side at :data:`THUMBNAIL_SIZE` (bilinear when shrinking, nearest when enlarging, so
    the pixels of small videos stay visible)."""
    from PIL import Image

    h, w = frame.shape[:2]
    scale = THUMBNAIL_SIZE / max(h, w)
    if scale >= 1.0:
        scale = float(int(scale))  # whole-pixel blocks
        if scale == 1.0:
            return frame.copy()
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    method = Image.Resampling.BILINEAR if scale < 1.0 else Image.Resampling.NEAREST
    return np.asarray(Image.fromarray(frame).resize(size, method))


class VideoScorer:
    """Scores video pairs with the metrics of an :class:`EvalConfig` (see the module docstring)."""

    def __init__(self, config: EvalConfig) -> None:
        from ..inference.tokenizers import resolve_device

        self.config = config
        self.device = resolve_device(config.device)
        self.weights: dict[str, dict[str, str]] = {}
        self.lpips = None
        self.detector = None
        if "lpips" in config.metrics:
            from .lpips_vgg import load_lpips

            model, files = load_lpips(config.vgg16_weights, config.lpips_heads)
            self.lpips = model.to(self.device)
            self.weights.update(files)
        if "fvd" in config.metrics:
            from .fvd import load_i3d

            self.detector, info = load_i3d(config.i3d_weights, self.device)
            self.weights["i3d"] = info
        self.real_features: list[torch.Tensor] = []
        self.fake_features: list[torch.Tensor] = []
        self.fvd_names: list[str] = []

    def _numerics(self):
        """Exact float32 convolutions (no TF32) unless the config allows TF32."""
        if self.device.type != "cuda":
            return contextlib.nullcontext()
        cudnn = torch.backends.cudnn
        return cudnn.flags(enabled=cudnn.enabled, benchmark=cudnn.benchmark, deterministic=cudnn.deterministic,
                           allow_tf32=self.config.allow_tf32)

    @torch.no_grad()
    def score(
        self,
        name: str,
        reference: np.ndarray | torch.Tensor,
        reconstruction: np.ndarray | torch.Tensor,
        *,
        window_starts: Sequence[int] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> VideoResult:
        """Scores of one video: ``reference`` and ``reconstruction`` uint8 ``[T, H, W, 3]`` of the same shape."""
        ref, rec = (v if isinstance(v, torch.Tensor) else torch.as_tensor(np.asarray(v))
                    for v in (reference, reconstruction))
        if ref.shape != rec.shape:
            raise ValueError(f"{name}: the reconstruction has shape {tuple(rec.shape)}, the input {tuple(ref.shape)} "
                             "(frames, height, width and channels must match)")
        if ref.dtype != torch.uint8 or rec.dtype != torch.uint8 or ref.ndim != 4 or ref.shape[-1] != 3:
            raise ValueError(f"{name}: expected uint8 frames [T, H, W, 3], got {ref.dtype} {tuple(ref.shape)}")
        metrics = self.config.metrics
        t, h, w, _ = ref.shape
        sse = torch.zeros(t, dtype=torch.int64)
        ssim = torch.zeros(t, dtype=torch.float64) if "ssim" in metrics else None
        lpips = torch.zeros(t, dtype=torch.float64) if self.lpips is not None else None
        step = max(1, self.config.batch_frames)
        with self._numerics():
            for s in range(0, t, step):
                a = ref[s:s + step].to(self.device, non_blocking=True)  # [n, H, W, 3] uint8
                b = rec[s:s + step].to(self.device, non_blocking=True)
                sse[s:s + len(a)] = squared_error_sums(a, b).cpu()
                if ssim is not None:
                    ssim[s:s + len(a)] = ssim_frames(a, b).cpu()
                if lpips is not None:
                    lpips[s:s + len(a)] = self.lpips(lpips_input(a), lpips_input(b)).to(torch.float64).cpu()
            if self.detector is not None:
                self._add_fvd(name, ref, rec)
        pixels = h * w * 3
        mse = float(sse.sum()) / (t * pixels)  # exact: the integer sum of squares over every frame
        frame_psnr = [psnr_from_mse(int(v) / pixels) for v in sse]
        worst = int(np.argmin(frame_psnr))
        ref_np, rec_np = ref[worst].cpu().numpy(), rec[worst].cpu().numpy()
        return VideoResult(
            name=name, frames=t, height=h, width=w,
            psnr=psnr_from_mse(mse),
            ssim=float(ssim.mean()) if ssim is not None else None,  # mean over frames, as np.mean of a list
            lpips=float(lpips.mean()) if lpips is not None else None,
            frame_psnr=frame_psnr,
            frame_ssim=ssim.tolist() if ssim is not None else None,
            frame_lpips=lpips.tolist() if lpips is not None else None,
            window_starts=list(window_starts) if window_starts is not None else None,
            extra=dict(extra or {}),
            thumbnails=(_thumbnail(ref_np), _thumbnail(rec_np)),
            worst_frame=worst,
        )

    def _add_fvd(self, name: str, ref: torch.Tensor, rec: torch.Tensor) -> None:
        frames = self.config.fvd_frames
        # Real and reconstructed clip in one batch of two: [2, 3, T, 224, 224].
        videos = torch.stack([i3d_input(ref[:frames].to(self.device), frames),
                              i3d_input(rec[:frames].to(self.device), frames)])
        features = video_features(self.detector, videos).cpu()  # [2, D]
        self.real_features.append(features[0])
        self.fake_features.append(features[1])
        self.fvd_names.append(name)

    def fvd(self) -> dict[str, Any] | None:
        """rFVD over every video scored (``None`` without the ``fvd`` metric); ``value`` is ``None`` (with a
        ``note``) for fewer than 2 videos."""
        if self.detector is None:
            return None
        from .fvd import frechet_distance

        n = len(self.real_features)
        out: dict[str, Any] = {"videos": n, "frames": self.config.fvd_frames}
        if n < 2:
            out.update(value=None, note="rFVD needs at least 2 videos")
            return out
        value = frechet_distance(torch.stack(self.real_features), torch.stack(self.fake_features))
        out["value"] = value if math.isfinite(value) else None
        return out
