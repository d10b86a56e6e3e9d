import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/tokenizer_helpers.py

from tokenizer_helpers import jit_case_dir  # noqa: E402,F401  (fixture)
