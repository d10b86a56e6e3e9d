"""``evaluate``: TokenBench-exact PSNR / SSIM / LPIPS / rFVD, token statistics and dataset audits, with reports.

A thin layer over :mod:`nemo_cosmos_tokenizer.evaluation`.
"""

from __future__ import annotations

import argparse
import sys

HELP = "score reconstructions (PSNR/SSIM/LPIPS/rFVD as TokenBench), token statistics, dataset audits"
DESCRIPTION = """Score videos against their reconstructions with TokenBench's metrics and write OUT/metrics.json
(every number, the exact settings, weight checksums) and OUT/report.html (plots, worst frames, codebook usage).

Three modes:
  INPUT... --tokenizer NAME   reconstruct each input on the fly (released name, local folder or the built-in
                              tiny-random-dv8x16x16; windows or exact streaming; any precision; --fast)
  INPUT... --reconstructions DIR
                              score a folder of reconstructions matched by file name (or by stem, e.g. the
                              <stem>.mp4 that reconstruct-videos writes): any tokenizer's outputs, ours or not
  --dataset PREFIX --sample N decode N random documents of a built dataset with the tokenizer its sidecar records and
                              score them against their source clips (cut and resized as the build did)

Metrics: PSNR per video over all frames, SSIM (skimage's, per frame), LPIPS (VGG, per frame), rFVD (I3D on 224x224
centre crops of the first 300 frames). LPIPS and rFVD need weights that cannot ship: torchvision's
vgg16-397923af.pth + the LPIPS v0.1 vgg.pth heads, and StyleGAN-V's i3d_torchscript.pt. They are searched in
$NCT_EVAL_WEIGHTS (default ~/.cache/nemo_cosmos_tokenizer/eval), the torch hub cache and the installed lpips
package; a missing one is named with where to get it. Unreadable inputs and missing reconstructions are reported
and skipped (exit status 1).

examples:
  nemo-cosmos-tokenizer evaluate "clips/*.mp4" --tokenizer Cosmos-1.0-Tokenizer-DV8x16x16 --output-dir eval/dv
  nemo-cosmos-tokenizer evaluate "clips/*.mp4" --tokenizer Cosmos-0.1-Tokenizer-CV4x8x8 --temporal-mode streaming \\
      --metrics psnr ssim lpips fvd --output-dir eval/cv
  nemo-cosmos-tokenizer evaluate "tokenbench/*.mp4" --reconstructions recon/ --metrics psnr ssim lpips fvd \\
      --output-dir eval/tokenbench
  nemo-cosmos-tokenizer evaluate --dataset data/tokens --sample 32 --output-dir eval/audit
"""

