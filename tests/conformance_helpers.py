"""The reference material in ../shared and the tiny conformance models, importable from any test.

Import as ``from conformance_helpers import load_conformance_model`` (``tests/`` is on ``sys.path`` under
pytest). ``from conftest import ...`` is not reliable: every ``conftest.py`` is imported under the module
name ``conftest``, so which one that name refers to depends on collection order.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import pytest

REPO_DIR = Path(__file__).resolve().parents[1]

CONFORMANCE_CASES = (
    "CI8x8", "CI16x16", "DI8x8", "DI16x16",
    "CV4x8x8", "CV8x8x8", "CV8x16x16", "DV4x8x8", "DV8x8x8", "DV8x16x16",
)


def find_shared_dir() -> Path | None:
    """``$NCT_SHARED_DIR`` or ``<repo>/../shared`` if it exists, else ``None``."""
    candidate = Path(os.environ.get("NCT_SHARED_DIR") or REPO_DIR.parent / "shared")
    return candidate if candidate.is_dir() else None


def require(path: Path | None, what: str) -> Path:
    """``path``, or skip the calling test when it is missing."""
    if path is None or not path.exists():
        pytest.skip(f"{what} not found (set NCT_SHARED_DIR to the shared reference folder)")
    return path


@functools.lru_cache(maxsize=None)
def load_conformance_model(case: str):
    """The reduced conformance model ``case`` (e.g. ``"DV8x16x16"``) with its reference weights loaded
    through ``load_cosmos_state_dict``; float32, eval mode, no grad. Cached per process: **do not modify
    it** (``copy.deepcopy`` first)."""
    from safetensors.torch import load_file

    from nemo_cosmos_tokenizer.config import TokenizerConfig
    from nemo_cosmos_tokenizer.networks import build_tokenizer

    shared = find_shared_dir()
    case_dir = require(shared / "conformance" / case if shared else None, f"conformance case {case}")
    kwargs = json.loads((case_dir / "config.json").read_text())["kwargs"]
    model = build_tokenizer(TokenizerConfig.from_cosmos_kwargs(kwargs))
    model.load_cosmos_state_dict(load_file(str(case_dir / "encoder.safetensors")), part="encoder")
    model.load_cosmos_state_dict(load_file(str(case_dir / "decoder.safetensors")), part="decoder")
    return model.eval().requires_grad_(False)
