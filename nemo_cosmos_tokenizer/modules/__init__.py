"""Building blocks of the Cosmos tokenizer networks, 2D and causal 3D side by side."""

from .attention import AttnBlock2d, CausalAttnBlock3d, CausalSpatialAttnBlock3d, CausalTemporalAttnBlock3d
from .cache import StreamCache
from .conv import CausalConv3d, FactorizedCausalConv3d
from .norm import CausalGroupNorm, group_norm_2d
from .patching import HaarPatcher2d, HaarPatcher3d, HaarUnpatcher2d, HaarUnpatcher3d
from .resample import CausalHybridDownsample3d, CausalHybridUpsample3d, Downsample2d, Upsample2d
from .resnet import CausalResnetBlock3d, ResnetBlock2d

__all__ = [
    "AttnBlock2d",
    "CausalAttnBlock3d",
    "CausalConv3d",
    "CausalGroupNorm",
    "CausalHybridDownsample3d",
    "CausalHybridUpsample3d",
    "CausalResnetBlock3d",
    "CausalSpatialAttnBlock3d",
    "CausalTemporalAttnBlock3d",
    "Downsample2d",
    "FactorizedCausalConv3d",
    "HaarPatcher2d",
    "HaarPatcher3d",
    "HaarUnpatcher2d",
    "HaarUnpatcher3d",
    "ResnetBlock2d",
    "StreamCache",
    "Upsample2d",
    "group_norm_2d",
]
