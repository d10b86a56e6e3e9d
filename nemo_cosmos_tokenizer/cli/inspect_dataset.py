"""``inspect-dataset``: show one document of a built dataset; with a decoder, write its video back as mp4.

Also run as ``python scripts/inspect_video_token_dataset.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from ._logging import setup_logging
from .main import add_debug_argument, run_parsed

HELP = "print a dataset document (decode it back to video) or the Megatron flags the dataset needs"
DESCRIPTION = """Print the caption text and the T' x H' x W' token grid shape of document N of a dataset built
by build-dataset (reads <prefix>.bin/.idx and <prefix>.json). With --decoder, reconstruct the document's video
with that tokenizer's decoder and write it as mp4 (a .png output for one-frame documents).

With --print-megatron-args, print what Megatron needs instead: the exact Megatron-LM flags (--data-path,
--tokenizer-type/--vocab-size that give this layout's eod, --seq-length from the document lengths, a --split that
leaves no split empty), the megatron-core / NeMo 2 tokenizer adapter, and warnings. Either way a --split that would
leave a split of some --data-path prefix without a document is reported (megatron-core 0.16's GPTDataset then loops
forever in _get_num_epochs: a hang, no error).

A --no-merge build (chunk shards) gets a blend weighted by the shards' token counts (--data-path w1 p1 w2 p2 ...,
also in <prefix>.data_paths_weighted.txt for --data-args-path): without weights megatron-core builds one epoch
per shard, caps the training samples there and fails with an AssertionError on a shard part shorter than
--seq-length + 1 tokens. --samples TRAIN,VALID,TEST (what training asks for) adds the --mid-level-dataset-surplus
that megatron-core's blend of many shards needs.

examples:
  python scripts/inspect_video_token_dataset.py demo/tokens --print-megatron-args
  python scripts/inspect_video_token_dataset.py data/clips --print-megatron-args --split 98,1,1 --tensor-parallel 2
  python scripts/inspect_video_token_dataset.py data/clips --print-megatron-args --samples 512000,5120,512
  python scripts/inspect_video_token_dataset.py demo/tokens --index 0
  python scripts/inspect_video_token_dataset.py demo/tokens --index 0 --decoder tiny-random-dv8x16x16 --output doc0.mp4
  python scripts/inspect_video_token_dataset.py data/clips --index 42 --decoder Cosmos-1.0-Tokenizer-DV8x16x16
"""

__all__ = ["HELP", "DESCRIPTION", "add_arguments", "run", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prefix", metavar="PREFIX", help="dataset prefix (without .bin/.idx)")
    parser.add_argument("--index", type=int, default=0, help="document number (default 0; negative from the end)")
    parser.add_argument("--decoder", metavar="NAME_OR_PATH", help="tokenizer whose decoder reconstructs the video "
                        "(the one the dataset was built with): released name, built-in name (tiny-random-dv8x16x16), "
                        "local folder or .jit file, as --tokenizer everywhere")
    parser.add_argument("--output", metavar="PATH", help="video to write (default <prefix>.doc<N>.mp4)")
    parser.add_argument("--fps", type=float, help="frame rate of the written video (default: the dataset's, else 24)")
    parser.add_argument("--device", help="device of the decoder (default: CUDA when available)")
    parser.add_argument("--text-tokenizer", metavar="PATH", help="override the text tokenizer recorded in the sidecar")
    parser.add_argument("--tokens", action="store_true", help="also print the token ids")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--print-megatron-args", action="store_true",
                        help="print the Megatron flags, tokenizer and --seq-length for this dataset (no document)")
    parser.add_argument("--split", default="99,1,0",
                        help="train,valid,test split to check against the document count (default 99,1,0, "
                        "Megatron-LM's)")
    parser.add_argument("--samples", type=_samples, metavar="TRAIN[,VALID[,TEST]]",
                        help="samples training asks for per split (Megatron-LM: train-iters x global-batch, ...): "
                        "sizes the --mid-level-dataset-surplus a blend of chunk shards (--no-merge) needs")
    parser.add_argument("--tensor-parallel", type=int, default=1, metavar="N",
                        help="tensor-parallel size (Megatron pads the vocabulary to a multiple of 128 x N)")


def _samples(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(part) for part in text.split(","))
    except ValueError:
        counts = ()
    if not 1 <= len(counts) <= 3 or min(counts) < 0:
        raise argparse.ArgumentTypeError(f"expected TRAIN[,VALID[,TEST]] sample counts >= 0, got {text!r}")
    return counts


def run(args: argparse.Namespace) -> int:
    from ._errors import UsageError

    if args.decoder is not None:  # the one resolver: a wrong name answers before any heavy import
        from ..hub.sources import resolve_tokenizer_source

        resolve_tokenizer_source(args.decoder)
    if not any(Path(f"{args.prefix}{ext}").is_file() for ext in (".idx", ".json")):
        raise UsageError(f"no dataset at {args.prefix} (no {args.prefix}.idx / .json)",
                         "give the prefix build-dataset wrote, without .bin/.idx")
    from ..data.reader import VideoTokenDataset, inspect_document

    setup_logging("WARNING", "%(levelname)s %(name)s: %(message)s")
    from ..megatron.settings import megatron_settings

    try:
        settings = megatron_settings(args.prefix, split=args.split, tensor_parallel=args.tensor_parallel,
                                     samples=args.samples)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.print_megatron_args:
        print(json.dumps(settings.to_dict(), ensure_ascii=False) if args.json else settings.format())
        return 0
    for warning in settings.warnings():
        print(f"warning: {warning}", file=sys.stderr)
    try:
        info = inspect_document(
            args.prefix, args.index, decoder=args.decoder, output=args.output, fps=args.fps, device=args.device,
            text_tokenizer=args.text_tokenizer,
        )
    except (FileNotFoundError, IndexError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.tokens:
        info["tokens"] = VideoTokenDataset(args.prefix, args.text_tokenizer).tokens(args.index).tolist()
    if args.json:
        print(json.dumps(info, ensure_ascii=False))
        return 0
    t, h, w = info["grid_shape"]
    print(f"document {info['index']}: {info['num_tokens']} tokens")
    print(f"text: {info['text']}")
    print(f"grid: {t} x {h} x {w} (T' x H' x W'), caption {'before' if info['caption_first'] else 'after'} the video")
    if info["video"]:
        print(f"video: {info['video']}")
    if args.tokens:
        print(f"tokens: {info['tokens']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="inspect_video_token_dataset.py", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(parser)
    add_debug_argument(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run_parsed(build_parser().parse_args(argv), run)


if __name__ == "__main__":
    raise SystemExit(main())
