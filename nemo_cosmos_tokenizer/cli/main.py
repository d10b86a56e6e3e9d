"""``nemo-cosmos-tokenizer``: a dispatcher over subcommand modules.

Each subcommand is a module in :data:`SUBCOMMANDS` that defines

* ``HELP`` (one line for the command list) and optionally ``DESCRIPTION`` (shown by ``<command> --help``,
  with examples);
* ``add_arguments(parser: argparse.ArgumentParser) -> None``;
* ``run(args: argparse.Namespace) -> int`` (the exit status).

Modules must be cheap to import (heavy imports inside ``run``): all of them are imported to build the parser.
To add a command, add one line to :data:`SUBCOMMANDS`.

Examples::

    nemo-cosmos-tokenizer list-models
    python -m nemo_cosmos_tokenizer.cli list-models --json
"""

from __future__ import annotations

import argparse
import importlib
from typing import Sequence

__all__ = ["SUBCOMMANDS", "build_parser", "main"]

#: command name -> module implementing it.
SUBCOMMANDS: dict[str, str] = {
    "list-models": "nemo_cosmos_tokenizer.cli.list_models",
    "reconstruct-images": "nemo_cosmos_tokenizer.cli.reconstruct_images",
    "reconstruct-videos": "nemo_cosmos_tokenizer.cli.reconstruct_videos",
    "encode": "nemo_cosmos_tokenizer.cli.encode",
    "build-dataset": "nemo_cosmos_tokenizer.cli.build_dataset",
    "inspect-dataset": "nemo_cosmos_tokenizer.cli.inspect_dataset",
    "evaluate": "nemo_cosmos_tokenizer.cli.evaluate",
}

EPILOG = """examples:
  nemo-cosmos-tokenizer list-models
  nemo-cosmos-tokenizer reconstruct-videos "clips/*.mp4" --tokenizer Cosmos-1.0-Tokenizer-DV8x16x16
  nemo-cosmos-tokenizer encode img.png --tokenizer Cosmos-0.1-Tokenizer-CI8x8 --format npy
  nemo-cosmos-tokenizer build-dataset --demo --output-prefix demo/tokens
  nemo-cosmos-tokenizer evaluate "clips/*.mp4" --tokenizer Cosmos-1.0-Tokenizer-DV8x16x16 --output-dir eval/

Run '%(prog)s <command> --help' for the options and more examples of a command."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nemo-cosmos-tokenizer",
        description="Cosmos tokenizers (NVIDIA checkpoints, native PyTorch networks) for NeMo / Megatron.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="<command>", required=True)
    for name, module_name in SUBCOMMANDS.items():
        module = importlib.import_module(module_name)
        sub = subparsers.add_parser(
            name,
            help=module.HELP,
            description=getattr(module, "DESCRIPTION", module.HELP),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(sub)
        sub.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``) and run the chosen command; returns its exit status."""
    args = build_parser().parse_args(argv)
    return int(args._run(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
