"""``sample_video.py``: generate a video from a caption with a model trained by train_gpt.py; write mp4.

Also run as ``python scripts/sample_video.py``.
"""

from __future__ import annotations

import argparse
import json
from typing import Sequence

from ._logging import setup_logging
from .main import add_debug_argument, run_parsed

__all__ = ["DESCRIPTION", "HELP", "add_arguments", "interrupt_message", "main", "run"]

HELP = "generate a video from a caption with a train_gpt.py model; write mp4"
DESCRIPTION = """Load the newest checkpoint of a train_gpt.py run, write the caption prompt
(bos caption boi shape grid), let the model fill in the video block - only visual ids where the layout has a visual
token, the row/frame/eoi/eod separators where it has those - and decode the grid to mp4 with the video tokenizer
recorded in the dataset's sidecar.

examples:
  python scripts/sample_video.py runs/demo "A red square moves right on a blue background." --output sample.mp4
  python scripts/sample_video.py runs/demo "..." --num-samples 4 --temperature 0.8 --top-k 100 --grid 3 6 8
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="train_gpt.py --output-dir (or one of its checkpoints/step_* folders)")
    parser.add_argument("caption", help="the text prompt")
    parser.add_argument("--output", default="sample.mp4", help="video to write (several samples: NAME.i.mp4)")
    parser.add_argument("--num-samples", type=int, default=1)
    parser.add_argument("--grid", type=int, nargs=3, metavar=("T", "H", "W"),
                        help="latent grid T' H' W' (default: the grid of the dataset's first document)")
    parser.add_argument("--temperature", type=float, default=1.0, help="0: greedy")
    parser.add_argument("--top-k", type=int, help="sample among the k most likely visual ids")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--data-prefix", help="the dataset (default: the one the run trained on)")
    parser.add_argument("--decoder", help="video tokenizer name or path (default: the one in the sidecar)")
    parser.add_argument("--fps", type=float, help="frame rate of the mp4 (default: the dataset's, else 24)")
    parser.add_argument("--json", action="store_true", help="print the result (ids included) as JSON")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sample_video.py", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    add_debug_argument(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    from ..megatron.sampling import sample_videos
    from ._errors import UsageError

    setup_logging("INFO")
    try:
        result = sample_videos(
            args.run_dir, args.caption, args.output, num_samples=args.num_samples, grid_shape=args.grid,
            temperature=args.temperature, top_k=args.top_k, seed=args.seed, device=args.device,
            data_prefix=args.data_prefix, decoder=args.decoder, fps=args.fps,
        )
    except (FileNotFoundError, ValueError) as err:  # bad settings or paths
        raise UsageError(str(err)) from None
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        t, h, w = result.grid_shape
        print(f"{len(result.videos)} sample(s) of a {t} x {h} x {w} grid from {result.checkpoint}: {', '.join(result.videos)}")
    return 0


def interrupt_message(args: argparse.Namespace) -> str:
    """What a Ctrl-C keeps: the videos are written once every sample is drawn, so usually none."""
    return ("only videos already written are kept (they are written after every sample is drawn); run the same "
            "command again to sample anew")


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and sample: errors end in one or two lines (exit 2 / 1), Ctrl-C in one line (exit 130)."""
    return run_parsed(build_parser().parse_args(argv), run, interrupt_message)


if __name__ == "__main__":
    raise SystemExit(main())
