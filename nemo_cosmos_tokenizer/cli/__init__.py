"""Command-line entry points (``nemo-cosmos-tokenizer <command>`` / ``python -m nemo_cosmos_tokenizer.cli``)."""
