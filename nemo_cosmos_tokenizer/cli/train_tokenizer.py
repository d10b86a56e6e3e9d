"""``train-tokenizer``: train or fine-tune a Cosmos tokenizer (one process, or one per GPU under torchrun).

Also run as ``python scripts/train_tokenizer.py``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing
from typing import Sequence

from .main import add_debug_argument, run_parsed

__all__ = ["HELP", "DESCRIPTION", "add_arguments", "run", "main", "interrupt_message"]

HELP = "train or fine-tune a Cosmos tokenizer on videos/images (torchrun for several GPUs)"
DESCRIPTION = """Train a Cosmos tokenizer from scratch, or fine-tune a released or local one (--init), on the inputs
build-dataset takes (a folder, a .jsonl/.csv/.parquet manifest, .tar shards, object storage). Losses: L1 on pixels,
LPIPS-VGG perceptual (weight files), optional hinge GAN; AdamW with warm-up, gradient clipping, EMA, bf16 autocast.
Writes <output-dir>/final/ (config.json + model.safetensors: --tokenizer <output-dir>/final in every command),
checkpoints (rerun the same command to resume), train_log.jsonl; --export-jit adds NVIDIA's .jit files in jit/.
Settings: defaults, then --config YAML (TokenizerTrainConfig field names), then flags, then key=value overrides.

modes: full (= encoder+decoder) trains every weight: the ids of every clip change, so shards and AR models made
with the old tokenizer go stale. decoder freezes encoder and quant_conv: every id stays valid, only the
reconstruction from ids improves.

examples:
  # a small DV tokenizer from scratch (17x128x128 clips -> 3x8x8 tokens)
  nemo-cosmos-tokenizer train-tokenizer --config recipes/train_tokenizer_demo.yaml --input clips/ --output-dir runs/dv
  # fine-tune only the decoder of a released model (ids unchanged), 8 GPUs
  torchrun --nproc-per-node 8 scripts/train_tokenizer.py --init Cosmos-1.0-Tokenizer-DV8x16x16 --mode decoder \\
      --input 'shards/{000000..000099}.tar' --output-dir runs/dv-decoder --resolution 256,256 --num-frames 49
  # any setting as key=value
  nemo-cosmos-tokenizer train-tokenizer --config recipes/train_tokenizer_demo.yaml --input clips/ \\
      --output-dir runs/dv lr=2e-4 'levels=[8,8,8,5,5,5]' perceptual_weight=0.1
"""


def _fields():
    from ..training.config import TokenizerTrainConfig

    hints = typing.get_type_hints(TokenizerTrainConfig)
    for field in dataclasses.fields(TokenizerTrainConfig):
        kind = hints[field.name]
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        base = args[0] if typing.get_origin(kind) is typing.Union and args else kind
        yield field.name, base, field.default


def _field_docs() -> dict[str, str]:
    from ..training.config import TokenizerTrainConfig

    from ._field_docs import field_docs

    return field_docs(TokenizerTrainConfig)


def _comma_list(item: type):
    def parse(text: str) -> list:
        parts = [p for p in text.strip().strip("[]()").replace(" ", ",").split(",") if p]
        try:
            return [item(p) for p in parts]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated {item.__name__} values, got {text!r}") from None

    parse.__name__ = f"{item.__name__} list"
    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="YAML", help="TokenizerTrainConfig settings (flags override them)")
    docs = _field_docs()
    for name, base, default in _fields():
        flag = "--" + name.replace("_", "-")
        text = f"{docs.get(name, '')} (default {default})".strip()
        if base is bool:
            parser.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=text)
        elif typing.get_origin(base) is tuple:
            item = typing.get_args(base)[0]
            # One comma-separated value (``--levels 8,8,8,5,5,5``): a list of words would swallow key=value.
            parser.add_argument(flag, dest=name, type=_comma_list(item), default=None,
                                metavar=",".join([item.__name__.upper()] * 2), help=text)
        else:
            parser.add_argument(flag, dest=name, type=base, default=None, metavar=name.split("_")[-1].upper(),
                                help=text)
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="OmegaConf dotted overrides, applied last (e.g. lr=2e-4 resolution=[128,128])")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="train_tokenizer.py", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    add_debug_argument(parser)
    return parser


def load_config(args: argparse.Namespace):
    """The :class:`TokenizerTrainConfig` of the parsed flags; a :class:`._errors.UsageError` for bad settings."""
    from ..training.config import TrainConfigError, load_train_config
    from ._errors import UsageError, check_inputs_exist, check_writable_dir

    if args.config:
        check_inputs_exist([args.config], "--config file")
    try:
        config = load_train_config(args.config, {name: getattr(args, name) for name, _, _ in _fields()},
                                   args.overrides)
        config.require_paths()
    except TrainConfigError as err:
        raise UsageError(err.message, err.hint) from None
    from ..data.locations import is_remote

    for what, value in (("--input", config.input), ("--val-input", config.val_input)):
        if value and not is_remote(value) and "{" not in value:
            check_inputs_exist([value], what)
    check_writable_dir(config.output_dir, "training outputs")
    return config


def run(args: argparse.Namespace) -> int:
    import logging

    from ._errors import UsageError
    from ._logging import setup_logging

    setup_logging(args.log_level)
    logging.getLogger("nemo_cosmos_tokenizer").setLevel(getattr(logging, args.log_level))
    config = load_config(args)
    from ..training import TrainConfigError, train_tokenizer

    try:
        result = train_tokenizer(config)
    except TrainConfigError as err:
        raise UsageError(err.message, err.hint) from None
    from ..distributed import get_dist_env

    if get_dist_env().is_main:
        print(json.dumps({"final_dir": str(result.final_dir), "jit_dir": str(result.jit_dir) if result.jit_dir else None,
                          "steps": result.steps, "eval": result.eval}))
    return 0


def interrupt_message(args: argparse.Namespace) -> str:
    return ("the checkpoints written so far are kept (<output-dir>/checkpoints); run the same command again to "
            "continue from the newest")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_parsed(args, run, interrupt_message)


if __name__ == "__main__":
    raise SystemExit(main())
