"""``build-dataset``: videos + captions -> Megatron ``.bin/.idx`` of interleaved caption and video tokens.

Thin: parses arguments, fills a :class:`~nemo_cosmos_tokenizer.data.build.BuildConfig` (defaults < ``--config``
YAML < command-line flags) and calls :func:`~nemo_cosmos_tokenizer.data.build.run_build` (one process,
or every rank of a torchrun / srun job).
Also run as ``python scripts/build_video_token_dataset.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path
from typing import Any, Sequence

from ..hub.sources import describe_accepted
from ._logging import setup_logging
from .main import add_debug_argument, run_parsed

HELP = "build a Megatron dataset of caption + video tokens from videos and captions"
DESCRIPTION = """Tokenize videos (and images, as 1-frame videos) with a discrete Cosmos tokenizer and their captions
with a text tokenizer, and write Megatron indexed shards (<prefix>.bin/.idx) of interleaved documents, plus
<prefix>.json (vocab size, token layout, tokenizers, frame sampling, counts) and <prefix>.failures.jsonl
(skipped inputs with reasons). Work is done in chunks under <prefix>.chunks/: rerunning the same command
resumes; a run with other settings on the same prefix is refused. Ctrl-C keeps every complete chunk (exit
status 130): the same command resumes, and the result is byte-identical to an uninterrupted build.
A video whose data turns corrupt part-way is used up to its last decodable frame, with a warning (as encode and
reconstruct-videos do); one with too few decodable frames for a clip is skipped and recorded.

{tokenizers}

examples:
  # offline quickstart: generate sample clips + captions + a text tokenizer, tokenize with the built-in
  # random-weight tokenizer (tokens without visual meaning; no download)
  python scripts/build_video_token_dataset.py --demo --output-prefix demo/tokens

  # a real dataset with a released tokenizer (downloaded once into the Hugging Face cache)
  python scripts/build_video_token_dataset.py --input captions.jsonl --output-prefix data/clips \\
      --tokenizer Cosmos-1.0-Tokenizer-DV8x16x16 --text-tokenizer tokenizer.model \\
      --resolution 256 448 --num-frames 33 --fps 12 --layout generic

  # NeMo's Emu3 token ids (give Emu3's tokenizer.json), settings from YAML, one flag overridden
  python scripts/build_video_token_dataset.py --config recipe.yaml --layout emu3 --text-tokenizer emu3/tokenizer.json

  # on a GPU at full speed: fast encode path, videos decoded by NVDEC (pip install "nemo-cosmos-tokenizer[nvdec]")
  python scripts/build_video_token_dataset.py --config recipe.yaml --fast --video-backend nvdec

  # every GPU of a node (multi-node: torchrun rendezvous, SLURM, NeMo-Run: see recipes/ and the README);
  # the same command resumes, and the merged bytes do not depend on the number of GPUs
  torchrun --nproc-per-node 8 scripts/build_video_token_dataset.py --config recipes/dv8x16x16_720p.yaml \\
      --input captions.jsonl --output-prefix data/clips --text-tokenizer tokenizer.model

