"""Write NVIDIA-style TorchScript files (``encoder.jit``, ``decoder.jit``, ``autoencoder.jit``) from a model.

Made the way NVIDIA made the released files (``cosmos_predict1/tokenizer/training/jit_cli.py``): the network
is cast to the export dtype (bfloat16 by default), put in eval mode and **traced** (``torch.jit.trace``, not
scripted) with an example input of that dtype; the decoder is traced on the encoder's first output. The
traced modules have NVIDIA's submodule names, so their ``state_dict()`` keys (buffers included: TorchScript
keeps non-persistent buffers too) are those of the released files and load back through
:func:`~nemo_cosmos_tokenizer.hub.convert.load_jit_state_dict` + ``load_cosmos_state_dict``.

Outputs mimic NVIDIA's tuple structure:

* ``encoder.jit``: continuous ``(latent, (tensor([0.]), tensor([0.])))`` (the identity "posterior");
  discrete ``(indices int32, codes, zero_loss)`` with ``codes`` in the export dtype (NVIDIA's FSQ returned its
  ``dtype``, bfloat16) and ``zero_loss`` zeros of shape ``(B, 1, 1, 1)`` (image) or ``(B, 1, 1, 1, w)``
  (video), as the reference's ``zeros_like(codes.mean(dim=[1, 2, 3], keepdim=True))``.
* ``decoder.jit``: latent (continuous) or int indices (discrete) -> reconstruction.
* ``autoencoder.jit``: ``(reconstruction, posteriors | zero_loss, latent | indices)`` (the reference
  ``NetworkEval`` tuple in eval mode); the discrete path decodes the codes, as the reference does.

Like NVIDIA's files, a trace keeps the shapes of its example only where the code branches on them; the
networks here do not branch on sizes, so the files run on any valid input size.
"""

from __future__ import annotations

import copy
import os
import warnings
from pathlib import Path
from typing import Iterable

import torch
from torch import nn

from ..networks.tokenizer import PARTS, CosmosTokenizer
from ..registry import PART_FILES

__all__ = ["export_jit", "default_example_input", "JIT_PART_FILES"]

JIT_PART_FILES = PART_FILES  # the file names of NVIDIA's repositories (nemo_cosmos_tokenizer.registry)


def default_example_input(model: CosmosTokenizer, dtype: torch.dtype | None = None) -> torch.Tensor:
    """A small valid input for tracing: ``[1, 3, 2s, 2s]`` or ``[1, 3, 1 + 2t, 2s, 2s]`` in [-1, 1]."""
    c = model.config
    size = 2 * c.spatial_compression
    shape = (1, c.in_channels, 1 + 2 * c.temporal_compression, size, size) if c.is_video else (1, c.in_channels, size, size)
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(shape, generator=generator) * 2 - 1
    return x.to(dtype or torch.float32)


class _ContinuousEncoderJit(nn.Module):
    def __init__(self, net: CosmosTokenizer) -> None:
        super().__init__()
        self.encoder = net.encoder
        self.quant_conv = net.quant_conv

    def forward(self, x: torch.Tensor):
        latent = self.quant_conv(self.encoder(x))
        zero = torch.zeros(1, device=latent.device)
        return latent, (zero, zero.clone())


class _DiscreteEncoderJit(nn.Module):
    def __init__(self, net: CosmosTokenizer) -> None:
        super().__init__()
        self.encoder = net.encoder
        self.quant_conv = net.quant_conv
        self.quantizer = net.quantizer

    def forward(self, x: torch.Tensor):
        h = self.quant_conv(self.encoder(x))
        indices, codes = self.quantizer(h)
        codes = codes.to(h.dtype)
        return indices, codes, torch.zeros_like(codes.mean(dim=[1, 2, 3], keepdim=True))


class _InvQuantizerJit(nn.Module):
    def __init__(self, quantizer: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.quantizer = quantizer
        self.dtype = dtype

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        return self.quantizer.indices_to_codes(indices).to(self.dtype)


class _DecoderJit(nn.Module):
    def __init__(self, net: CosmosTokenizer, dtype: torch.dtype) -> None:
        super().__init__()
        if net.quantizer is not None:
            self.inv_quant = _InvQuantizerJit(net.quantizer, dtype)
        self.post_quant_conv = net.post_quant_conv
        self.decoder = net.decoder

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if hasattr(self, "inv_quant"):
            z = self.inv_quant(z)
        return self.decoder(self.post_quant_conv(z))


class _AutoencoderJit(nn.Module):
    def __init__(self, net: CosmosTokenizer) -> None:
        super().__init__()
        self.encoder = net.encoder
        self.decoder = net.decoder
        self.quant_conv = net.quant_conv
        self.post_quant_conv = net.post_quant_conv
        self.quantizer = net.quantizer

    def forward(self, x: torch.Tensor):
        h = self.quant_conv(self.encoder(x))
        if self.quantizer is None:
            zero = torch.zeros(1, device=h.device)
            return self.decoder(self.post_quant_conv(h)), (zero, zero.clone()), h
        indices, codes = self.quantizer(h)
        codes = codes.to(h.dtype)
        reconstruction = self.decoder(self.post_quant_conv(codes))
        return reconstruction, torch.zeros_like(codes.mean(dim=[1, 2, 3], keepdim=True)), indices


def _trace_and_save(module: nn.Module, example: torch.Tensor, path: Path) -> None:
    # TorchScript is what NVIDIA shipped; its deprecation warnings are expected here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.trace(module, example, check_trace=False), str(path))


def export_jit(
    model: CosmosTokenizer,
    directory: str | os.PathLike,
    dtype: torch.dtype = torch.bfloat16,
    example_input: torch.Tensor | None = None,
    parts: Iterable[str] = PARTS,
) -> dict[str, Path]:
    """Trace ``model`` (a copy, cast to ``dtype``) into NVIDIA-layout ``<part>.jit`` files in ``directory``.

    ``example_input`` (image ``[B, 3, H, W]`` / video ``[B, 3, T, H, W]``, cast to ``dtype`` and moved to
    the model's device) defaults to :func:`default_example_input`. Returns ``{part: path}``.
    ``model`` itself is left unchanged.
    """
    parts = tuple(parts)
    for part in parts:
        if part not in PARTS:
            raise ValueError(f"parts must be among {PARTS}, got {part!r}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    device = next(model.parameters()).device
    net = copy.deepcopy(model).to(dtype=dtype).eval().requires_grad_(False)
    x = default_example_input(model) if example_input is None else example_input
    model.config.check_input_shape(tuple(x.shape))
    x = x.to(device=device, dtype=dtype)
    encoder = _DiscreteEncoderJit(net) if net.quantizer is not None else _ContinuousEncoderJit(net)
    paths: dict[str, Path] = {}
    with torch.no_grad():
        modules = {
            "encoder": (encoder, x),
            "decoder": (_DecoderJit(net, dtype), lambda: encoder(x)[0]),
            "autoencoder": (_AutoencoderJit(net), x),
        }
        for part in parts:
            module, example = modules[part]
            example = example() if callable(example) else example
            path = directory / JIT_PART_FILES[part]
            _trace_and_save(module, example, path)
            paths[part] = path
    return paths
