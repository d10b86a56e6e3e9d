"""Shared test fixtures: the conformance vectors, test media and the tiny conformance models.

* ``conformance_dir``: the conformance vectors: ``$NCT_SHARED_DIR/conformance`` when that variable is set, else
  the in-repo copy ``tests/fixtures/conformance.tar.xz``, unpacked once into a cache folder (see
  ``conformance_helpers.py``); a clone tests itself without ``../shared``;
* ``shared_dir``: ``$NCT_SHARED_DIR`` or ``<repo>/../shared`` (tests using it are skipped when missing);
* ``shared_media_dir``: its ``media/`` folder of real-world files (not redistributable, so not in the repo);
  tests that need a property only a real file has (rotation metadata, several streams, ...) use it and skip
  without it;
* ``media_dir``: ``shared_media_dir`` when present, else small generated stand-ins of the same names, codecs,
  sizes, frame rates and frame counts (``generated_media.py``) for the files it lists;
* ``load_conformance_model(case)``: a plain function (also a fixture of the same name) returning the reduced
  :class:`~nemo_cosmos_tokenizer.networks.CosmosTokenizer` of a conformance case (e.g. ``"DV8x16x16"``) with
  the case's ``encoder.safetensors`` / ``decoder.safetensors`` loaded through ``load_cosmos_state_dict``,
  float32, eval mode. Cached per session (per xdist worker): **do not modify the returned model**; use
  ``copy.deepcopy`` first if a test needs to change it.

The plain function lives in ``tests/conformance_helpers.py``; import it from there
(``from conformance_helpers import load_conformance_model``): ``from conftest import ...`` resolves to
whichever ``conftest.py`` pytest imported last.

A test skipped because a fixture is missing says so (``skip_missing``); the summary at the end counts those
skips by fixture.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # conformance_helpers, tokenizer_helpers

from conformance_helpers import (  # noqa: E402
    CONFORMANCE_CASES,
    MISSING_TAG,
    find_shared_dir,
    load_conformance_model,
    require,
    require_conformance,
)

__all__ = ["CONFORMANCE_CASES", "find_shared_dir", "load_conformance_model"]


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return require(find_shared_dir(), "shared reference folder")


@pytest.fixture(scope="session")
def conformance_dir() -> Path:
    return require_conformance()


@pytest.fixture(scope="session")
def shared_media_dir() -> Path:
    shared = find_shared_dir()
    return require(shared / "media" if shared else None, "shared media folder (real-world files)", "shared_media_dir")


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    shared = find_shared_dir()
    if shared is not None and (shared / "media").is_dir():
        return shared / "media"
    import os
    import shutil

    from filelock import FileLock  # a dependency of torch and huggingface_hub
    from generated_media import make_generated_media

    base = tmp_path_factory.getbasetemp()
    # Under xdist each worker's basetemp is <run dir>/popen-gwN: generate once per run, shared by the workers.
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    target = root / "nct-generated-media"
    with FileLock(str(root / "nct-generated-media.lock")):
        if not (target / "captions.jsonl").is_file():
            partial = root / "nct-generated-media.partial"
            shutil.rmtree(partial, ignore_errors=True)
            make_generated_media(partial).rename(target)
    return target


@pytest.fixture(name="load_conformance_model", scope="session")
def _load_conformance_model_fixture():
    return load_conformance_model


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Count the tests skipped for a missing fixture, by fixture, so a run without ../shared says what it left out."""
    import re
    from collections import Counter

    by_fixture: Counter[str] = Counter()
    reasons: dict[str, Counter[str]] = {}
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
        match = re.search(re.escape(MISSING_TAG) + r" \[([^\]]+)\]: (.*)", reason)
        if match:
            by_fixture[match.group(1)] += 1
            reasons.setdefault(match.group(1), Counter())[match.group(2)] += 1
    if not by_fixture:
        return
    terminalreporter.write_sep("-", f"{sum(by_fixture.values())} tests skipped for missing fixtures")
    for fixture, count in by_fixture.most_common():
        terminalreporter.write_line(f"{count:5d}  {fixture}")
        for reason, n in reasons[fixture].most_common():
            terminalreporter.write_line(f"{n:11d}  {reason}")
