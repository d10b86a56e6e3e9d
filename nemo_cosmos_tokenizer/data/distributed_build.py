"""Deprecated: :func:`run_build` and :class:`RunSummary` live in :mod:`nemo_cosmos_tokenizer.data.build`."""

from __future__ import annotations

import warnings

from .build import (  # noqa: F401 - re-exported
    BuildAbortedError,
    ChunkFailedError,
    RunSummary,
    data_paths_path,
    run_build,
    summary_path,
)
from .build.progress import LOG_INTERVAL_S, REPORT_INTERVAL_S  # noqa: F401

__all__ = ["ChunkFailedError", "RunSummary", "run_build", "summary_path", "data_paths_path"]

warnings.warn(
    "nemo_cosmos_tokenizer.data.distributed_build is deprecated: import from nemo_cosmos_tokenizer.data.build",
    DeprecationWarning,
    stacklevel=2,
)
