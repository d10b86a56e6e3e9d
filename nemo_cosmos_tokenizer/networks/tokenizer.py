"""The one Cosmos tokenizer module, composed from built parts (see :func:`.builders.build_tokenizer`)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Mapping

import torch
from torch import nn

from ..config import TokenizerConfig
from ..modules.cache import StreamCache
from ..quantizers.fsq import FSQuantizer
from .checkpoint import PARTS, cosmos_state_dict, load_cosmos_state_dict

__all__ = ["CosmosTokenizer", "PARTS"]


class CosmosTokenizer(nn.Module):
    """Encoder, decoder and (for discrete families) FSQ of one Cosmos tokenizer.

    Submodules, in the key order of NVIDIA's ``autoencoder.jit``: ``encoder``, ``decoder``,
    ``quant_conv``, ``post_quant_conv`` and, for DI/DV, ``quantizer``.

    Shapes (``s`` spatial, ``t`` temporal compression): image ``x`` ``[B, 3, H, W]``, video ``x``
    ``[B, 3, T, H, W]`` with ``T = 1 + k*t``, values in [-1, 1], in the dtype and on the device of the
    model. Latents ``[B, C, (1+k), H/s, W/s]``; discrete indices int32 ``[B, (1+k), H/s, W/s]`` in
    ``0..codebook_size-1``; codes float32 ``[B, len(levels), (1+k), H/s, W/s]``.
    """

    def __init__(
        self,
        config: TokenizerConfig,
        encoder: nn.Module,
        decoder: nn.Module,
        quant_conv: nn.Module,
        post_quant_conv: nn.Module,
        quantizer: FSQuantizer | None = None,
    ) -> None:
        super().__init__()
        if config.is_discrete != (quantizer is not None):
            raise ValueError(f"family {config.family} {'needs' if config.is_discrete else 'takes no'} quantizer")
        self.config = config
        self.encoder = encoder
        self.decoder = decoder
        self.quant_conv = quant_conv
        self.post_quant_conv = post_quant_conv
        self.quantizer = quantizer

    # ------------------------------------------------------------------ encode
    def encode_pre_quant(self, x: torch.Tensor, cache: StreamCache | None = None) -> torch.Tensor:
        """``quant_conv(encoder(x))``: the latent (continuous) or the FSQ input (discrete), model dtype.

        Raises ``ValueError`` naming the fix for a wrong layout, size or frame count. With a stream ``cache``
        (video only; :mod:`.streaming` checks the chunk sizes) ``x`` is the next chunk of a longer clip.
        """
        if cache is None:
            self.config.check_input_shape(tuple(x.shape))
            return self.quant_conv(self.encoder(x))
        return self.quant_conv(self.encoder(x, cache))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Continuous: ``(latent,)``. Discrete: ``(indices int32, codes float32)``."""
        h = self.encode_pre_quant(x)
        if self.quantizer is None:
            return (h,)
        indices, codes = self.quantizer(h)
        return indices, codes

    # ------------------------------------------------------------------ decode
    def decode(self, latent_or_indices: torch.Tensor) -> torch.Tensor:
        """Latent (continuous) or integer indices (discrete) -> reconstruction ``[B, 3, (T), H, W]``, model dtype."""
        z = latent_or_indices
        if self.quantizer is None:
            ndim = 5 if self.config.is_video else 4
            if z.ndim != ndim or z.shape[1] != self.config.latent_channels:
                raise ValueError(
                    f"{self.config.family} decode takes a latent [B, {self.config.latent_channels}"
                    f"{', t' if self.config.is_video else ''}, h, w], got shape {tuple(z.shape)}"
                )
            return self.decoder(self.post_quant_conv(z))  # no cast: a latent of another dtype is an error
        ndim = 4 if self.config.is_video else 3
        if z.ndim != ndim or z.is_floating_point():
            raise ValueError(
                f"{self.config.family} decode takes integer indices [B{', t' if self.config.is_video else ''}, h, w], "
                f"got {z.dtype} of shape {tuple(z.shape)} (use decode_codes for FSQ codes)"
            )
        return self.decode_codes(self.quantizer.indices_to_codes(z))

    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """Discrete only: FSQ codes ``[B, len(levels), (t), h, w]`` (any float dtype) -> reconstruction."""
        if self.quantizer is None:
            raise TypeError(f"decode_codes is for discrete tokenizers; {self.config.family} decodes latents with decode()")
        return self.decode_latent(codes)

    def decode_latent(self, z: torch.Tensor, cache: StreamCache | None = None) -> torch.Tensor:
        """``decoder(post_quant_conv(z))`` for ``z`` the input of ``post_quant_conv`` (a continuous latent or FSQ
        codes, cast to the model dtype), unchecked. With a stream ``cache`` (video only) ``z`` holds the next latent
        frames of a longer latent."""
        dtype = next(self.post_quant_conv.parameters()).dtype
        h = self.post_quant_conv(z.to(dtype))
        return self.decoder(h) if cache is None else self.decoder(h, cache)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Autoencode: ``decode(encode(x)[0])``."""
        return self.decode(self.encode(x)[0])

    # ----------------------------------------------------------------- weights
    def cosmos_state_dict(self, part: str = "autoencoder") -> "OrderedDict[str, torch.Tensor]":
        """The weights of ``part`` in the key layout (and order) of NVIDIA's ``<part>.jit``, buffers included.

        Tensors are detached views of this model's own (no copy), in the model's dtypes.
        """
        return cosmos_state_dict(self, part)

    def load_cosmos_state_dict(self, state_dict: Mapping[str, torch.Tensor], part: str = "autoencoder") -> None:
        """Load a ``<part>.jit``-layout state_dict strictly (missing / unexpected / mis-shaped keys raise
        an error naming them; constant buffers are value-checked, not loaded); float tensors are cast to
        the model's dtype."""
        load_cosmos_state_dict(self, state_dict, part)

    def num_parameters(self, part: str = "autoencoder") -> int:
        """Learnable parameters of ``part`` (encoder = encoder + quant_conv; decoder = post_quant_conv + decoder)."""
        names = {"encoder": ("encoder", "quant_conv"), "decoder": ("post_quant_conv", "decoder")}
        if part == "autoencoder":
            return sum(p.numel() for p in self.parameters())
        if part not in names:
            raise ValueError(f"part must be one of {PARTS}, got {part!r}")
        return sum(p.numel() for name in names[part] for p in getattr(self, name).parameters())

    def extra_repr(self) -> str:
        c = self.config
        return f"family={c.family}, compression={c.compression_label}, patch_size={c.patch_size}"
