"""Shared test fixtures: the reference material in ../shared and the tiny conformance models.

* ``shared_dir``: ``$NCT_SHARED_DIR`` or ``<repo>/../shared`` (tests using it are skipped when missing);
* ``conformance_dir`` / ``media_dir``: its ``conformance/`` and ``media/`` folders;
* ``load_conformance_model(case)``: a plain function (also a fixture of the same name) returning the reduced
  :class:`~nemo_cosmos_tokenizer.networks.CosmosTokenizer` of a conformance case (e.g. ``"DV8x16x16"``) with
  the case's ``encoder.safetensors`` / ``decoder.safetensors`` loaded through ``load_cosmos_state_dict``,
  float32, eval mode. Cached per session (per xdist worker): **do not modify the returned model**; use
  ``copy.deepcopy`` first if a test needs to change it.

The plain function lives in ``tests/conformance_helpers.py``; import it from there
(``from conformance_helpers import load_conformance_model``): ``from conftest import ...`` resolves to
whichever ``conftest.py`` pytest imported last.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # conformance_helpers, tokenizer_helpers

from conformance_helpers import (  # noqa: E402
    CONFORMANCE_CASES,
    find_shared_dir,
    load_conformance_model,
    require,
)

__all__ = ["CONFORMANCE_CASES", "find_shared_dir", "load_conformance_model"]


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return require(find_shared_dir(), "shared reference folder")


@pytest.fixture(scope="session")
def conformance_dir(shared_dir: Path) -> Path:
    return require(shared_dir / "conformance", "conformance folder")


@pytest.fixture(scope="session")
def media_dir(shared_dir: Path) -> Path:
    return require(shared_dir / "media", "media folder")


@pytest.fixture(name="load_conformance_model", scope="session")
def _load_conformance_model_fixture():
    return load_conformance_model
