"""Helpers of the evaluation tests (imported by ``tests/evaluation``; tests/ is on sys.path, see tests/conftest.py).

* :func:`make_vgg16`: a stand-in for ``torchvision.models.vgg16()`` for the ``lpips`` package, which imports
  torchvision for its backbone (PyPI's torchvision does not import beside this CPU torch build). Its feature stack
  is built here from torchvision's published configuration "D" (3x3 convolutions with padding 1 and ReLU, 2x2 max
  pooling), independently of :mod:`nemo_cosmos_tokenizer.evaluation.lpips_vgg`, with seeded random weights.
* :class:`TinyI3D`: a small random network with StyleGAN-V's I3D call signature
  (``forward(x, rescale, resize, return_features)``, ``[B, 3, T, 224, 224]`` -> ``[B, D]``).
* :func:`write_video` (H.264 through PyAV, for reconstructions with real codec loss), :func:`decode_video` (PyAV
  directly, independent of the package's reader).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

VGG_SEED = 1234
VGG16_CONFIG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


def make_vgg16():
    """A stand-in for ``torchvision.models.vgg16()``: ``.features`` in torchvision's layout, seeded weights."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(VGG_SEED)
        layers: list[nn.Module] = []
        channels = 3
        for v in VGG16_CONFIG:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(channels, v, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                channels = v
        model = nn.Module()
        model.features = nn.Sequential(*layers)
        model.classifier = nn.Sequential(nn.Linear(8, 4))  # a token classifier: the loader must ignore it
    return model


class TinyI3D(nn.Module):
    """Random network with the I3D detector's signature: ``[B, 3, T, 224, 224]`` in [-1, 1] -> features ``[B, 8]``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(3, 6, kernel_size=(3, 7, 7), stride=(1, 4, 4), padding=(1, 3, 3))
        self.conv2 = nn.Conv3d(6, 8, kernel_size=3, stride=(2, 4, 4), padding=1)
        self.fc = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor, rescale: bool = False, resize: bool = False,
                return_features: bool = False) -> torch.Tensor:
        if rescale:
            x = x * 2 - 1
        h = torch.relu(self.conv1(x))
        h = torch.tanh(self.conv2(h)).mean(dim=(2, 3, 4))  # [B, 8]
        features = self.fc(h)
        return features if return_features else torch.softmax(features, dim=1)


def write_video(path: Path, frames: np.ndarray, fps: int = 12, crf: int = 30) -> Path:
    """uint8 ``[T, H, W, 3]`` -> H.264 (yuv444p keeps odd sizes) with PyAV."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv444p"
        stream.options = {"crf": str(crf)}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def decode_video(path: Path) -> np.ndarray:
    """Every frame with PyAV directly (independent of the package's reader): uint8 ``[T, H, W, 3]``."""
    import av

    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
