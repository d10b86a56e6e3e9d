"""Build tests share ``tests/data/media_build_inputs.py`` with the other data tests."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # media_build_inputs
