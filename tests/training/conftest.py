"""Fixtures of the training tests: the quickstart's generated clips (5 short videos and one image), once per session,
and :func:`tiny_config`, a tokenizer small enough for seconds-long CPU runs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # training_helpers


@pytest.fixture(scope="session")
def clips_dir(tmp_path_factory) -> Path:
    pytest.importorskip("av")
    from nemo_cosmos_tokenizer.data.samples import make_sample_inputs

    return make_sample_inputs(tmp_path_factory.mktemp("train-inputs")).directory
