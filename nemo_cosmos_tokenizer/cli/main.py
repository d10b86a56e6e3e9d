"""``nemo-cosmos-tokenizer``: a dispatcher over subcommand modules.

Each subcommand is a module in :data:`SUBCOMMANDS` that defines

* ``HELP`` (one line for the command list) and optionally ``DESCRIPTION`` (shown by ``<command> --help``,
  with examples);
* ``add_arguments(parser: argparse.ArgumentParser) -> None``;
* ``run(args: argparse.Namespace) -> int`` (the exit status);
* optionally ``interrupt_message(args) -> str``: what a Ctrl-C keeps and how to go on.

Errors end in one or two plain lines and exit status 2 (usage) / 1 (failure) / 130 (Ctrl-C); ``--debug`` or
``NCT_DEBUG=1`` shows the traceback (see :mod:`._errors`).

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
    "train-gpt": "nemo_cosmos_tokenizer.cli.train_gpt",
    "sample-video": "nemo_cosmos_tokenizer.cli.sample_video",
    "train-tokenizer": "nemo_cosmos_tokenizer.cli.train_tokenizer",
}

EPILOG = """examples:
  nemo-cosmos-tokenizer list-models
  nemo-cosmos-tokenizer encode "clips/*.mp4" --tokenizer tiny-random-dv8x16x16 --output-dir tokens/   # offline
  nemo-cosmos-tokenizer reconstruct-videos "clips/*.mp4" --tokenizer Cosmos-1.0-Tokenizer-DV8x16x16
  nemo-cosmos-tokenizer encode img.png --tokenizer Cosmos-0.1-Tokenizer-CI8x8 --format npy
  nemo-cosmos-tokenizer build-dataset --demo --output-prefix demo/tokens
  nemo-cosmos-tokenizer evaluate "clips/*.mp4" --tokenizer Cosmos-1.0-Tokenizer-DV8x16x16 --output-dir eval/

Run '%(prog)s <command> --help' for the options and more examples of a command.
--debug (or NCT_DEBUG=1) shows the Python traceback of an error."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nemo-cosmos-tokenizer",
        description="Cosmos tokenizers (NVIDIA checkpoints, native PyTorch networks) for NeMo / Megatron.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_debug_argument(parser)
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
        add_debug_argument(sub, default=argparse.SUPPRESS)  # after the command too: `encode ... --debug`
        sub.set_defaults(_run=module.run, _interrupt=getattr(module, "interrupt_message", None))
    return parser


def add_debug_argument(parser: argparse.ArgumentParser, default=False) -> None:
    parser.add_argument("--debug", action="store_true", default=default,
                        help="show the Python traceback of an error (also: NCT_DEBUG=1)")


def run_parsed(args: argparse.Namespace, run, interrupt_message=None) -> int:
    """``run(args)`` inside :func:`._errors.guarded`: plain messages and exit statuses instead of tracebacks."""
    from ._errors import guarded

    on_interrupt = (lambda: interrupt_message(args)) if interrupt_message is not None else None
    return guarded(lambda: run(args), debug=getattr(args, "debug", False), on_interrupt=on_interrupt)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``) and run the chosen command; returns its exit status."""
    args = build_parser().parse_args(argv)
    return run_parsed(args, args._run, args._interrupt)


if __name__ == "__main__":
    raise SystemExit(main())
