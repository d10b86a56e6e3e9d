"""Shared test fixtures: the reference material in ../shared and the tiny conformance models.

* ``shared_dir``: ``$NCT_SHARED_DIR`` or ``<repo>/../shared`` (tests using it are skipped when missing);
* ``conformance_dir`` / ``media_dir``: its ``conformance/`` and ``media/`` folders;
* ``load_conformance_model(case)``: a plain function (also a fixture of the same name) returning the reduced
  :class:`~nemo_cosmos_tokenizer.networks.CosmosTokenizer` of a conformance case (e.g. ``"DV8x16x16"``) with
  the case's ``encoder.safetensors`` / ``decoder.safetensors`` loaded through ``load_cosmos_state_dict``,
  float32, eval mode. Cached per session (per xdist worker): **do not modify the returned model**; use
  ``copy.deepcopy`` first if a test needs to change it.
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


def _require(path: Path | None, what: str) -> Path:
    if path is None or not path.exists():
        pytest.skip(f"{what} not found (set NCT_SHARED_DIR to the shared reference folder)")
    return path


@functools.lru_cache(maxsize=None)
def load_conformance_model(case: str):
    """The reduced conformance model ``case`` with its reference weights loaded (cached; do not modify)."""
    from safetensors.torch import load_file

    from nemo_cosmos_tokenizer.config import TokenizerConfig
    from nemo_cosmos_tokenizer.networks import build_tokenizer

    shared = find_shared_dir()
    case_dir = _require(shared / "conformance" / case if shared else None, f"conformance case {case}")
    kwargs = json.loads((case_dir / "config.json").read_text())["kwargs"]
    model = build_tokenizer(TokenizerConfig.from_cosmos_kwargs(kwargs))
    model.load_cosmos_state_dict(load_file(str(case_dir / "encoder.safetensors")), part="encoder")
    model.load_cosmos_state_dict(load_file(str(case_dir / "decoder.safetensors")), part="decoder")
    return model.eval().requires_grad_(False)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return _require(find_shared_dir(), "shared reference folder")


@pytest.fixture(scope="session")
def conformance_dir(shared_dir: Path) -> Path:
    return _require(shared_dir / "conformance", "conformance folder")


@pytest.fixture(scope="session")
def media_dir(shared_dir: Path) -> Path:
    return _require(shared_dir / "media", "media folder")


@pytest.fixture(name="load_conformance_model", scope="session")
def _load_conformance_model_fixture():
    return load_conformance_model
