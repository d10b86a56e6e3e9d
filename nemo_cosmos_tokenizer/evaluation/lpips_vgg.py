"""LPIPS (VGG, v0.1) as the ``lpips`` package computes it, without torchvision.

TokenBench calls ``lpips.LPIPS(net="vgg")(x, y)`` per frame on ``[1, 3, H, W]`` inputs in [-1, 1]:

1. scale: ``(x - shift) / scale`` with ``shift = (-0.030, -0.088, -0.188)``, ``scale = (0.458, 0.448, 0.450)``;
2. VGG16's convolutional stack (torchvision ``vgg16().features``), tapped after relu1_2, relu2_2, relu3_3,
   relu4_3 and relu5_3 (64, 128, 256, 512, 512 channels);
3. each tap normalised over channels, ``f / (||f||_2 + 1e-10)``; squared difference of the two inputs;
4. a 1x1 convolution to one channel without bias (the learned "linear head" of that tap), mean over H x W;
5. the sum over the five taps.

Weights: the backbone is torchvision's ImageNet file (``features.*`` keys), the heads the ``lpips`` package's
``weights/v0.1/vgg.pth`` (``lin{k}.model.1.weight`` keys); both are loaded strictly (see :func:`load_lpips`).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

__all__ = ["LPIPS_TAPS", "LPIPSVGG", "VGG16_FEATURE_CONFIG", "load_lpips"]

#: torchvision's VGG16 ("D") feature stack: conv widths, "M" = 2x2 max pooling.
VGG16_FEATURE_CONFIG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
#: Indices into ``features`` where LPIPS cuts its slices (after relu1_2, relu2_2, relu3_3, relu4_3, relu5_3).
LPIPS_TAPS = (4, 9, 16, 23, 30)
_CHANNELS = (64, 128, 256, 512, 512)
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)
_NORM_EPS = 1e-10


def vgg16_features() -> nn.Sequential:
    """``torchvision.models.vgg16().features`` (same module indices, so its state_dict keys load as they are)."""
    layers: list[nn.Module] = []
    channels = 3
    for item in VGG16_FEATURE_CONFIG:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(channels, int(item), kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            channels = int(item)
    return nn.Sequential(*layers)


class LPIPSVGG(nn.Module):
    """LPIPS v0.1 with the VGG16 backbone: ``forward(x, y)`` -> distance per image.

    ``x``, ``y``: ``[N, 3, H, W]`` float in [-1, 1] (TokenBench: ``2 * (p / 255 - 0.5)``). Returns ``[N]``, in the
    module's dtype. Images of a batch are independent: batching frames gives the per-frame values of
    TokenBench's one-frame calls (up to float rounding of the convolutions).
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = vgg16_features()
        self.heads = nn.ModuleList(nn.Conv2d(c, 1, kernel_size=1, bias=False) for c in _CHANNELS)
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1), persistent=False)

    def taps(self, x: torch.Tensor):
        """The five normalised feature maps of input ``x`` ``[N, 3, H, W]``, one at a time (a generator: the caller
        uses each before the next is computed, so only one tap is held at a time)."""
        h = (x - self.shift) / self.scale
        start = 0
        for stop in LPIPS_TAPS:
            for layer in self.features[start:stop]:
                h = layer(h)
            start = stop
            norm = h.pow(2).sum(dim=1, keepdim=True).sqrt()  # [N, 1, h, w]
            yield h / (norm + _NORM_EPS)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.shape != y.shape or x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected two [N, 3, H, W] batches of one shape, got {tuple(x.shape)}, {tuple(y.shape)}")
        n = x.shape[0]
        total = torch.zeros(n, 1, dtype=self.shift.dtype, device=x.device)
        # One backbone pass over both inputs: [2N, 3, H, W].
        for head, feat in zip(self.heads, self.taps(torch.cat([x, y]).to(self.shift.dtype))):
            diff = (feat[:n] - feat[n:]) ** 2  # [N, C, h, w]
            total = total + head(diff).mean(dim=(2, 3))  # [N, 1]
        return total[:, 0]


def _torch_load(path: Path) -> dict[str, torch.Tensor]:
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"{path} is not a state_dict (got {type(state).__name__})")
    return state


def load_lpips(
    vgg16_weights: str | os.PathLike | None = None,
    lpips_heads: str | os.PathLike | None = None,
) -> tuple[LPIPSVGG, dict[str, dict[str, str]]]:
    """:class:`LPIPSVGG` with torchvision's VGG16 backbone and the LPIPS v0.1 heads, found by
    :func:`~nemo_cosmos_tokenizer.evaluation.weights.find_weights` (explicit paths first).

    Returns the module (float32, CPU, eval) and ``{"vgg16": {"path", "sha256"}, "lpips_heads": {...}}``. Loading is
    strict: the backbone file must hold every ``features.*`` tensor (other keys allowed are torchvision's
    ``classifier.*``), the heads file exactly ``lin0..lin4.model.1.weight``.
    """
    from .weights import file_sha256, find_weights

    vgg_path = find_weights("vgg16", vgg16_weights)
    heads_path = find_weights("lpips_heads", lpips_heads)
    model = LPIPSVGG()

    backbone = _torch_load(vgg_path)
    unknown = [k for k in backbone if not k.startswith(("features.", "classifier."))]
    if unknown:
        raise ValueError(f"{vgg_path} is not torchvision's VGG16 state_dict: unexpected keys {unknown[:5]}")
    features = {k.removeprefix("features."): v for k, v in backbone.items() if k.startswith("features.")}
    try:
        model.features.load_state_dict(features, strict=True)
    except RuntimeError as err:
        raise ValueError(f"{vgg_path} does not hold VGG16's convolutional weights: {err}") from err

    heads = _torch_load(heads_path)
    expected = {f"lin{k}.model.1.weight" for k in range(len(_CHANNELS))}
    if set(heads) != expected:
        raise ValueError(
            f"{heads_path} is not the LPIPS VGG heads file: expected keys {sorted(expected)}, got {sorted(heads)[:8]}"
        )
    model.heads.load_state_dict({f"{k}.weight": heads[f"lin{k}.model.1.weight"] for k in range(len(_CHANNELS))},
                                strict=True)
    files = {"vgg16": {"path": str(vgg_path), "sha256": file_sha256(vgg_path)},
             "lpips_heads": {"path": str(heads_path), "sha256": file_sha256(heads_path)}}
    return model.eval().requires_grad_(False), files
