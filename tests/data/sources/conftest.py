"""Input-source tests share ``tests/data/corpus_inputs.py`` with the build tests."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # corpus_inputs
