#!/usr/bin/env python3
"""Train or fine-tune a Cosmos tokenizer on videos/images (see --help).

Thin wrapper over nemo_cosmos_tokenizer.cli.train_tokenizer (also `nemo-cosmos-tokenizer train-tokenizer`).
"""

import sys
from pathlib import Path

try:
    import nemo_cosmos_tokenizer  # noqa: F401
except ImportError:  # a source checkout that was not pip-installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nemo_cosmos_tokenizer.cli.train_tokenizer import main

if __name__ == "__main__":
    sys.exit(main())
