"""Dataset builder: videos + captions -> Megatron ``.bin/.idx`` shards of interleaved text and video tokens.

Modules: :mod:`.manifest` (inputs), :mod:`.video` (decord / PyAV reading, frame sampling, resize),
:mod:`.text` (sentencepiece / ``tokenizer.json``), :mod:`.layout` (token ids by integer arithmetic, presets,
decoding), :mod:`.video_tokenizer` (loading the discrete tokenizer), :mod:`.writer` (atomic Megatron shards),
:mod:`.builder` (chunked, resumable build), :mod:`.reader` (read a document back), :mod:`.samples` (synthetic
demo inputs).

Heavy optional packages (megatron-core, decord, PyAV, sentencepiece, Pillow) are imported only when used.
"""

from .builder import (
    BuildConfig,
    BuildContext,
    BuildSummary,
    ConfigMismatchError,
    IncompleteBuildError,
    build,
    load_build_config,
    merge,
    prepare_build,
    run_chunks,
)
from .layout import DecodedDocument, LayoutError, TokenLayout
from .manifest import Manifest, ManifestError, Sample, read_manifest
from .text import TextTokenizer, load_text_tokenizer
from .video import ClipSpec, MediaError, read_sample
from .video_tokenizer import DEFAULT_TOKENIZER, VideoTokenizer, load_video_tokenizer

__all__ = [
    "DEFAULT_TOKENIZER",
    "BuildConfig",
    "BuildContext",
    "BuildSummary",
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
    "build",
    "load_build_config",
    "load_text_tokenizer",
    "load_video_tokenizer",
    "merge",
    "prepare_build",
    "read_manifest",
    "read_sample",
    "run_chunks",
]
