"""``python -m nemo_cosmos_tokenizer.cli <command> ...``."""

from .main import main

if __name__ == "__main__":
    raise SystemExit(main())
