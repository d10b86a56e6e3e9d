"""Typed settings of an evaluation (frozen dataclasses; load from YAML with :func:`load_eval_config`)."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, Optional, Tuple

__all__ = ["METRICS", "TEMPORAL_MODES", "EvalConfig", "ReconstructionConfig", "load_eval_config"]

METRICS = ("psnr", "ssim", "lpips", "fvd")
TEMPORAL_MODES = ("windows", "streaming")


@dataclass(frozen=True)
class EvalConfig:
    """What to measure and how (TokenBench's definitions, see :mod:`nemo_cosmos_tokenizer.evaluation`)."""

    metrics: Tuple[str, ...] = ("psnr", "ssim")
    """Any of ``psnr``, ``ssim``, ``lpips`` (needs VGG16 + LPIPS head weights), ``fvd`` (needs the I3D
    TorchScript). PSNR is always computed."""

    device: Optional[str] = None
    """Where the metrics run: ``cuda``, ``cuda:1``, ``cpu`` (default: CUDA when available)."""

    batch_frames: int = 8
    """Frames per metric batch on the device (memory: ~15 float64 SSIM maps and VGG16 activations per frame)."""

    vgg16_weights: Optional[str] = None
    """torchvision's ``vgg16-397923af.pth`` (default: searched, see :mod:`.weights`)."""

    lpips_heads: Optional[str] = None
    """LPIPS v0.1 ``vgg.pth`` linear heads (default: searched)."""

    i3d_weights: Optional[str] = None
    """StyleGAN-V's ``i3d_torchscript.pt`` (default: searched)."""

    fvd_frames: int = 300
    """rFVD uses the first this many frames of each video (TokenBench: 300)."""

    tokenbench_preprocess: bool = False
    """Apply TokenBench's preprocessing to the inputs first: keep the first ``max(ceil(10 * fps), 300)`` frames and
    downscale (Lanczos) so the short side is at most 1080."""

    max_frames: Optional[int] = None
    """Read at most this many frames of each video (default: all)."""

    allow_tf32: bool = False
    """Let cuDNN use TF32 for the LPIPS / I3D convolutions on Ampere+ GPUs (faster, not float32-exact)."""

    def __post_init__(self) -> None:
        metrics = tuple(dict.fromkeys(("psnr", *self.metrics)))  # PSNR always, order kept, no repeats
        unknown = [m for m in metrics if m not in METRICS]
        if unknown:
            raise ValueError(f"unknown metric(s) {unknown}; choose from {', '.join(METRICS)}")
        object.__setattr__(self, "metrics", metrics)
        for name in ("batch_frames", "fvd_frames"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_frames is not None and self.max_frames < 1:
            raise ValueError(f"max_frames must be >= 1, got {self.max_frames}")

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["metrics"] = list(self.metrics)
        return out


@dataclass(frozen=True)
class ReconstructionConfig:
    """How a tokenizer reconstructs the inputs on the fly."""

    tokenizer: str
    """Released name, local directory (``.jit`` files or our safetensors format), or a built-in
    (``tiny-random-dv8x16x16``)."""

    temporal_mode: str = "windows"
    """``windows``: cut each video into ``temporal_window``-frame windows, each encoded and decoded on its own (what
    ``reconstruct-videos`` does); ``streaming``: the whole video as one causal sequence, encoded and decoded exactly
    in chunks (native networks only)."""

    temporal_window: int = 17
    """Frames per window (``0``: the whole video as one window)."""

    batch_windows: int = 4
    """Windows of equal length per network call."""

    chunk_frames: int = 16
    """Streaming: frames per encoder chunk (rounded down to the temporal compression)."""

    dtype: str = "auto"
    """Network precision: ``auto`` (bfloat16 on CUDA, float32 on CPU), ``bfloat16``, ``float16``, ``float32``."""

    device: Optional[str] = None
    """Where the tokenizer runs (default: CUDA when available)."""

    backend: Optional[str] = None
    """``torch`` (native network, default) or ``jit`` (NVIDIA's TorchScript files as they are)."""

    fast: bool = False
    """Run :func:`nemo_cosmos_tokenizer.fast.optimize`'s network (compiled on CUDA, checked against eager)."""

    short_size: Optional[int] = None
    """Resize each input so its short side has this many pixels before tokenizing (the resized input is the
    reference the metrics compare with)."""

    cache_dir: Optional[str] = None
    revision: Optional[str] = None
    local_files_only: bool = False

    def __post_init__(self) -> None:
        if self.temporal_mode not in TEMPORAL_MODES:
            raise ValueError(f"temporal_mode must be one of {TEMPORAL_MODES}, got {self.temporal_mode!r}")
        if self.backend not in (None, "torch", "jit"):
            raise ValueError(f"backend must be 'torch' or 'jit', got {self.backend!r}")
        if self.temporal_window < 0 or self.batch_windows < 1 or self.chunk_frames < 1:
            raise ValueError("temporal_window must be >= 0, batch_windows and chunk_frames >= 1")
        if self.short_size is not None and self.short_size < 1:
            raise ValueError(f"short_size must be >= 1, got {self.short_size}")
        if self.temporal_mode == "streaming" and (self.fast or self.backend == "jit"):
            raise ValueError("temporal_mode='streaming' runs the plain native network; drop fast / backend='jit' "
                             "or use temporal_mode='windows'")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_eval_config(yaml_path: str | os.PathLike | None = None, overrides: dict[str, Any] | None = None) -> EvalConfig:
    """Defaults < YAML file < ``overrides``, validated into an :class:`EvalConfig`."""
    from omegaconf import OmegaConf

    merged = OmegaConf.structured(EvalConfig)
    if yaml_path is not None:
        merged = OmegaConf.merge(merged, OmegaConf.load(yaml_path))
    if overrides:
        merged = OmegaConf.merge(merged, OmegaConf.create(dict(overrides)))
    return EvalConfig(**OmegaConf.to_container(merged))
