"""Assemble a :class:`CosmosTokenizer` from a :class:`TokenizerConfig` — the only place the family is chosen.

Builders never open files; weights come through :meth:`CosmosTokenizer.load_cosmos_state_dict`.
To size a real model without memory, build it on the meta device::

    with torch.device("meta"):
        model = build_tokenizer(get_config("Cosmos-0.1-Tokenizer-DV8x16x16"))
"""

from __future__ import annotations

from torch import nn

from ..config import TokenizerConfig
from ..modules.conv import CausalConv3d
from ..quantizers.fsq import FSQuantizer
from .image import ImageDecoder, ImageEncoder
from .tokenizer import CosmosTokenizer
from .video import VideoDecoder, VideoEncoder

__all__ = ["build_tokenizer"]


def build_tokenizer(config: TokenizerConfig) -> CosmosTokenizer:
    """A randomly initialised tokenizer with the architecture (and checkpoint key layout) of ``config``."""
    if not isinstance(config, TokenizerConfig):
        raise TypeError(f"build_tokenizer takes a TokenizerConfig, got {type(config).__name__}")
    c = config
    body = dict(channels=c.channels, channels_mult=c.channels_mult, num_res_blocks=c.num_res_blocks,
                z_channels=c.z_channels, patch_size=c.patch_size)
    encoder: nn.Module
    decoder: nn.Module
    if c.is_video:
        encoder = VideoEncoder(in_channels=c.in_channels, num_spatial_downs=c.num_spatial_downs,
                               num_temporal_downs=c.num_temporal_downs, **body)
        decoder = VideoDecoder(out_channels=c.out_channels, num_spatial_ups=c.num_spatial_downs,
                               num_temporal_ups=c.num_temporal_downs, **body)

        def pointwise(i: int, o: int) -> nn.Module:
            return CausalConv3d(i, o, (1, 1, 1))
    else:
        encoder = ImageEncoder(in_channels=c.in_channels, num_downsamples=c.num_spatial_downs, **body)
        decoder = ImageDecoder(out_channels=c.out_channels, num_upsamples=c.num_spatial_downs, **body)

        def pointwise(i: int, o: int) -> nn.Module:
            return nn.Conv2d(i, o, kernel_size=1)

    quantizer = FSQuantizer(c.levels) if c.is_discrete else None
    return CosmosTokenizer(
        config=c,
        encoder=encoder,
        decoder=decoder,
        quant_conv=pointwise(c.z_channels, c.embedding_dim),
        post_quant_conv=pointwise(c.embedding_dim, c.z_channels),
        quantizer=quantizer,
    )
