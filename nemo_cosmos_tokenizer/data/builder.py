"""Deprecated: the dataset build is the package :mod:`nemo_cosmos_tokenizer.data.build`.

Every name this module had still imports from here. :func:`build` is a thin wrapper over
:func:`~nemo_cosmos_tokenizer.data.build.run_build` in this process alone, and returns its
:class:`~nemo_cosmos_tokenizer.data.build.RunSummary` (``BuildSummary`` is that class; its ``chunks`` is now
``chunks_total``). Use ``run_build(config)`` instead.
"""

from __future__ import annotations

import warnings

from .build import (  # noqa: F401 - re-exported
    CHUNK_NAME,
    DATASET_FORMAT,
    FORMAT_VERSION,
    TEMPORAL_MODES,
    VIDEO_BACKENDS,
    BuildConfig,
    BuildContext,
    ConfigMismatchError,
    IncompleteBuildError,
    load_build_config,
    merge,
    prepare_build,
    run_chunks,
)
from .build import RunSummary as BuildSummary
from .video_tokenizer import DEFAULT_TOKENIZER  # noqa: F401
from .writer import require_megatron  # noqa: F401

warnings.warn(
    "nemo_cosmos_tokenizer.data.builder is deprecated: import from nemo_cosmos_tokenizer.data.build",
    DeprecationWarning,
    stacklevel=2,
)


def build(config: BuildConfig, *, video_tokenizer=None, text_tokenizer=None) -> BuildSummary:
    """Deprecated: ``run_build(config, env=DistEnv())`` (this process alone, whatever the launcher says)."""
    from ..distributed import DistEnv
    from .build import run_build

    warnings.warn("nemo_cosmos_tokenizer.data.builder.build() is deprecated: use "
                  "nemo_cosmos_tokenizer.data.build.run_build()", DeprecationWarning, stacklevel=2)
    return run_build(config, video_tokenizer=video_tokenizer, text_tokenizer=text_tokenizer, env=DistEnv())
