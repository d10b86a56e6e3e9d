"""``encode``: tokenize images / videos and save the indices (discrete) or latents (continuous) per file."""

from __future__ import annotations

import argparse
import functools
import sys

from ._tokenizer_args import (
    add_tokenizer_arguments,
    add_video_arguments,
    check_tokenizer_args,
    describe_outputs,
    interrupt_message,
    show_warnings,
    load_tokenizer_or_exit,
    print_failure,
    report,
)

HELP = "tokenize images / videos and save indices or latents per file (safetensors or .npy)"
DESCRIPTION = """Encode each input with a Cosmos tokenizer and save the result per file:
discrete models (DV/DI) save 'indices' (int32), continuous ones (CV/CI) 'latent' (float32).

Video tokenizers: [t, h, w] / [C, t, h, w], windows of --temporal-window frames concatenated along t (images
are 1-frame videos). Image tokenizers encode every frame on its own: [T, h, w] / [T, C, h, w]. H and W are the
padded size over the spatial compression. --format safetensors writes <stem>.safetensors (metadata: source,
tokenizer, frames, size, fps, window, layout, in its header); --format npy writes <stem>.npy + <stem>.json.
Default output dir: a 'tokens' folder next to each input. Unreadable inputs are reported and skipped; the exit
status is 1 if any failed. A video whose data turns corrupt part-way is encoded up to its last decodable frame,
with a warning (the 'frames' field records how many were used), as build-dataset does.

examples:
  # offline: the built-in random-weight tokenizer (no download; tokens carry no visual meaning)
  nemo-cosmos-tokenizer encode "clips/*.mp4" --tokenizer tiny-random-dv8x16x16 --output-dir tokens/
  nemo-cosmos-tokenizer encode "clips/*.mp4" --tokenizer Cosmos-1.0-Tokenizer-DV8x16x16 --output-dir tokens/
  nemo-cosmos-tokenizer encode img.png --tokenizer Cosmos-0.1-Tokenizer-CI8x8 --format npy --device cpu
  nemo-cosmos-tokenizer encode "photos/*.png" --tokenizer tiny-random-di8x8 --output-dir tokens/   # offline, images
"""

__all__ = ["DESCRIPTION", "HELP", "add_arguments", "interrupt_message", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_tokenizer_arguments(parser)
    add_video_arguments(parser)
    parser.add_argument("--format", choices=("safetensors", "npy"), default="safetensors",
                        help="output format (default safetensors)")


def run(args: argparse.Namespace) -> int:
    check_tokenizer_args(args, None)  # before torch loads: a mistake answers at once
    from ..media_files import encode_file, expand_inputs, process_files

    paths = expand_inputs(args.inputs)
    show_warnings()
    tokenizer = load_tokenizer_or_exit(args, None, parts=("encoder",))
    print(f"{tokenizer!r} -> {describe_outputs(paths, args.output_dir, 'tokens')}: {len(paths)} input(s)",
          file=sys.stderr)
    result = process_files(
        paths, functools.partial(encode_file, tokenizer), progress=False if args.no_progress else None,
        on_failure=print_failure, output_dir=args.output_dir, short_size=args.short_size,
        temporal_window=args.temporal_window or None, batch_windows=args.batch_windows, file_format=args.format,
        tokenizer_name=tokenizer.name or args.tokenizer,
    )
    return report(result, len(paths), "encoded")
