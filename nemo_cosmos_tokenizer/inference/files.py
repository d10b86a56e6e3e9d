"""Deprecated: moved to :mod:`nemo_cosmos_tokenizer.media_files` (media writing to
:mod:`nemo_cosmos_tokenizer.media_writing`), so that the inference API does not depend on the data pipeline.

``from nemo_cosmos_tokenizer.inference.files import reconstruct_file`` still works and warns.
"""

from __future__ import annotations

import warnings
from typing import Any


def __getattr__(name: str) -> Any:
    # PEP 562: resolved on first use only, so importing the inference package never imports the data pipeline.
    from .. import media_files

    if name.startswith("__") or not hasattr(media_files, name):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(f"nemo_cosmos_tokenizer.inference.files.{name} moved to nemo_cosmos_tokenizer.media_files.{name}",
                  DeprecationWarning, stacklevel=2)
    return getattr(media_files, name)
