"""Dataset builder: videos + captions -> Megatron ``.bin/.idx`` shards of interleaved text and video tokens.

Modules: :mod:`.manifest` (inputs), :mod:`.video` (one sample -> clips with the CPU readers of
:mod:`nemo_cosmos_tokenizer.media`), :mod:`.nvdec` (the same on the GPU's decoders),
:mod:`.text` (sentencepiece / ``tokenizer.json``), :mod:`.layout` (token ids by integer arithmetic, presets,
decoding), :mod:`.video_tokenizer` (loading the discrete tokenizer), :mod:`.writer` (atomic Megatron shards),
:mod:`.build` (the chunked, resumable build on any number of GPUs: :func:`run_build`), :mod:`.reader` (read a
document back), :mod:`.samples` (synthetic demo inputs), :mod:`.cosmos_ar` (NVIDIA's Cosmos-1.0-Autoregressive
post-training data, ``layout="cosmos_ar"``), :mod:`.video2world` (their Video2World ``.pt`` files).

``build`` is the build package (the single-process ``build()`` function it replaced is
``nemo_cosmos_tokenizer.data.builder.build``, deprecated: use :func:`run_build`).

Heavy optional packages (megatron-core, decord, PyAV, sentencepiece, Pillow) are imported only when used.
"""

from .build import (
    BuildConfig,
    BuildContext,
    ConfigMismatchError,
    IncompleteBuildError,
    RunSummary,
    load_build_config,
    merge,
    prepare_build,
    run_build,
    run_chunks,
)
from .layout import DecodedDocument, LayoutError, TokenLayout
from .manifest import Manifest, ManifestError, Sample, read_manifest
from .text import TextTokenizer, load_text_tokenizer
from ..media.clips import ClipSpec
from ..media.failures import MediaError
from .video import read_sample
from .video_tokenizer import DEFAULT_TOKENIZER, VideoTokenizer, load_video_tokenizer

__all__ = [
    "DEFAULT_TOKENIZER",
    "BuildConfig",
    "BuildContext",
    "RunSummary",
    "ClipSpec",
    "ConfigMismatchError",
    "DecodedDocument",
    "IncompleteBuildError",
    "LayoutError",
    "Manifest",
    "ManifestError",
    "MediaError",
    "Sample",
    "TextTokenizer",
    "TokenLayout",
    "VideoTokenizer",
    "run_build",
    "load_build_config",
    "load_text_tokenizer",
    "load_video_tokenizer",
    "merge",
    "prepare_build",
    "read_manifest",
    "read_sample",
    "run_chunks",
]


def __getattr__(name: str):
    # BuildSummary was the summary of the removed single-process build(); RunSummary is the one summary now.
    if name == "BuildSummary":
        import warnings

        warnings.warn("nemo_cosmos_tokenizer.data.BuildSummary is deprecated: it is RunSummary (chunks -> "
                      "chunks_total)", DeprecationWarning, stacklevel=2)
        return RunSummary
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
