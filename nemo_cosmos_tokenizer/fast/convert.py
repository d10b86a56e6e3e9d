"""The fast path as a conversion: ONE table, plain module type -> how to build its fast layer.

:func:`convert_tokenizer` walks a plain :class:`~nemo_cosmos_tokenizer.networks.CosmosTokenizer` from its bodies
down: every module is looked up by its exact type in :data:`FAST_MODULES` (a subclass may change ``forward``, so it
is not assumed to be its parent), and a type the table does not know raises :class:`UnsupportedModuleError` at
``optimize()``, naming the module. A builder converts the children it uses through the converter (or declares that
it reads its whole subtree's weights itself); after the walk every submodule must have been used, so a child added
to a plain block that the fast layer would ignore raises too. Never a silent fallback for a structural mismatch:
the numerical check of :class:`.tokenizer.FastCosmosTokenizer` (and its fallback) is for kernels and compilers.

Adding a module (say a new attention variant): write the plain module (``forward(x, cache=None)``) and add one
entry here mapping it to its fast layer (an existing one such as ``_attention(SpatialAttention)`` when it computes
the same function with other weights, else a new class in :mod:`.layers`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable

from torch import nn

from ..modules.attention import AttnBlock2d, CausalAttnBlock3d, CausalSpatialAttnBlock3d, CausalTemporalAttnBlock3d
from ..modules.conv import CausalConv3d, FactorizedCausalConv3d
from ..modules.norm import CausalGroupNorm
from ..modules.patching import HaarPatcher2d, HaarPatcher3d, HaarUnpatcher2d, HaarUnpatcher3d
from ..modules.resample import CausalHybridDownsample3d, CausalHybridUpsample3d, Downsample2d, Upsample2d
from ..modules.resnet import CausalResnetBlock3d, ResnetBlock2d
from ..networks.image import ImageDecoder, ImageEncoder
from ..networks.levels import DownLevel, MidBlock, UpLevel
from ..networks.tokenizer import CosmosTokenizer
from ..networks.video import VideoDecoder, VideoEncoder
from .attention_layers import SpatialAttention, TemporalAttention
from .frames import ConvFrames, FrameNorm, conv_frames_or_temporal
from .layers import FastChain, FastDownsample, FastFactorizedConv, FastResBlock, FastUpsample
from .networks import FastDecoder, FastDecoderBody, FastEncoder, FastEncoderBody
from .options import FastOptions

__all__ = ["FAST_MODULES", "ConvHook", "Converter", "FastConversion", "UnsupportedModuleError", "convert_tokenizer"]


class UnsupportedModuleError(TypeError):
    """The plain network holds a module the fast path has no conversion for (or would ignore)."""


#: ``hook(plain_conv, fast_layer) -> layer``: what a precision option makes of each converted convolution (the FP8
#: path's :class:`.fp8.Fp8Conversion`); without one every convolution keeps its fast layer.
ConvHook = Callable[[nn.Module, nn.Module], nn.Module]


class Converter:
    """Converts plain modules through :data:`FAST_MODULES` and records which ones were used."""

    def __init__(self, options: FastOptions, conv_hook: ConvHook | None = None) -> None:
        self.options = options
        self.conv_hook = conv_hook
        self._used: set[nn.Module] = set()
        self._path: list[str] = []

    def conv(self, plain: nn.Module, fast: nn.Module) -> nn.Module:
        """The fast layer ``fast`` of the plain convolution ``plain``, or what the precision hook makes of it."""
        return fast if self.conv_hook is None else self.conv_hook(plain, fast)

    def __call__(self, module: nn.Module) -> nn.Module | None:
        rule = FAST_MODULES.get(type(module))
        if rule is None:
            where = " > ".join(self._path) or "the model"
            raise UnsupportedModuleError(
                f"the fast path has no conversion for {type(module).__module__}.{type(module).__qualname__} (in "
                f"{where}); add an entry for it to FAST_MODULES in nemo_cosmos_tokenizer/fast/convert.py, or run the "
                "plain network (no --fast / optimize())"
            )
        self._used.add(module)
        if rule.reads_subtree:
            self.consume(module)
        self._path.append(type(module).__name__)
        try:
            return rule.build(module, self)
        finally:
            self._path.pop()

    def consume(self, *modules: nn.Module) -> None:
        """Mark ``modules`` and everything under them as used (their builder reads their weights itself)."""
        for module in modules:
            self._used.update(module.modules())

    def check_complete(self, root: nn.Module, name: str) -> None:
        """Raise if a submodule of ``root`` was not used by any builder (its fast layer would ignore it)."""
        for child_name, module in root.named_modules(prefix=name):
            if module not in self._used and type(module) is not nn.ModuleList:  # lists only hold (checked) items
                raise UnsupportedModuleError(
                    f"the fast conversion ignores {child_name} ({type(module).__name__}): the fast layer of its parent "
                    "does not know it; extend the parent's entry in FAST_MODULES (nemo_cosmos_tokenizer/fast/convert.py)"
                )


@dataclass(frozen=True)
class FastConversion:
    """One table entry: ``build(plain, convert)`` returns the fast layer (``None`` for the identity)."""

    build: Callable[[nn.Module, Converter], nn.Module | None]
    reads_subtree: bool = False
    """``build`` reads the weights of the whole subtree itself (no child goes through the table)."""


def _level(level: DownLevel | UpLevel, convert: Converter) -> FastChain:
    sampler = level.downsample if isinstance(level, DownLevel) else level.upsample
    layers = [convert(block) for block in level.block]
    if sampler is not None:
        layers.append(convert(sampler))
    return FastChain(layers)


def _encoder_body(enc: VideoEncoder | ImageEncoder, convert: Converter) -> FastEncoderBody:
    video = isinstance(enc, VideoEncoder)
    return FastEncoderBody(
        convert(enc.patcher3d if video else enc.patcher), convert(enc.conv_in), [convert(level) for level in enc.down],
        convert(enc.mid), convert(enc.norm_out), convert(enc.conv_out),
        video=video, memory_format=convert.options.memory_format,
    )


def _decoder_body(dec: VideoDecoder | ImageDecoder, convert: Converter) -> FastDecoderBody:
    video = isinstance(dec, VideoDecoder)
    up = [convert(dec.up[i]) for i in reversed(range(len(dec.up)))]  # execution order: the deepest level first
    return FastDecoderBody(
        convert(dec.conv_in), convert(dec.mid), up, convert(dec.norm_out), convert(dec.conv_out),
        convert(dec.unpatcher3d if video else dec.unpatcher), video=video,
    )


def _resnet(block: CausalResnetBlock3d | ResnetBlock2d, convert: Converter) -> FastResBlock:
    return FastResBlock(convert(block.norm1), convert(block.conv1), convert(block.norm2), convert(block.conv2),
                        convert(block.nin_shortcut))


def _attention(cls: type[SpatialAttention] | type[TemporalAttention]) -> FastConversion:
    """An attention block -> ``cls`` with its norm converted and q/k/v/proj_out fused (read directly)."""

    def build(block: nn.Module, convert: Converter) -> nn.Module:
        convert.consume(block.q, block.k, block.v, block.proj_out)
        return cls(block, convert(block.norm), convert.options.attention_kernel)

    return FastConversion(build)


def _plain(module: nn.Module, convert: Converter) -> nn.Module:
    """A copy of the plain module: the Haar (un)patchers are parameter-free element-wise arithmetic on
    ``[B, C, T, H, W]``. A copy, so that a stream cache shared with the plain network keys them apart."""
    return copy.deepcopy(module)


#: Plain module type (exact) -> how to build its fast layer. The one place the fast path knows the networks.
FAST_MODULES: dict[type[nn.Module], FastConversion] = {
    # bodies
    VideoEncoder: FastConversion(_encoder_body),
    ImageEncoder: FastConversion(_encoder_body),
    VideoDecoder: FastConversion(_decoder_body),
    ImageDecoder: FastConversion(_decoder_body),
    # containers
    DownLevel: FastConversion(_level),
    UpLevel: FastConversion(_level),
    MidBlock: FastConversion(lambda m, cv: FastChain([cv(m.block_1), cv(m.attn_1), cv(m.block_2)])),
    CausalAttnBlock3d: FastConversion(lambda m, cv: FastChain([cv(block) for block in m])),
    # blocks
    CausalResnetBlock3d: FastConversion(_resnet),
    ResnetBlock2d: FastConversion(_resnet),
    CausalHybridDownsample3d: FastConversion(lambda m, cv: FastDownsample(
        cv(m.conv1) if m.spatial else None, cv(m.conv2) if m.temporal else None, cv(m.conv3))),
    Downsample2d: FastConversion(lambda m, cv: FastDownsample(cv(m.conv), None, None)),
    CausalHybridUpsample3d: FastConversion(lambda m, cv: FastUpsample(
        cv(m.conv1) if m.temporal else None, cv(m.conv2) if m.spatial else None, cv(m.conv3))),
    Upsample2d: FastConversion(lambda m, cv: FastUpsample(None, cv(m.conv), None)),
    AttnBlock2d: _attention(SpatialAttention),
    CausalSpatialAttnBlock3d: _attention(SpatialAttention),
    CausalTemporalAttnBlock3d: _attention(TemporalAttention),
    # primitives
    FactorizedCausalConv3d: FastConversion(lambda m, cv: FastFactorizedConv(cv(m[0]), cv(m[1]))),
    CausalConv3d: FastConversion(
        lambda m, cv: cv.conv(m, conv_frames_or_temporal(m, cv.options.memory_format)), True),
    nn.Conv2d: FastConversion(lambda m, cv: cv.conv(m, ConvFrames.from_plain(m, cv.options.memory_format))),
    CausalGroupNorm: FastConversion(lambda m, cv: FrameNorm(m.norm), True),
    nn.GroupNorm: FastConversion(lambda m, cv: FrameNorm(m)),
    nn.Identity: FastConversion(lambda m, cv: None),
    HaarPatcher2d: FastConversion(_plain),
    HaarPatcher3d: FastConversion(_plain),
    HaarUnpatcher2d: FastConversion(_plain),
    HaarUnpatcher3d: FastConversion(_plain),
}


def convert_tokenizer(model: CosmosTokenizer, options: FastOptions,
                      conv_hook: ConvHook | None = None) -> tuple[FastEncoder | None, FastDecoder | None]:
    """The fast encoder and decoder of ``model`` (``None`` for a side whose weights were dropped, as the inference
    API does for encoder-only tokenizers). Raises :class:`UnsupportedModuleError` on a module it cannot convert.
    ``conv_hook`` may replace the fast layer of each convolution (attention projections are not convolutions here)."""
    convert = Converter(options, conv_hook)
    encoder = decoder = None
    if model.encoder is not None:
        encoder = FastEncoder(convert(model.encoder), convert(model.quant_conv))
        convert.check_complete(model.encoder, "encoder")
        convert.check_complete(model.quant_conv, "quant_conv")
    if model.decoder is not None:
        decoder = FastDecoder(convert(model.post_quant_conv), convert(model.decoder), options.memory_format)
        convert.check_complete(model.decoder, "decoder")
        convert.check_complete(model.post_quant_conv, "post_quant_conv")
    return encoder, decoder
