#!/usr/bin/env python3
"""Rewrite recipes/*.yaml from the presets (nemo_cosmos_tokenizer/recipes/presets.py), the one place they are defined.

Example (from the repository root): ``python scripts/generate_recipes.py`` (then commit the changed files);
``tests/recipes/test_presets.py`` fails while a recipe file differs from its preset.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from nemo_cosmos_tokenizer.recipes.presets import write_recipes  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory", nargs="?", default=str(REPO / "recipes"), help="where to write (default: recipes/)")
    args = parser.parse_args()
    for path in write_recipes(args.directory):
        print(path)


if __name__ == "__main__":
    main()
