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

Heavy optional packages (megatron-core, decord, PyAV, sentencepiece, Pillow) are imported only when used, and so
are the names below (PEP 562): importing a light submodule does not load torch.
"""

import importlib

#: Public name -> the submodule that defines it. Imported on first use (PEP 562), so that light parts of the
#: package (``data.sources``, ``data.locations``, ``data.manifest``) load without torch: the commands check their
#: inputs with them before torch or megatron-core load.
_EXPORTS = {
    **dict.fromkeys(("BuildConfig", "BuildContext", "ConfigMismatchError", "IncompleteBuildError", "RunSummary",
                     "load_build_config", "merge", "prepare_build", "run_build", "run_chunks"), "build"),
    **dict.fromkeys(("DecodedDocument", "LayoutError", "TokenLayout"), "layout"),
    **dict.fromkeys(("Manifest", "ManifestError", "Sample", "read_manifest"), "manifest"),
    **dict.fromkeys(("TextTokenizer", "load_text_tokenizer"), "text"),
    **dict.fromkeys(("ClipSpec", "MediaError", "read_sample"), "video"),
    **dict.fromkeys(("DEFAULT_TOKENIZER", "VideoTokenizer", "load_video_tokenizer"), "video_tokenizer"),
}

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
    module = _EXPORTS.get(name)
    if module is not None:
        value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
        globals()[name] = value  # once: later lookups do not come here
        return value
    # BuildSummary was the summary of the removed single-process build(); RunSummary is the one summary now.
    if name == "BuildSummary":
        import warnings

        warnings.warn("nemo_cosmos_tokenizer.data.BuildSummary is deprecated: it is RunSummary (chunks -> "
                      "chunks_total)", DeprecationWarning, stacklevel=2)
        return __getattr__("RunSummary")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
