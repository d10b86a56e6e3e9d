"""Arguments and helpers shared by ``reconstruct-images``, ``reconstruct-videos`` and ``encode``."""

from __future__ import annotations

import argparse
import sys


def tokenizer_help(extra: str = "") -> str:
    """``--tokenizer``'s help: what it accepts, with the built-in names (the same words in every command)."""
    from ..registry import BUILTIN_MODELS

    builtins = "; ".join(f"{name}: {spec.summary}" for name, spec in BUILTIN_MODELS.items())
    return ("released name (e.g. Cosmos-1.0-Tokenizer-DV8x16x16, downloaded once into the Hugging Face cache; "
            "'nemo-cosmos-tokenizer list-models' lists them), a built-in name (" + builtins + "), a local folder "
            "of NVIDIA's .jit files or our safetensors format, or one .jit file" + extra)


def add_tokenizer_arguments(parser: argparse.ArgumentParser, default_tokenizer: str | None = None) -> None:
    """``inputs`` and the model / device / output flags."""
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="files or glob patterns (quote them to let the tool expand them; matches are sorted)")
    model = parser.add_argument_group("model")
    model.add_argument("--tokenizer", metavar="NAME_OR_PATH", required=default_tokenizer is None,
                       default=default_tokenizer,
                       help=tokenizer_help(f" (default: {default_tokenizer})" if default_tokenizer else ""))
    model.add_argument("--mode", choices=("torch", "jit"), default=None,
                       help="torch: native network with the checkpoint's weights (default); jit: run NVIDIA's "
                            "TorchScript files as they are")
    model.add_argument("--ema", action="store_true",
                       help="use the EMA weights of the repository's ema.jit (e.g. Cosmos-Tokenize1-DV8x16x16-720p)")
    model.add_argument("--dtype", default="auto",
                       help="compute dtype: auto (default: bfloat16 on CUDA, float32 on CPU, as build-dataset), "
                            "bfloat16, float16, float32")
    model.add_argument("--device", default=None, help="cuda, cuda:1, cpu, ... (default: cuda when available)")
    model.add_argument("--cache-dir", default=None, help="Hugging Face cache folder (default: HF_HUB_CACHE)")
    model.add_argument("--revision", default=None, help="Hub revision (branch, tag or commit)")
    model.add_argument("--local-files-only", action="store_true",
                       help="never touch the network; use the Hugging Face cache (like HF_HUB_OFFLINE=1)")
    data = parser.add_argument_group("processing")
    data.add_argument("--short-size", type=int, default=None,
                      help="resize so the short side has this many pixels (aspect kept, long side even)")
    data.add_argument("--output-dir", default=None,
                      help="where to write (default: a 'reconstructions' folder, for encode 'tokens', next to each "
                           "input: in the working folder when the inputs are there)")
    data.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_video_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("video")
    group.add_argument("--temporal-window", type=int, default=17,
                       help="frames per window (default 17); each window is padded to 1 + k*t frames by repeating "
                            "its last frame; 0 = the whole clip at once")
    group.add_argument("--batch-windows", type=int, default=4,
                       help="windows of equal length run through the network together (default 4)")


#: What resolve_dtype accepts (checked here without importing torch).
_DTYPE_NAMES = {"auto", "bfloat16", "bf16", "float16", "fp16", "half", "float32", "fp32", "float", "float64", "fp64",
                "double"}
#: The tokenizer families a video / image command takes.
_FAMILIES = {"video": ("CV", "DV"), "image": ("CI", "DI")}