__all__ = ["DESCRIPTION", "HELP", "add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="*", metavar="INPUT",
                        help="videos or images, or glob patterns (quoted; matches are sorted)")
    source = parser.add_argument_group("what to score (one of)")
    source.add_argument("--tokenizer", default=None, help="reconstruct with this tokenizer (name or folder)")
    source.add_argument("--reconstructions", default=None, metavar="DIR", help="folder of reconstructions")
    source.add_argument("--dataset", default=None, metavar="PREFIX", help="audit a built dataset (<prefix>.json)")
    parser.add_argument("--output-dir", required=True, help="where metrics.json and report.html go")

    metrics = parser.add_argument_group("metrics")
    metrics.add_argument("--metrics", nargs="+", default=["psnr", "ssim"], choices=("psnr", "ssim", "lpips", "fvd"),
                         help="default: psnr ssim")
    metrics.add_argument("--metric-device", default=None, help="where the metrics run (default: cuda when available)")
    metrics.add_argument("--batch-frames", type=int, default=8, help="frames per metric batch (default 8)")
    metrics.add_argument("--vgg16-weights", default=None, help="torchvision's vgg16-397923af.pth (LPIPS backbone)")
    metrics.add_argument("--lpips-heads", default=None, help="LPIPS v0.1 vgg.pth (linear heads)")
    metrics.add_argument("--i3d-weights", default=None, help="StyleGAN-V's i3d_torchscript.pt (rFVD)")
    metrics.add_argument("--fvd-frames", type=int, default=300, help="rFVD uses the first N frames (default 300)")
    metrics.add_argument("--tokenbench-preprocess", action="store_true",
                         help="TokenBench's preprocessing of the inputs: the first max(ceil(10 s * fps), 300) frames, "
                              "short side downscaled to 1080 when larger")
    metrics.add_argument("--max-frames", type=int, default=None, help="read at most N frames of each video")
    metrics.add_argument("--allow-tf32", action="store_true", help="TF32 convolutions for LPIPS / I3D on the GPU")
    metrics.add_argument("--config", default=None, help="YAML with EvalConfig fields (flags override it)")

    model = parser.add_argument_group("tokenizer (with --tokenizer / --dataset)")
    model.add_argument("--temporal-mode", choices=("windows", "streaming"), default="windows",
                       help="windows: --temporal-window frames at a time (default); streaming: the whole video as one "
                            "exactly streamed causal sequence")
    model.add_argument("--temporal-window", type=int, default=None,
                       help="frames per window (default 17; 0 = whole video). With --reconstructions: the window the "
                            "reconstructions were made with, to mark its boundaries in the plots")
    model.add_argument("--batch-windows", type=int, default=4, help="windows per network call (default 4)")
    model.add_argument("--chunk-frames", type=int, default=16, help="streaming: frames per encoder chunk (default 16)")
    model.add_argument("--dtype", default="auto", help="auto (bfloat16 on CUDA, float32 on CPU; --dataset: the "
                                                      "build's), bfloat16, float16, float32")
    model.add_argument("--device", default=None, help="where the tokenizer runs (default: cuda when available)")
    model.add_argument("--backend", choices=("torch", "jit"), default=None,
                       help="torch: native network (default); jit: NVIDIA's TorchScript files as they are")
    model.add_argument("--fast", action="store_true", help="the fast path (compiled on CUDA, checked against eager)")
    model.add_argument("--short-size", type=int, default=None,
                       help="resize inputs to this short side before tokenizing (the resized input is the reference)")
    model.add_argument("--cache-dir", default=None, help="Hugging Face cache folder")
    model.add_argument("--revision", default=None, help="Hub revision")
    model.add_argument("--local-files-only", action="store_true", help="never download (Hugging Face cache only)")

    audit = parser.add_argument_group("dataset audit (with --dataset)")
    audit.add_argument("--sample", type=int, default=8, help="documents to decode and score (default 8)")
    audit.add_argument("--seed", type=int, default=0, help="which random documents (default 0)")
    audit.add_argument("--manifest", default=None, help="the build's manifest, if it has moved")
    audit.add_argument("--text-tokenizer", default=None, help="the build's text tokenizer, if it has moved")
    audit.add_argument("--no-token-stats", action="store_true", help="skip the codebook usage of the whole dataset")

    parser.add_argument("--no-html", action="store_true", help="write metrics.json only")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _eval_config(args: argparse.Namespace):
    from ..evaluation import load_eval_config

    overrides = {"metrics": list(args.metrics), "device": args.metric_device, "batch_frames": args.batch_frames,
                 "vgg16_weights": args.vgg16_weights, "lpips_heads": args.lpips_heads, "i3d_weights": args.i3d_weights,
                 "fvd_frames": args.fvd_frames, "tokenbench_preprocess": args.tokenbench_preprocess,
                 "max_frames": args.max_frames, "allow_tf32": args.allow_tf32}
    if args.config:  # flags left at their defaults do not override the YAML
        defaults = build_defaults()
        overrides = {k: v for k, v in overrides.items() if v != defaults.get(k)}
    return load_eval_config(args.config, overrides)


