#!/usr/bin/env python3
"""Print the caption and token grid of one document of a built dataset; decode it back to mp4 (see --help).

Thin wrapper over nemo_cosmos_tokenizer.cli.inspect_dataset (also `nemo-cosmos-tokenizer inspect-dataset`).
"""

import sys
from pathlib import Path

try:
    import nemo_cosmos_tokenizer  # noqa: F401
except ImportError:  # a source checkout that was not pip-installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nemo_cosmos_tokenizer.cli.inspect_dataset import main

if __name__ == "__main__":
    sys.exit(main())
