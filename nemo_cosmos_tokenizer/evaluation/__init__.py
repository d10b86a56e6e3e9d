"""Evaluation: TokenBench-exact metrics, discrete-token statistics, dataset audits and reports.

::

    from nemo_cosmos_tokenizer.evaluation import EvalConfig, ReconstructionConfig, audit_dataset, evaluate_videos

    report = evaluate_videos(["a.mp4", "b.mp4"], EvalConfig(metrics=("psnr", "ssim", "lpips", "fvd")),
                             tokenizer=ReconstructionConfig("Cosmos-1.0-Tokenizer-DV8x16x16"))
    report = evaluate_videos(["a.mp4", "b.mp4"], EvalConfig(), reconstructions="recon/")   # any tokenizer's outputs
    report = audit_dataset("data/tokens", sample=16)                                        # a built dataset
    report.write("out/")                                                                    # metrics.json, report.html

Modules: :mod:`.metrics` (PSNR, SSIM), :mod:`.lpips_vgg` (LPIPS), :mod:`.fvd` (I3D features, Fréchet distance),
:mod:`.weights` (finding the metric networks' weights), :mod:`.tokens` (codebook statistics), :mod:`.scoring`
(per-video scores on the device), :mod:`.reconstruct` (reading inputs, tokenizer reconstructions),
:mod:`.evaluate` / :mod:`.audit` (the jobs), :mod:`.report` (JSON and HTML).

Only torch and numpy are imported here; PyAV, matplotlib and the metric weights are loaded when used.
"""

from .audit import audit_dataset
from .config import EvalConfig, ReconstructionConfig, load_eval_config
from .evaluate import EvalFailure, EvalReport, evaluate_videos
from .fvd import frechet_distance
from .metrics import psnr_from_mse, ssim_frames
from .tokens import TokenCounter
from .weights import MissingWeightsError

__all__ = [
    "EvalConfig",
    "EvalFailure",
    "EvalReport",
    "MissingWeightsError",
    "ReconstructionConfig",
    "TokenCounter",
    "audit_dataset",
    "evaluate_videos",
    "frechet_distance",
    "load_eval_config",
    "psnr_from_mse",
    "ssim_frames",
]
