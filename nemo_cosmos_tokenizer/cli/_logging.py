"""Logging of the CLIs that load megatron-core: one setup, so they all quiet it the same way."""

from __future__ import annotations

import logging
import warnings

TIMED_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(level: str | int = "INFO", fmt: str = TIMED_FORMAT) -> None:
    """Root logging at ``level``; megatron-core at WARNING (it logs one INFO line per shard it opens) and without
    its warning that Transformer Engine / Apex are missing (the local fallbacks are what this package uses)."""
    logging.basicConfig(level=getattr(logging, level) if isinstance(level, str) else level, format=fmt)
    logging.getLogger("megatron").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*Transformer Engine and Apex are not installed.*")