def check_tokenizer_args(args: argparse.Namespace, family: str | None):
    """Validate the flags before any heavy import (torch, PyAV): the tokenizer name, the inputs, the output folder,
    the numbers. Returns the :class:`~nemo_cosmos_tokenizer.hub.sources.TokenizerSource`. Raises
    :class:`._errors.UsageError` (or :class:`~nemo_cosmos_tokenizer.hub.sources.UnknownTokenizerError`)."""
    from ..hub.sources import resolve_tokenizer_source
    from ._errors import UsageError, check_inputs_exist, check_writable_dir

    source = resolve_tokenizer_source(args.tokenizer)
    if family is not None and source.family is not None:
        allowed = _FAMILIES[family]
        if source.family not in allowed:
            other = "reconstruct-images" if family == "video" else "reconstruct-videos"
            raise UsageError(f"{source.value} is a {source.family} ({'image' if family == 'video' else 'video'}) "
                             f"tokenizer; this command needs a {'/'.join(allowed)} one",
                             f"use {other} for it, or pick a {'/'.join(allowed)} tokenizer")
    if str(args.dtype).lower().removeprefix("torch.") not in _DTYPE_NAMES:
        raise UsageError(f"unknown --dtype {args.dtype!r}", "use auto, bfloat16, float16 or float32")
    if args.short_size is not None and args.short_size < 1:
        raise UsageError(f"--short-size must be >= 1, got {args.short_size}")
    for flag in ("temporal_window", "batch_windows"):
        value = getattr(args, flag, None)
        if value is not None and value < (0 if flag == "temporal_window" else 1):
            raise UsageError(f"--{flag.replace('_', '-')} must be >= {0 if flag == 'temporal_window' else 1}, got {value}")
    check_inputs_exist(args.inputs, any_of=True)  # missing ones among present ones are reported and skipped later
    if args.output_dir is not None:
        check_writable_dir(args.output_dir, "outputs")
    return source


def load_tokenizer(args: argparse.Namespace, family: str | None, parts=("encoder", "decoder")):
    """The tokenizer the flags name, through the one resolver. ``family``: ``"video"``, ``"image"`` or ``None``
    (whichever it is)."""
    from ..inference.from_source import load_tokenizer as load

    return load(args.tokenizer, parts=parts, family=family, device=args.device, dtype=args.dtype, mode=args.mode,
                cache_dir=args.cache_dir, revision=args.revision, local_files_only=args.local_files_only,
                ema=getattr(args, "ema", False))


def load_tokenizer_or_exit(args: argparse.Namespace, family: str | None, parts=("encoder", "decoder")):
    """:func:`load_tokenizer`, turning a wrong name, a missing file or a wrong family into a usage error."""
    from ..hub.resolve import CheckpointNotFoundError, UnknownModelError, WrongFamilyError
    from ._errors import UsageError

    try:
        return load_tokenizer(args, family, parts)
    except (UnknownModelError, CheckpointNotFoundError, WrongFamilyError) as err:
        raise UsageError(str(err)) from None


def show_warnings() -> None:
    """Print the library's warnings (e.g. a video used up to its last decodable frame) as ``warning: ...`` lines on
    stderr (once per process, whatever the logging configuration)."""
    import logging

    logger = logging.getLogger("nemo_cosmos_tokenizer")
    for handler in list(logger.handlers):
        if getattr(handler, "nct_cli", False):
            logger.removeHandler(handler)  # one per call to main(), pointing at the current sys.stderr
    handler = logging.StreamHandler(sys.stderr)
    handler.nct_cli = True
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("warning: %(message)s"))
    logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > logging.WARNING:
        logger.setLevel(logging.WARNING)


def interrupt_message(args: argparse.Namespace) -> str:
    """What a Ctrl-C during encode / reconstruct-* leaves behind."""
    return ("the outputs finished so far are kept; the same command writes every output again (there is no "
            "resume across files)")


def describe_outputs(paths, output_dir: str | None, default_subdir: str) -> str:
    """Where a command writes, said before it starts: ``--output-dir``, or the ``default_subdir`` folder next to
    each input (``reconstructions`` / ``tokens``; the working folder's own when the inputs are there)."""
    import os

    if output_dir is not None:
        return os.path.abspath(os.path.expanduser(output_dir))
    folders = sorted({os.path.join(os.path.dirname(os.path.abspath(p)), default_subdir) for p in paths})
    if len(folders) == 1:
        return f"{folders[0]} (next to the input; --output-dir to choose)"
    return f"a {default_subdir!r} folder next to each input ({len(folders)} folders; --output-dir to choose one)"


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