manifest (JSONL, one sample per line; paths relative to the manifest's folder):
  {"path": "clips/a.mp4", "text": "a caption"}
  {"path": "b.mp4", "text": "...", "id": "b-2", "start": 2.0, "end": 6.5}
or a folder of videos/images with sidecar .txt captions (a.mp4 + a.txt).

corpus inputs (local or s3:// gs:// https://; pip install "nemo-cosmos-tokenizer[cloud,tables]"):
  --input 'shards/{000000..000099}.tar'     WebDataset tar shards (or a folder of *.tar, or a .txt listing them)
  --input s3://bucket/panda70m.parquet --path-column url --text-column caption --start-column timestamp
                                            Parquet/CSV rows; a list of [start, end] segments -> one sample each
  --storage-options '{"endpoint_url": "http://127.0.0.1:9000"}'   (or AWS_ENDPOINT_URL, AWS_PROFILE, ...)

--debug (or NCT_DEBUG=1) shows the Python traceback of an error.
"""

DESCRIPTION = DESCRIPTION.replace("{tokenizers}", textwrap.fill(
    f"--tokenizer takes the same things in every command: {describe_accepted()}.", width=112))

__all__ = ["HELP", "DESCRIPTION", "add_arguments", "check_args", "config_from_args", "interrupt_message", "main", "run"]


def _json_object(text: str) -> dict:
    """``--storage-options``: a JSON object; argparse words a ValueError as 'invalid JSON object value: ...'."""
    value = json.loads(text)  # json.JSONDecodeError is a ValueError
    if not isinstance(value, dict):
        raise ValueError(text)
    return value


_json_object.__name__ = "JSON object"


#: (flag, BuildConfig field, argparse kwargs); every default is "not given" so YAML values survive.
_OPTIONS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("--input", "input", dict(metavar="INPUT", help=".jsonl/.csv/.parquet manifest, tar shards (x.tar, "
     "'shards/{000000..000099}.tar', a folder of *.tar, a .txt list of shard paths/URLs), or a folder of media with "
     ".txt captions; local or s3://, gs://, https://")),
    ("--path-column", "path_column", dict(metavar="NAME", help="table column of the media path (default path)")),
    ("--text-column", "text_column", dict(metavar="NAME", help="table column of the caption (default text)")),
    ("--id-column", "id_column", dict(metavar="NAME", help="table column of the sample id (default id)")),
    ("--start-column", "start_column", dict(metavar="NAME", help="table column of the start in seconds, or of a list "
     "of [start, end] segments (one sample each; default start)")),
    ("--end-column", "end_column", dict(metavar="NAME", help="table column of the end in seconds (default end)")),
    ("--text-key", "text_key", dict(metavar="KEY", nargs="+", help="caption fields of a tar sample's .json member, in "
     "order (default caption text; a .txt member comes first)")),
    ("--storage-options", "storage_options", dict(metavar="JSON", type=_json_object, help="fsspec options for remote "
     "inputs, e.g. '{\"endpoint_url\": \"http://127.0.0.1:9000\", \"profile\": \"corpus\"}'")),
    ("--output-prefix", "output_prefix", dict(metavar="PREFIX", help="output path without extension")),
    ("--tokenizer", "tokenizer", dict(metavar="NAME_OR_PATH", help="discrete video/image tokenizer (DV or DI): "
     "released name (e.g. Cosmos-1.0-Tokenizer-DV8x16x16), built-in name (tiny-random-dv8x16x16, or "
     "tiny-random-di8x8 for images: every frame on its own), local folder or .jit file "
     "(default: the built-in tiny-random-dv8x16x16: random weights, no download, tokens carry no visual meaning)")),
    ("--text-tokenizer", "text_tokenizer", dict(metavar="PATH", help="sentencepiece .model or HF tokenizer.json")),
    ("--layout", "layout", dict(choices=("generic", "emu3", "cosmos_ar"), help="token id layout (default generic; "
     "cosmos_ar: NVIDIA's Cosmos-1.0-Autoregressive post-training data, no text tokenizer)")),
    ("--template", "template", dict(choices=("caption_first", "caption_last", "both"),
                                    help="caption before or after the video, or both (two documents)")),
    ("--video-backend", "video_backend", dict(choices=("auto", "decord", "pyav", "nvdec"),
                                              help="default auto; nvdec: decode on the GPU (PyNvVideoCodec)")),
    ("--num-frames", "num_frames", dict(type=int, help="frames per clip, 1 + k*t (default 17)")),
    ("--fps", "fps", dict(type=float, help="target frame rate of the clips (default: source rate)")),
    ("--stride", "stride", dict(type=int, help="take every N-th source frame instead of --fps")),
    ("--clips-per-video", "clips_per_video", dict(type=int, help="non-overlapping clips per video (default 1)")),
    ("--short-videos", "short_videos", dict(choices=("skip", "shorten"), help="too-short videos (default skip)")),
    ("--resolution", "resolution", dict(type=int, nargs="+", metavar="PX",
                                        help="HEIGHT [WIDTH], multiples of the spatial compression (default 256 256)")),
    ("--resize-mode", "resize_mode", dict(choices=("crop", "pad"), help="cover + centre crop (default) or fit + pad")),
    ("--device", "device", dict(help="auto (default), cuda, cuda:N, cpu")),
    ("--dtype", "dtype", dict(help="auto (default: bfloat16 on CUDA, float32 on CPU; bfloat16 everywhere with --layout "
     "cosmos_ar, as NVIDIA encodes), bfloat16, float32")),
    ("--batch-size", "batch_size", dict(type=int, help="clips per encoder call (default 8; 1 with --layout cosmos_ar)")),
    ("--temporal-mode", "temporal_mode", dict(choices=("windows", "whole"), help="windows (default): each clip in "
     "one encoder call; whole: each clip streamed as one causal sequence in bounded memory (long --num-frames)")),
    ("--num-workers", "num_workers", dict(type=int, help="decoding worker processes (default 0); nvdec: decoder threads (default 8)")),
    ("--nvdec-decodes", "nvdec_decodes", dict(type=int, metavar="N", help="nvdec: NVDEC decodes in flight at once "
     "(default 7, one per decode engine of an H100)")),
    ("--nvdec-probe-threads", "nvdec_probe_threads", dict(type=int, metavar="N", help="nvdec: threads opening and "
     "planning samples with PyAV ahead of the decoders (default 12)")),
    ("--nvdec-processes", "nvdec_processes", dict(type=int, metavar="N", help="nvdec: read in N processes of their "
     "own (clips handed over on the GPU), dividing --num-workers, --nvdec-decodes and --nvdec-probe-threads among "
     "them; slower than threads on an H100 but survives an NVDEC abort; 0 (default): threads of this process")),
    ("--nvdec-resize", "nvdec_resize", dict(choices=("auto", "exact", "fused"), help="nvdec: how NV12 becomes clips; "
     "auto (default): fused where Triton is installed, else exact; exact: YUV->RGB then torch's antialiased resize; "
     "fused: one Triton kernel, the same bytes, faster")),
    ("--chunk-size", "chunk_size", dict(type=int, help="samples per chunk shard: unit of resume (default 512; 250 "
     "with --layout cosmos_ar, NVIDIA's videos per folder)")),
)

DEMO_RESOLUTION = [96, 128]
#: BuildConfig's default tokenizer (repeated here so the early checks need not import the builder).
_DEFAULT_TOKENIZER = "tiny-random-dv8x16x16"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="YAML", help="settings file (BuildConfig fields); flags override it")
    for flag, dest, kwargs in _OPTIONS:
        parser.add_argument(flag, dest=dest, default=argparse.SUPPRESS, **kwargs)
    parser.add_argument("--local-files-only", dest="local_files_only", action="store_true", default=argparse.SUPPRESS,
                        help="never download tokenizer weights (Hugging Face cache only)")
    parser.add_argument("--fast", dest="fast", action="store_true", default=argparse.SUPPRESS,
                        help="encode with the fast path (compiled on CUDA, checked against eager on the first batch; "
                        "its bf16 tokens differ slightly from eager ones, so it changes the config hash)")
    parser.add_argument("--deterministic", dest="deterministic", action=argparse.BooleanOptionalAction,
                        default=argparse.SUPPRESS,
                        help="GPU results that depend only on the inputs (no kernel timing, Inductor rounding as eager "
                        "does): every process and rank gives the same tokens for the same clips (default: on; "
                        "--no-deterministic times kernels per process: ~4%% faster encoder, not reproducible; "
                        "see the README's Determinism); part of the config hash")
    parser.add_argument("--nvidia-folders", dest="nvidia_folders", action=argparse.BooleanOptionalAction,
                        default=argparse.SUPPRESS,
                        help="with --layout cosmos_ar (default there): also write <prefix>/<k>/.bin+.idx (<prefix>/.bin "
                        "for one chunk), the folders NVIDIA's general.py reads")
    parser.add_argument("--no-progress", dest="progress", action="store_false", default=argparse.SUPPRESS,
                        help="no progress bar")
    parser.add_argument("--no-merge", action="store_true", help="keep the chunk shards (no <prefix>.bin/.idx) and "
                        "list them, weighted by their tokens, in <prefix>.data_paths_weighted.txt for Megatron's "
                        "--data-args-path (the bare prefixes in <prefix>.data_paths.txt)")
    parser.add_argument("--demo", action="store_true", help="generate sample clips, captions.jsonl and a text "
                        "tokenizer under <prefix>.demo-inputs/ and use them (unless --input/--text-tokenizer are given)")
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))


def config_from_args(args: argparse.Namespace):
    """The :class:`BuildConfig` of parsed arguments (YAML under flags); ``--demo`` fills in the sample inputs."""
    from ..data.build import load_build_config

    overrides = {dest: getattr(args, dest) for _, dest, _ in _OPTIONS if hasattr(args, dest)}
    for dest in ("local_files_only", "progress", "fast", "deterministic", "nvidia_folders"):
        if hasattr(args, dest):
            overrides[dest] = getattr(args, dest)
    if getattr(args, "demo", False):
        from ..data.samples import make_sample_inputs

        prefix = overrides.get("output_prefix") or (load_build_config(args.config).output_prefix if args.config else None)
        if not prefix:
            raise ValueError("--demo needs --output-prefix (the sample inputs go to <prefix>.demo-inputs/)")
        inputs = make_sample_inputs(Path(f"{prefix}.demo-inputs"))
        overrides.setdefault("input", str(inputs.manifest))
        overrides.setdefault("text_tokenizer", str(inputs.text_tokenizer))
        overrides.setdefault("resolution", DEMO_RESOLUTION)
    return load_build_config(args.config, overrides)


def _yaml_settings(path: str | None) -> dict[str, Any]:
    """The ``--config`` file's top-level mapping, read without the data pipeline (for the early checks)."""
    if not path:
        return {}
    from ._errors import UsageError

    if not Path(path).is_file():
        raise UsageError(f"settings file not found: {path}", "check the --config path")
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise UsageError(f"cannot read the settings file {path}: {err}") from None
    if data is not None and not isinstance(data, dict):
        raise UsageError(f"{path} must hold a mapping of BuildConfig fields, not {type(data).__name__}")
    return data or {}


def check_args(args: argparse.Namespace) -> None:
    """Refuse mistakes before torch and megatron-core load (seconds): the tokenizer name, a frame count or
    resolution the tokenizer cannot take, missing inputs, an unwritable output prefix, ``--demo`` without a prefix.
    Sets ``args._output_prefix``. The builder checks the rest (layouts, ...) when it reads the config."""
    from ..hub.sources import resolve_tokenizer_source
    from ._errors import UsageError, check_inputs_exist, check_writable_dir

    settings = {**_yaml_settings(getattr(args, "config", None)),
                **{dest: getattr(args, dest) for _, dest, _ in _OPTIONS if hasattr(args, dest)}}
    prefix = settings.get("output_prefix")
    args._output_prefix = str(prefix) if prefix else None
    demo = getattr(args, "demo", False)
    if not prefix:
        raise UsageError("no output prefix" + (" (--demo writes its sample inputs under <prefix>.demo-inputs/)" if demo
                                               else ""), "give --output-prefix PREFIX (e.g. demo/tokens)")
    if not demo:
        # cosmos_ar documents are video ids alone: no text tokenizer (the same rule as BuildConfig.validate)
        needed = ("input",) if settings.get("layout") == "cosmos_ar" else ("input", "text_tokenizer")
        missing = [f"--{name.replace('_', '-')}" for name in needed if not settings.get(name)]
        if missing:
            raise UsageError(f"missing {' and '.join(missing)}",
                             "give them (or --demo for generated sample inputs); see --help for examples")
    source = resolve_tokenizer_source(settings.get("tokenizer") or _DEFAULT_TOKENIZER)
    _check_clip_shape(settings, source)
    check_inputs_exist([settings.get("input")], corpus=True)  # as the input planner reads it (no network)
    check_inputs_exist([settings.get("text_tokenizer")], "text tokenizer")
    check_writable_dir(Path(str(prefix)).parent, f"dataset {prefix}")


def _check_clip_shape(settings: dict[str, Any], source) -> None:
    """``--num-frames`` and ``--resolution`` against the compression of a built-in or released tokenizer, from the
    registry (no torch; the builder's own rules); a tokenizer in a folder or a Hub repository is checked when the
    builder has loaded it."""
    from ..config import frame_count_error, resolution_error
    from ..registry import get_builtin_spec, get_spec
    from ._errors import UsageError

    if source.kind not in ("builtin", "released"):
        return
    config = (get_builtin_spec(source.value) if source.kind == "builtin" else get_spec(source.value)).config
    num_frames, resolution = settings.get("num_frames"), settings.get("resolution")
    problem = None
    if isinstance(num_frames, int):
        problem = frame_count_error(num_frames, config.temporal_compression)
        problem = problem and problem.replace("num_frames", "--num-frames", 1)
    if problem is None and isinstance(resolution, (list, tuple)) and len(resolution) in (1, 2) and all(
            isinstance(v, int) and v >= 1 for v in resolution):
        problem = resolution_error(resolution[0], resolution[-1], config.spatial_compression)
        problem = problem and "--" + problem
    if problem is not None:
        axes = "time x height x width" if config.is_video else "height x width"
        raise UsageError(problem, f"{source.value} compresses {config.compression_label} ({axes})")


def interrupt_message(args: argparse.Namespace) -> str:
    """What a Ctrl-C keeps: complete chunks (their record is written last), and that the same command resumes."""
    prefix = getattr(args, "_output_prefix", None)
    if not prefix:
        return "nothing was written"
    chunks = Path(f"{prefix}.chunks")
    done = len(list(chunks.glob("chunk-*.json"))) if chunks.is_dir() else 0
    return (f"{done} complete chunk(s) are kept in {chunks}/ (a half-written one is dropped); run the same command "
            "again to resume: finished chunks are not redone and the result is byte-identical to an uninterrupted "
            "build")


def run(args: argparse.Namespace) -> int:
    from ._errors import UsageError

    check_args(args)  # before torch / megatron-core load: a mistake answers at once
    from ..data.build import ConfigMismatchError, IncompleteBuildError, run_build
    from ..data.layout import LayoutError
    from ..data.manifest import ManifestError

    setup_logging(args.log_level)
    try:
        config = config_from_args(args)
        summary = run_build(config, merge=not args.no_merge)  # one process, or every rank under torchrun/srun
    except (ConfigMismatchError, ManifestError, LayoutError, ValueError) as err:
        raise UsageError(str(err)) from None  # OSErrors (missing files, read-only disks) go to guarded()
    except IncompleteBuildError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if summary is not None:  # rank 0 (the others return None)
        print(summary.format())
        if summary.status == "complete":
            _print_megatron_settings(summary.output_prefix)
    return 0


def _print_megatron_settings(prefix: str) -> None:
    """How to train on the result: the exact Megatron flags (eod, vocabulary, seq length, a split that leaves no split
    empty) and the too-small-split warnings, from the merged files (as ``inspect-dataset --print-megatron-args``)."""
    from ..megatron.settings import megatron_settings

    try:
        settings = megatron_settings(prefix)
    except (OSError, ValueError, KeyError) as err:  # e.g. a --no-merge build whose shards moved: the hint stays
        print(f"(Megatron flags: nemo-cosmos-tokenizer inspect-dataset {prefix} --print-megatron-args; {err})")
        return
    print()
    print(settings.format())  # ends with the warnings (e.g. a split that would leave a part empty)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="build_video_token_dataset.py",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    add_debug_argument(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run_parsed(build_parser().parse_args(argv), run, interrupt_message)


if __name__ == "__main__":
    raise SystemExit(main())
