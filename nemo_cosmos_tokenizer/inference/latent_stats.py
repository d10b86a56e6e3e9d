"""Latent statistics of a continuous tokenizer (NVIDIA's ``mean_std.pt``): normalise / denormalise latents.

The diffusion models of cosmos-predict1 do not see raw tokenizer latents: they see
``(latent - mean) / std``, with statistics NVIDIA ships next to the tokenizer
(``nvidia/Cosmos-Tokenize1-CV8x8x8-720p/mean_std.pt``). The file is a pair of tensors
``(latent_mean, latent_std)`` loaded with ``torch.load(..., weights_only=True)``. cosmos-predict1
(``cosmos_predict1/diffusion/module/pretrained_vae.py``, ``BasePretrainedVideoTokenizer.register_mean_std``)
reads them as ``[C, T_stats]`` (channel-major: ``view(latent_ch, -1)``), one value per latent channel and per
latent frame position, keeps the first ``latent_chunk_duration`` frames, and normalises every chunk of
``latent_chunk_duration`` latent frames (a clip is cut into chunks of ``pixel_chunk_duration`` frames, e.g. 121
frames -> 16 latent frames for CV8x8x8) with those statistics. Its image path reads ``[C]`` statistics as
``[1, C, 1, 1]``. Both are what :meth:`LatentStats.normalize` computes.

Precision follows cosmos-predict1: the statistics are held in the tokenizer's dtype (its ``is_bf16`` VAEs hold
bfloat16 copies), then cast to the latent's dtype, in which the arithmetic is done
(:class:`~nemo_cosmos_tokenizer.inference.tokenizers.CausalVideoTokenizer` passes its dtype).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

__all__ = ["LatentStats", "LatentStatsError"]


class LatentStatsError(ValueError):
    """A ``mean_std.pt`` that cannot be read as latent statistics, or a latent they do not fit."""


@dataclass(frozen=True, eq=False)
class LatentStats:
    """Per-channel (and, for video, per-latent-frame) mean and standard deviation of a tokenizer's latents."""

    mean: torch.Tensor
    """``[C, T_stats]`` float32: latent channel ``c`` at frame position ``i`` of a chunk has mean ``mean[c, i]``
    (``T_stats = 1``: one value per channel, for every frame)."""

    std: torch.Tensor
    """``[C, T_stats]`` float32, positive."""

    source: str = ""
    """Where the statistics came from (for messages)."""

    def __post_init__(self) -> None:
        if self.mean.shape != self.std.shape or self.mean.ndim != 2:
            raise LatentStatsError(f"latent statistics {self.source}: mean {tuple(self.mean.shape)} and std "
                                   f"{tuple(self.std.shape)} must both be [C, T]")
        if not (torch.isfinite(self.mean).all() and torch.isfinite(self.std).all()) or not (self.std > 0).all():
            raise LatentStatsError(f"latent statistics {self.source}: mean and std must be finite and std > 0")

    @property
    def channels(self) -> int:
        return self.mean.shape[0]

    @property
    def frames(self) -> int:
        """Latent frame positions covered (``T_stats``): the longest chunk :meth:`normalize` accepts."""
        return self.mean.shape[1]

    @classmethod
    def load(cls, path: str | os.PathLike, latent_channels: int) -> "LatentStats":
        """Read NVIDIA's ``mean_std.pt`` for a model with ``latent_channels`` latent channels."""
        path = Path(path)
        try:
            data = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as err:  # torch raises several types for a corrupt or foreign file
            raise LatentStatsError(f"cannot read latent statistics {path}: {err}") from err
        if not (isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data)):
            raise LatentStatsError(f"{path} must hold a pair of tensors (latent_mean, latent_std), as NVIDIA's "
                                   f"mean_std.pt does; it holds {type(data).__name__}")
        mean, std = (t.detach().to(torch.float32) for t in data)
        if mean.numel() != std.numel() or mean.numel() == 0 or mean.numel() % latent_channels:
            raise LatentStatsError(
                f"{path}: latent_mean has {mean.numel()} and latent_std {std.numel()} values; both must be a multiple "
                f"of the model's {latent_channels} latent channels (is this the statistics file of another model?)"
            )
        # Channel-major, as cosmos-predict1 reads it: view(latent_ch, -1) -> [C, T_stats].
        return cls(mean.reshape(latent_channels, -1), std.reshape(latent_channels, -1), str(path))

    def to(self, dtype: torch.dtype) -> "LatentStats":
        """A copy with the statistics rounded to ``dtype`` (as held by a VAE of that dtype), kept float32 after."""
        return LatentStats(self.mean.to(dtype).to(torch.float32), self.std.to(dtype).to(torch.float32), self.source)

    def _broadcast(self, latent: torch.Tensor, chunk_frames: int | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std shaped to broadcast against ``latent``, in its dtype and on its device."""
        c = self.channels
        if latent.ndim not in (4, 5) or latent.shape[1] != c:
            raise LatentStatsError(f"latent statistics {self.source} are for latents [B, {c}, (t), h, w]; got shape "
                                   f"{tuple(latent.shape)}")
        if not latent.is_floating_point():
            raise LatentStatsError(f"latent statistics normalise continuous latents, got {latent.dtype} values "
                                   "(discrete models' indices are not normalised)")
        if latent.ndim == 4 or self.frames == 1:
            if latent.ndim == 4 and self.frames != 1:
                raise LatentStatsError(
                    f"{self.source} holds statistics per latent frame ({self.frames} frames), for video latents "
                    "[B, C, t, h, w]; an image latent [B, C, h, w] needs per-channel statistics"
                )
            shape = (1, c) + (1,) * (latent.ndim - 2)  # [1, C, (1), 1, 1]
            mean, std = self.mean.reshape(shape), self.std.reshape(shape)
        else:
            t = latent.shape[2]
            chunk = t if chunk_frames is None else int(chunk_frames)
            if chunk < 1 or t % chunk:
                raise LatentStatsError(
                    f"a latent of {t} frames cannot be cut into chunks of {chunk_frames} latent frames"
                )
            if chunk > self.frames:
                raise LatentStatsError(
                    f"{self.source} has statistics for chunks of up to {self.frames} latent frames, the latent has "
                    f"{chunk}; pass chunk_latent_frames=k with t a multiple of k (cosmos-predict1 normalises each "
                    f"chunk of 1 + (pixel_chunk_duration - 1) / temporal_compression latent frames on its own)"
                )
            # [C, chunk] -> [1, C, chunk, 1, 1], repeated for each of the t / chunk chunks along time:
            # cosmos-predict1's "b c (n t) h w -> (b n) c t h w" gives frame j of every chunk the statistics of j.
            repeats = t // chunk
            mean = self.mean[:, :chunk].repeat(1, repeats).reshape(1, c, t, 1, 1)
            std = self.std[:, :chunk].repeat(1, repeats).reshape(1, c, t, 1, 1)
        return (mean.to(device=latent.device, dtype=latent.dtype), std.to(device=latent.device, dtype=latent.dtype))

    def normalize(self, latent: torch.Tensor, chunk_frames: int | None = None) -> torch.Tensor:
        """``(latent - mean) / std`` for a latent ``[B, C, t, h, w]`` (or ``[B, C, h, w]`` with per-channel
        statistics), computed in the latent's dtype. ``chunk_frames``: the latent is ``t / chunk_frames`` chunks,
        each normalised with the statistics of frame positions ``0..chunk_frames-1`` (default: one chunk)."""
        mean, std = self._broadcast(latent, chunk_frames)
        return (latent - mean) / std

    def denormalize(self, latent: torch.Tensor, chunk_frames: int | None = None) -> torch.Tensor:
        """``latent * std + mean``: the inverse of :meth:`normalize` (same arguments)."""
        mean, std = self._broadcast(latent, chunk_frames)
        return latent * std + mean
