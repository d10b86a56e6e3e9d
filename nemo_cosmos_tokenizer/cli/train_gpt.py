"""``train_gpt.py``: train a megatron-core GPT on built shards (one process, or one per GPU under torchrun).

Also run as ``python scripts/train_gpt.py``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing
from typing import Sequence

from ._logging import setup_logging
from .main import add_debug_argument, run_parsed

__all__ = ["DESCRIPTION", "HELP", "add_arguments", "interrupt_message", "main", "run"]

HELP = "train a megatron-core GPT on built shards (torchrun for several GPUs)"
DESCRIPTION = """Train a megatron-core GPTModel on a dataset built by build_video_token_dataset.py: GPTDataset with
the dataset's own eod/pad/vocabulary (SidecarTokenizer), tensor parallel x data parallel under torchrun,
checkpoints every --save-interval steps (rerun the same command to resume), loss, tokens/s and MFU in the log and
<output-dir>/train_log.jsonl, the end in <output-dir>/summary.json. Settings: defaults, then --config YAML
(TrainConfig field names), then flags.

examples:
  python scripts/train_gpt.py --config recipes/train_gpt_demo.yaml --data-prefix demo/tokens --output-dir runs/demo
  torchrun --nproc-per-node 8 scripts/train_gpt.py --config recipes/train_gpt_demo.yaml \\
      --data-prefix /data/tokens/clips --output-dir runs/clips --tensor-parallel 2
  python scripts/train_gpt.py --data-prefix demo/tokens --output-dir runs/cpu --device cpu \\
      --position-embedding learned_absolute --max-steps 20 --split 5,1,0
"""


def _fields():
    from ..megatron.config import TrainConfig

    hints = typing.get_type_hints(TrainConfig)
    for field in dataclasses.fields(TrainConfig):
        kind = hints[field.name]
        base = next((a for a in typing.get_args(kind) if a is not type(None)), kind)  # Optional[int] -> int
        yield field.name, base


def _field_docs() -> dict[str, str]:
    from ..megatron.config import TrainConfig

    from ._field_docs import field_docs

    return field_docs(TrainConfig)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="YAML", help="TrainConfig settings (flags override them)")
    from ..megatron.config import TrainConfig

    docs = _field_docs()
    for name, base in _fields():
        flag = "--" + name.replace("_", "-")
        text = f"{docs.get(name, '')} (default {getattr(TrainConfig, name)})".strip()
        if base is bool:
            parser.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=text)
        else:
            parser.add_argument(flag, dest=name, type=base, default=None, metavar=name.split("_")[-1].upper(),
                                help=text)
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="train_gpt.py", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    add_debug_argument(parser)
    return parser


def _config(args: argparse.Namespace):
    from ..megatron.train import load_train_config

    return load_train_config(args.config, {name: getattr(args, name) for name, _ in _fields()})


def run(args: argparse.Namespace) -> int:
    from ..megatron.train import train
    from ._errors import UsageError

    setup_logging(args.log_level)
    try:
        summary = train(_config(args))
    except (FileNotFoundError, ValueError) as err:  # bad settings or paths
        raise UsageError(str(err)) from None
    from ..distributed import get_dist_env

    if get_dist_env().is_main:
        print(json.dumps(summary.to_dict()))
    return 0


def interrupt_message(args: argparse.Namespace) -> str:
    """What a Ctrl-C keeps: the checkpoints (one every save_interval steps), from which the same command resumes."""
    try:
        from ..megatron.train import latest_checkpoint

        newest = latest_checkpoint(_config(args).output_dir)
    except Exception:  # noqa: BLE001  (settings that did not load: nothing was trained)
        newest = None
    if newest is None:
        return "no checkpoint was written yet (one every --save-interval steps); the same command starts over"
    return f"the checkpoints are kept (newest: {newest}); run the same command again to resume from it"


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and train: errors end in one or two lines (exit 2 / 1), Ctrl-C in one line (exit 130)."""
    return run_parsed(build_parser().parse_args(argv), run, interrupt_message)


if __name__ == "__main__":
    raise SystemExit(main())
