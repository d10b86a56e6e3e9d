"""Score the held-out clips: TokenBench's PSNR and SSIM (:mod:`nemo_cosmos_tokenizer.evaluation.metrics`) of the
reconstructions, and how many FSQ codes the clips use (discrete models)."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Sequence

import numpy as np
import torch

from ..evaluation.metrics import psnr_from_mse, squared_error_sums, ssim_frames
from ..inference.preprocess import to_uint8, to_unit_range
from ..networks import CosmosTokenizer

__all__ = ["evaluate_clips"]


@torch.no_grad()
def evaluate_clips(network: CosmosTokenizer, clips: Sequence[np.ndarray], *, device: torch.device,
                   autocast_dtype: torch.dtype | None, batch_size: int = 4) -> dict[str, float]:
    """``{"psnr", "ssim", "clips"}`` (+ ``"codes_used"``, ``"codebook_size"`` for discrete models) over ``clips``
    (uint8 ``[T, H, W, 3]`` of one size). PSNR per clip (one MSE over its frames) and SSIM per frame, averaged as
    TokenBench does (frames, then clips). ``network`` should be in eval mode."""
    if not clips:
        return {}
    video = network.config.is_video
    psnrs, ssims, ids = [], [], []
    amp = (torch.autocast(device.type, dtype=autocast_dtype) if autocast_dtype is not None else nullcontext())
    for at in range(0, len(clips), batch_size):
        pixels = torch.from_numpy(np.stack(clips[at : at + batch_size])).to(device)  # [b, T, H, W, 3]
        if not video:
            pixels = pixels[:, 0]  # [b, H, W, 3]
        x = to_unit_range(pixels)  # [b, 3, (T), H, W]
        with amp:
            h = network.encode_pre_quant(x)
            if network.quantizer is not None:
                indices, codes = network.quantizer(h)
                ids.append(indices.flatten().cpu())
                recon = network.decode_latent(codes)
            else:
                recon = network.decode_latent(h)
        out = to_uint8(recon.float())  # [b, (T), H, W, 3]
        for original, decoded in zip(pixels, out):
            frames_a = original if video else original[None]  # [T, H, W, 3]
            frames_b = decoded if video else decoded[None]
            mse = float(squared_error_sums(frames_a, frames_b).sum()) / frames_a.numel()
            psnrs.append(psnr_from_mse(mse))
            ssims.append(float(ssim_frames(frames_a, frames_b).mean()))
    result = {"psnr": float(np.mean(psnrs)), "ssim": float(np.mean(ssims)), "clips": len(psnrs)}
    if ids:
        result["codes_used"] = int(torch.unique(torch.cat(ids)).numel())
        result["codebook_size"] = int(network.quantizer.codebook_size)
    return result
