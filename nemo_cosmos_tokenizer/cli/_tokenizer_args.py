"""Arguments and helpers shared by ``reconstruct-images``, ``reconstruct-videos`` and ``encode``."""

from __future__ import annotations

import argparse
import sys


def add_tokenizer_arguments(parser: argparse.ArgumentParser, default_tokenizer: str | None = None) -> None:
    """``inputs`` and the model / device / output flags."""
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="files or glob patterns (quote them to let the tool expand them; matches are sorted)")
    model = parser.add_argument_group("model")
    model.add_argument("--tokenizer", required=default_tokenizer is None, default=default_tokenizer,
                       help="released name (e.g. Cosmos-0.1-Tokenizer-DV4x8x8, downloaded once into the Hugging Face "
                            "cache) or a local directory of .jit files / our safetensors format"
                            + (f" (default: {default_tokenizer})" if default_tokenizer else ""))
    model.add_argument("--mode", choices=("torch", "jit"), default=None,
                       help="torch: native network with the checkpoint's weights (default); jit: run NVIDIA's "
                            "TorchScript files as they are")
    model.add_argument("--ema", action="store_true",
                       help="use the EMA weights of the repository's ema.jit (e.g. Cosmos-Tokenize1-DV8x16x16-720p)")
    model.add_argument("--dtype", default="bfloat16", help="compute dtype: bfloat16 (default), float16, float32")
    model.add_argument("--device", default=None, help="cuda, cuda:1, cpu, ... (default: cuda when available)")
    model.add_argument("--cache-dir", default=None, help="Hugging Face cache folder (default: HF_HUB_CACHE)")
    model.add_argument("--revision", default=None, help="Hub revision (branch, tag or commit)")
    model.add_argument("--local-files-only", action="store_true",
                       help="never touch the network; use the Hugging Face cache (like HF_HUB_OFFLINE=1)")
    data = parser.add_argument_group("processing")
    data.add_argument("--short-size", type=int, default=None,
                      help="resize so the short side has this many pixels (aspect kept, long side even)")
    data.add_argument("--output-dir", default=None, help="where to write (default: next to each input)")
    data.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_video_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("video")
    group.add_argument("--temporal-window", type=int, default=17,
                       help="frames per window (default 17); each window is padded to 1 + k*t frames by repeating "
                            "its last frame; 0 = the whole clip at once")
    group.add_argument("--batch-windows", type=int, default=4,
                       help="windows of equal length run through the network together (default 4)")


def load_tokenizer(args: argparse.Namespace, family: str | None):
    """The tokenizer the flags name. ``family``: ``"video"``, ``"image"`` or ``None`` (whichever it is)."""
    from ..inference import CausalVideoTokenizer, ImageTokenizer

    cls = {"video": CausalVideoTokenizer, "image": ImageTokenizer}.get(family or "") or _guess_class(args.tokenizer)
    use_pytorch = None if args.mode is None else args.mode == "torch"
    return cls.from_pretrained(
        args.tokenizer, use_pytorch=use_pytorch, dtype=args.dtype, device=args.device, cache_dir=args.cache_dir,
        revision=args.revision, local_files_only=args.local_files_only, ema=getattr(args, "ema", False),
    )


def _guess_class(name: str):
    from pathlib import Path

    from ..hub.resolve import config_from_path
    from ..inference.tokenizers import CausalVideoTokenizer, tokenizer_class
    from ..registry import get_spec, is_known_model

    if is_known_model(name) and not Path(name).is_dir():
        config = get_spec(name).config
    else:
        config, _ = config_from_path(name) if Path(name).exists() else (None, None)
    if config is None:
        return CausalVideoTokenizer  # from_pretrained reports an unknown name or a wrong family clearly
    return tokenizer_class(config.family)


def load_tokenizer_or_exit(args: argparse.Namespace, family: str | None):
    """:func:`load_tokenizer`, turning a wrong name, a missing file or a wrong family into a message and exit 2."""
    from ..hub.resolve import CheckpointNotFoundError, UnknownModelError, WrongFamilyError

    try:
        return load_tokenizer(args, family)
    except (UnknownModelError, CheckpointNotFoundError, WrongFamilyError) as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


def report(result, total: int, verb: str) -> int:
    """Print a summary to stderr; exit status 1 if any input failed."""
    done = total - len(result.failures)
    print(f"{verb} {done} of {total} input(s)", file=sys.stderr)
    if result.failures:
        print(f"{len(result.failures)} input(s) failed and were skipped:", file=sys.stderr)
        for failure in result.failures:
            print(f"  {failure}", file=sys.stderr)
        return 1
    return 0


def print_failure(failure) -> None:
    print(f"skipping {failure}", file=sys.stderr)
