"""The conformance vectors, the reference material in ../shared and the tiny conformance models.

Import as ``from conformance_helpers import load_conformance_model`` (``tests/`` is on ``sys.path`` under
pytest). ``from conftest import ...`` is not reliable: every ``conftest.py`` is imported under the module
name ``conftest``, so which one that name refers to depends on collection order.

Where the conformance vectors come from: ``$NCT_SHARED_DIR/conformance`` when that variable is set, else the
in-repo copy ``tests/fixtures/conformance.tar.xz`` (made by ``scripts/pack_conformance.py`` from
``../shared/conformance``), unpacked once into a cache folder under the system temp directory and checked
against ``tests/fixtures/SHA256SUMS``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

import pytest

REPO_DIR = Path(__file__).resolve().parents[1]

CONFORMANCE_CASES = (
    "CI8x8", "CI16x16", "DI8x8", "DI16x16",
    "CV4x8x8", "CV8x8x8", "CV8x16x16", "DV4x8x8", "DV8x8x8", "DV8x16x16",
)


FIXTURES_DIR = REPO_DIR / "tests" / "fixtures"
CONFORMANCE_ARCHIVE = FIXTURES_DIR / "conformance.tar.xz"
CONFORMANCE_SUMS = FIXTURES_DIR / "SHA256SUMS"

# Skip messages of a missing fixture start with this tag; tests/conftest.py counts them by fixture in the summary.
MISSING_TAG = "missing fixture"


def skip_missing(fixture: str, why: str):
    """Skip the calling test because ``fixture`` (a name the summary groups by) is not available."""
    pytest.skip(f"{MISSING_TAG} [{fixture}]: {why}")


def find_shared_dir() -> Path | None:
    """``$NCT_SHARED_DIR`` or ``<repo>/../shared`` if it exists, else ``None``."""
    candidate = Path(os.environ.get("NCT_SHARED_DIR") or REPO_DIR.parent / "shared")
    return candidate if candidate.is_dir() else None


def require(path: Path | None, what: str, fixture: str = "shared_dir") -> Path:
    """``path``, or skip the calling test when it is missing."""
    if path is None or not path.exists():
        skip_missing(fixture, f"{what} not found (set NCT_SHARED_DIR to the shared reference folder)")
    return path


def read_sums(path: Path = CONFORMANCE_SUMS) -> dict[str, str]:
    """``{relative path: sha256 hex}`` of a ``sha256sum``-format file."""
    pairs = (line.split(None, 1) for line in path.read_text().splitlines() if line.strip())
    return {name.strip(): digest for digest, name in pairs}


def tree_sums(root: Path) -> dict[str, str]:
    """``{relative path: sha256 hex}`` of every file under ``root``."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def unpack_conformance(archive: Path = CONFORMANCE_ARCHIVE, sums: Path = CONFORMANCE_SUMS,
                       cache: Path | None = None) -> Path:
    """The in-repo conformance archive unpacked into ``cache`` (default: the system temp directory), in a folder
    named by the archive's hash, so a changed archive never meets a stale copy. Unpacked into a temporary name,
    checked against ``sums`` and then renamed: concurrent xdist workers either win the rename or use the
    winner's copy, and a half-unpacked folder is never used."""
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()[:16]
    cache = Path(cache or tempfile.gettempdir()) / "nct-test-fixtures"
    target = cache / f"conformance-{digest}"
    if (target / "index.json").is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f"{target.name}.partial-", dir=cache))
    try:
        with tarfile.open(archive, mode="r:xz") as tar:
            # The "data" filter (Python >= 3.10.12) refuses links and absolute names; the archive is ours anyway.
            tar.extractall(partial, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
        unpacked = partial / "conformance"
        if tree_sums(unpacked) != read_sums(sums):
            raise RuntimeError(f"{archive} does not unpack to the files of {sums}: rerun scripts/pack_conformance.py")
        try:
            unpacked.rename(target)
        except OSError:  # another worker renamed its copy first
            if not (target / "index.json").is_file():
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target


@functools.lru_cache(maxsize=None)
def conformance_root() -> Path | None:
    """The conformance folder the tests read: ``$NCT_SHARED_DIR/conformance`` when that variable is set, else
    the unpacked in-repo copy; ``None`` when neither exists."""
    if os.environ.get("NCT_SHARED_DIR"):
        explicit = Path(os.environ["NCT_SHARED_DIR"]) / "conformance"
        if explicit.is_dir():
            return explicit
    return unpack_conformance() if CONFORMANCE_ARCHIVE.is_file() else None


def require_conformance() -> Path:
    """:func:`conformance_root`, or skip the calling test."""
    return require(conformance_root(), "conformance vectors (tests/fixtures/conformance.tar.xz)", "conformance_dir")


def need_media(media_dir: Path, *names: str) -> None:
    """Skip the calling test when ``media_dir`` is the generated stand-in folder and lacks one of ``names``
    because only the real file has the property the test reads (``generated_media.REAL_ONLY``)."""
    from generated_media import REAL_ONLY

    for name in names:
        if name in REAL_ONLY and not (media_dir / name).exists():
            skip_missing("shared_media_dir", f"{name}: {REAL_ONLY[name]}; only in ../shared/media")


@functools.lru_cache(maxsize=None)
def load_conformance_model(case: str):
    """The reduced conformance model ``case`` (e.g. ``"DV8x16x16"``) with its reference weights loaded
    through ``load_cosmos_state_dict``; float32, eval mode, no grad. Cached per process: **do not modify
    it** (``copy.deepcopy`` first)."""
    from safetensors.torch import load_file

    from nemo_cosmos_tokenizer.config import TokenizerConfig
    from nemo_cosmos_tokenizer.networks import build_tokenizer

    case_dir = require(require_conformance() / case, f"conformance case {case}", "conformance_dir")
    kwargs = json.loads((case_dir / "config.json").read_text())["kwargs"]
    model = build_tokenizer(TokenizerConfig.from_cosmos_kwargs(kwargs))
    model.load_cosmos_state_dict(load_file(str(case_dir / "encoder.safetensors")), part="encoder")
    model.load_cosmos_state_dict(load_file(str(case_dir / "decoder.safetensors")), part="decoder")
    return model.eval().requires_grad_(False)
