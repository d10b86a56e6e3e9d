"""``reconstruct-images`` / ``reconstruct-videos``: autoencode files and write the reconstructions."""

from __future__ import annotations

import argparse
import functools
import sys

from ._tokenizer_args import (
    add_tokenizer_arguments,
    add_video_arguments,
    check_tokenizer_args,
    describe_outputs,
    show_warnings,
    load_tokenizer_or_exit,
    print_failure,
    report,
)

__all__ = ["add_image_arguments", "add_video_arguments_", "run_images", "run_videos"]

IMAGES_HELP = "reconstruct images with an image tokenizer (CI / DI)"
IMAGES_DESCRIPTION = """Encode and decode images with a Cosmos image tokenizer and write the reconstructions.

Images are padded with black to multiples of the model's spatial compression and cropped back. Outputs go to
<output-dir>/<stem><ext> (default output dir: a 'reconstructions' folder next to each input, so inputs in the
working folder give ./reconstructions/; the first line says where). Unreadable inputs are reported and skipped;
the exit status is 1 if any failed.

examples:
  # offline: the built-in random-weight image tokenizer (no download; the output shows no picture, only noise)
  nemo-cosmos-tokenizer reconstruct-images photo.png --tokenizer tiny-random-di8x8 --output-dir out/
  nemo-cosmos-tokenizer reconstruct-images "photos/*.jpg" --tokenizer Cosmos-0.1-Tokenizer-DI8x8
  nemo-cosmos-tokenizer reconstruct-images a.png b.png --tokenizer Cosmos-1.0-Tokenizer-CI16x16-LowRes \\
      --device cpu --output-dir out/ --save-input
"""

VIDEOS_HELP = "reconstruct videos with a causal video tokenizer (CV / DV)"
VIDEOS_DESCRIPTION = """Encode and decode videos with a Cosmos video tokenizer and write the reconstructions.

Each video is cut into --temporal-window frame windows (each padded to 1 + k*t frames by repeating its last
frame, and spatially to the model's multiple), reconstructed, and written as H.264 MP4 at the input's frame rate
with the same frame count: <output-dir>/<stem>.mp4 (default output dir: a 'reconstructions' folder next to each
input, so inputs in the working folder give ./reconstructions/; the first line says where).
Unreadable inputs are reported and skipped; the exit status is 1 if any failed. A video whose data turns corrupt
part-way is reconstructed up to its last decodable frame, with a warning (as encode and build-dataset do).

examples:
  nemo-cosmos-tokenizer reconstruct-videos "clips/*.mp4" --tokenizer Cosmos-1.0-Tokenizer-DV8x16x16
  # offline: the built-in random-weight tokenizer (no download; the output shows no picture, only noise)
  nemo-cosmos-tokenizer reconstruct-videos clip.mp4 --tokenizer tiny-random-dv8x16x16 --output-dir out/
  nemo-cosmos-tokenizer reconstruct-videos in.mov --tokenizer Cosmos-0.1-Tokenizer-CV4x8x8 --short-size 480 \\
      --temporal-window 33 --device cuda --output-dir out/ --save-input
"""


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--save-input", action="store_true",
                        help="also write the (resized) input next to each reconstruction as <stem>_input")


def add_image_arguments(parser: argparse.ArgumentParser) -> None:
    add_tokenizer_arguments(parser)
    _add_common(parser)


def add_video_arguments_(parser: argparse.ArgumentParser) -> None:
    add_tokenizer_arguments(parser)
    add_video_arguments(parser)
    _add_common(parser)


def _run(args: argparse.Namespace, family: str) -> int:
    check_tokenizer_args(args, family)  # before torch loads: a mistake answers at once
    from ..media_files import expand_inputs, process_files, reconstruct_file

    paths = expand_inputs(args.inputs)
    show_warnings()
    tokenizer = load_tokenizer_or_exit(args, family)
    options = {"output_dir": args.output_dir, "short_size": args.short_size, "save_input": args.save_input}
    if family == "video":
        options.update(temporal_window=args.temporal_window or None, batch_windows=args.batch_windows)
    print(f"{tokenizer!r} -> {describe_outputs(paths, args.output_dir, 'reconstructions')}: {len(paths)} input(s)",
          file=sys.stderr)
    result = process_files(paths, functools.partial(reconstruct_file, tokenizer),
                           progress=False if args.no_progress else None, on_failure=print_failure, **options)
    return report(result, len(paths), "reconstructed")


def run_images(args: argparse.Namespace) -> int:
    return _run(args, "image")


def run_videos(args: argparse.Namespace) -> int:
    return _run(args, "video")
