"""The losses of the Cosmos recipe: L1 on pixels, a perceptual loss, an optional hinge GAN loss.

Only the decoder output is supervised (FSQ has no codebook to commit to). What is here and what is not:

* **L1** on pixels in [-1, 1], mean over every element (NVIDIA weight 1.0).
* **Perceptual**: LPIPS with the VGG16 backbone (:class:`~nemo_cosmos_tokenizer.evaluation.lpips_vgg.LPIPSVGG`,
  the network TokenBench scores with), frame by frame, from weight files on this machine
  (:func:`~nemo_cosmos_tokenizer.evaluation.lpips_vgg.load_lpips`). NVIDIA's recipe uses VGG-19 features
  (weight 0.1); LPIPS-VGG16 is the perceptual network whose weights this project already loads and checks.
* **Adversarial** (optional, NVIDIA's fine-tuning stage): a patch discriminator on frames
  (:mod:`.discriminator`), hinge losses, from a given step on.
* **No KL term**: every Cosmos continuous tokenizer is a plain autoencoder (``formulation="AE"``: its encoder
  returns an identity "posterior", see :mod:`nemo_cosmos_tokenizer.hub.jit_export`), so there is no posterior to
  regularise; NVIDIA's KL weight applies to VAE formulations this architecture does not have.
* Not implemented: NVIDIA's stage-2 optical-flow (RAFT) and Gram-matrix losses (off in its post-training config).

Every loss returns a float32 scalar, a mean over the local batch, so the mean of equal local batches over
processes is the loss of the global batch.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["PerceptualLoss", "frames_of", "hinge_discriminator_loss", "hinge_generator_loss", "l1_loss", "l2_loss"]


def frames_of(x: torch.Tensor) -> torch.Tensor:
    """``[B, 3, T, H, W]`` (video) or ``[B, 3, H, W]`` (image) -> frames ``[B*T, 3, H, W]``."""
    if x.ndim == 4:
        return x
    b, c, t, h, w = x.shape
    return x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)  # [B, T, 3, H, W] -> [B*T, 3, H, W]


def l1_loss(reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over every element, in float32."""
    return (reconstruction.float() - target.float()).abs().mean()


def l2_loss(reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over every element, in float32."""
    return (reconstruction.float() - target.float()).square().mean()


class PerceptualLoss(nn.Module):
    """LPIPS-VGG16 distance between reconstruction and target frames, averaged over frames (frozen network)."""

    def __init__(self, lpips: nn.Module) -> None:
        super().__init__()
        self.lpips = lpips.eval().requires_grad_(False)

    @classmethod
    def from_files(cls, vgg16_weights: str | os.PathLike | None, lpips_heads: str | os.PathLike | None
                   ) -> "PerceptualLoss":
        """Load the weights as ``evaluate`` does (explicit paths, then ``$NCT_EVAL_WEIGHTS`` and the caches);
        raises :class:`~nemo_cosmos_tokenizer.evaluation.weights.MissingWeightsError` naming the missing file."""
        from ..evaluation.lpips_vgg import load_lpips

        lpips, _ = load_lpips(vgg16_weights, lpips_heads)
        return cls(lpips)

    def train(self, mode: bool = True) -> "PerceptualLoss":
        super().train(mode)
        self.lpips.eval()  # a loss network: always in eval mode
        return self

    def forward(self, reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        x, y = frames_of(reconstruction), frames_of(target)
        return self.lpips(x, y.to(x.dtype)).float().mean()


def hinge_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """``mean(relu(1 - D(real))) + mean(relu(1 + D(fake)))``, halved (VQGAN's convention), float32."""
    return 0.5 * (F.relu(1.0 - real_logits.float()).mean() + F.relu(1.0 + fake_logits.float()).mean())


def hinge_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """``-mean(D(fake))``, float32."""
    return -fake_logits.float().mean()