def build_defaults() -> dict:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    values = vars(parser.parse_args(["--output-dir", "x"]))
    return {"metrics": list(values["metrics"]), "device": values["metric_device"],
            **{k: values[k] for k in ("batch_frames", "vgg16_weights", "lpips_heads", "i3d_weights", "fvd_frames",
                                       "tokenbench_preprocess", "max_frames", "allow_tf32")}}


def run(args: argparse.Namespace) -> int:
    import logging

    from ._errors import check_inputs_exist

    check_inputs_exist(args.inputs or [], any_of=True)  # before torch loads: a missing input answers at once
    from ..media.failures import MediaError  # noqa: F401  (data extra present: fail here, not mid-run)
    from ..evaluation import MissingWeightsError, ReconstructionConfig, audit_dataset, evaluate_videos
    from ..media_files import expand_inputs

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    chosen = [flag for flag, value in (("--tokenizer", args.tokenizer), ("--reconstructions", args.reconstructions),
                                       ("--dataset", args.dataset)) if value]
    if len(chosen) != 1:
        print("error: give exactly one of --tokenizer, --reconstructions, --dataset"
              + (f" (got {' and '.join(chosen)})" if chosen else ""), file=sys.stderr)
        return 2
    if args.dataset and args.inputs:
        print("error: --dataset takes no INPUT files (the dataset's manifest lists them)", file=sys.stderr)
        return 2
    if not args.dataset and not args.inputs:
        print("error: give the INPUT videos to score", file=sys.stderr)
        return 2
    if not args.no_html:
        from ..evaluation.report import require_plotting

        try:
            require_plotting()
        except ImportError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    progress = False if args.no_progress else None
    try:
        config = _eval_config(args)
        if args.dataset:
            report = audit_dataset(
                args.dataset, config, sample=args.sample, seed=args.seed, tokenizer=args.tokenizer, device=args.device,
                dtype=None if args.dtype == "auto" else args.dtype, manifest=args.manifest,
                text_tokenizer=args.text_tokenizer, token_stats=not args.no_token_stats, progress=progress,
            )
            total = report.dataset["sampled"].__len__()
        else:
            paths = expand_inputs(args.inputs)
            total = len(paths)
            tokenizer = None
            if args.tokenizer:
                tokenizer = ReconstructionConfig(
                    args.tokenizer, temporal_mode=args.temporal_mode,
                    temporal_window=17 if args.temporal_window is None else args.temporal_window,
                    batch_windows=args.batch_windows, chunk_frames=args.chunk_frames, dtype=args.dtype,
                    device=args.device, backend=args.backend, fast=args.fast, short_size=args.short_size,
                    cache_dir=args.cache_dir, revision=args.revision, local_files_only=args.local_files_only,
                )
            report = evaluate_videos(paths, config, tokenizer=tokenizer, reconstructions=args.reconstructions,
                                     temporal_window=args.temporal_window, progress=progress)
    except (MissingWeightsError, FileNotFoundError, ValueError, ImportError, KeyError) as err:
        # KeyError: an unknown model name (UnknownModelError); its message is the first argument.
        print(f"error: {err.args[0] if isinstance(err, KeyError) and err.args else err}", file=sys.stderr)
        return 2
    written = report.write(args.output_dir, html=not args.no_html)
    mean = report.mean()
    shown = ", ".join(f"{k.upper()} {mean[k]:.4f}" for k in ("psnr", "ssim", "lpips", "fvd") if k in mean)
    print(f"scored {len(report.videos)} of {total} in {report.seconds:.1f}s: {shown or 'nothing'}", file=sys.stderr)
    for path in written.values():
        print(f"wrote {path}", file=sys.stderr)
    if report.failures:
        print(f"{len(report.failures)} skipped:", file=sys.stderr)
        for failure in report.failures:
            print(f"  {failure}", file=sys.stderr)
        return 1
    return 0
