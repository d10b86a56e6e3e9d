#!/usr/bin/env python3
"""Does a tokenizer architecture learn the demo's moving object, or stop at its background? (TRAINING.md, run 15)

Overfits one batch of the demo's frames (a coloured shape on a plain background, :mod:`nemo_cosmos_tokenizer.megatron.
demo`) with Adam on the CPU and prints the PSNR every ``--every`` steps beside the PSNR of "each frame's background
colour everywhere": a run that stops at that number has converged to the background without the object (with L1,
the demo's DV network does, whatever its width, learning rate, quantizer, attention or norms; with the squared error
it passes it).

examples:
  python scripts/probe_tokenizer_fixed_point.py --loss l1            # stops at the background-only PSNR
  python scripts/probe_tokenizer_fixed_point.py --loss l2            # passes it
  python scripts/probe_tokenizer_fixed_point.py --loss l1 --family DI --channels 64
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
try:
    import nemo_cosmos_tokenizer  # noqa: F401
except ImportError:  # a source checkout that was not pip-installed
    sys.path.insert(0, str(REPO))


def demo_frames(count: int, size: int, frames: int, seed: int):
    """float ``[count, 3, frames, size, size]`` in ``[-1, 1]`` and the background-only reconstruction of it."""
    import numpy as np
    import torch

    from nemo_cosmos_tokenizer.megatron.demo import BACKGROUNDS, clip_specs, render_clip

    specs = clip_specs(count, seed, size)
    pixels = np.stack([render_clip(s, frames, size) for s in specs])  # [N, T, H, W, 3] uint8
    background = np.stack([np.broadcast_to(np.array(BACKGROUNDS[s.background], np.uint8), pixels.shape[1:])
                           for s in specs])
    to_unit = lambda a: torch.from_numpy(a).permute(0, 4, 1, 2, 3).float() / 127.5 - 1  # noqa: E731
    return to_unit(pixels), to_unit(background)


def psnr(y, x) -> float:
    """PSNR in dB of ``y`` against ``x`` (both in ``[-1, 1]``, compared on ``[0, 1]``)."""
    mse = float((((y.clamp(-1, 1) - x) / 2) ** 2).mean())
    return -10 * math.log10(max(mse, 1e-12))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loss", choices=("l1", "l2"), default="l1")
    parser.add_argument("--family", choices=("DV", "DI"), default="DV")
    parser.add_argument("--channels", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument("--batch", type=int, default=8, help="frames overfitted")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    import torch

    from nemo_cosmos_tokenizer.config import TokenizerConfig
    from nemo_cosmos_tokenizer.networks import build_tokenizer

    x, background = demo_frames(args.batch, args.size, 1, args.seed)  # [b, 3, 1, H, W]: one frame per clip
    if args.family == "DI":
        x, background = x[:, :, 0], background[:, :, 0]  # [b, 3, H, W]
    # The demo recipe's topology (Haar patching 4, spatial x16, FSQ 8,8,8,5,5,5) at the given width.
    config = TokenizerConfig(family=args.family, spatial_compression=16,
                             temporal_compression=8 if args.family == "DV" else 1, patch_size=4,
                             channels=args.channels, channels_mult=(1, 2, 2), num_res_blocks=1, z_channels=16,
                             levels=(8, 8, 8, 5, 5, 5))
    torch.manual_seed(args.seed)
    net = build_tokenizer(config).train()
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    print(f"{args.family} network, {args.channels} channels, {args.loss}, lr {args.lr:g}, {args.batch} frames of "
          f"{args.size}x{args.size}; background-only PSNR {psnr(background, x):.2f} dB")
    began = time.perf_counter()
    for step in range(1, args.steps + 1):
        y = net.decode_latent(net.quantizer.quantize(net.encode_pre_quant(x)))
        loss = (y - x).abs().mean() if args.loss == "l1" else ((y - x) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % args.every == 0:
            print(f"step {step:5d}  loss {loss.item():.4f}  PSNR {psnr(y.detach(), x):.2f} dB  "
                  f"({time.perf_counter() - began:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
