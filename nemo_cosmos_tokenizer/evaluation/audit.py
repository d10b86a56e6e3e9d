"""Dataset audit: what the tokens of a built dataset actually preserve.

:func:`audit_dataset` picks ``sample`` random documents of a dataset built by
:func:`nemo_cosmos_tokenizer.data.run_build` (``build-dataset``), decodes their FSQ grids with the tokenizer
recorded in the sidecar, and scores them against their source clips, cut and resized exactly as the build did (the
sidecar's ``frames`` settings through :class:`~nemo_cosmos_tokenizer.data.ClipSpec` and
:func:`~nemo_cosmos_tokenizer.data.read_sample`). It also re-encodes each source clip and reports the share of
tokens that come out the same (``token_agreement``: 1.0 when the audit runs the build's device and precision;
slightly less across devices or dtypes), and counts the codebook usage of every document of the dataset.

Which document came from which clip is read from the chunk records under ``<prefix>.chunks/`` (documents are
written chunk by chunk, sample by sample, clip by clip, ``documents / clips`` documents per clip); the manifest must
be the one the dataset was built from (its checksum is checked).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .config import EvalConfig
from .evaluate import EvalFailure, EvalReport
from .scoring import VideoScorer
from .tokens import TokenCounter

log = logging.getLogger(__name__)

__all__ = ["DocumentSource", "audit_dataset", "document_sources", "dataset_token_counts"]

DATASET_FORMAT = "nemo-cosmos-tokenizer/video-token-dataset"


@dataclass(frozen=True)
class DocumentSource:
    """Where a document's tokens came from."""

    sample_index: int
    """Index of the sample in the manifest."""
    sample_id: str
    clip: int
    """Which clip of the sample (0-based)."""


def _read_sidecar(prefix: str) -> dict[str, Any]:
    path = Path(f"{prefix}.json")
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: --dataset takes the output prefix of a built dataset "
                                "(<prefix>.bin/.idx/.json)")
    sidecar = json.loads(path.read_text(encoding="utf-8"))
    if sidecar.get("format") != DATASET_FORMAT:
        raise ValueError(f"{path} is not the sidecar of a video token dataset (format {sidecar.get('format')!r})")
    return sidecar


def document_sources(prefix: str | os.PathLike, sidecar: dict[str, Any] | None = None) -> list[DocumentSource]:
    """The source of every document of the dataset at ``prefix``, in document order (from the chunk records)."""
    from ..data import BuildConfig

    prefix = str(prefix)
    sidecar = sidecar or _read_sidecar(prefix)
    layout = BuildConfig(output_prefix=prefix)
    sources: list[DocumentSource] = []
    for chunk in range(int(sidecar["chunks"]["count"])):
        record_path = Path(f"{layout.chunk_prefix(chunk)}.json")
        if not record_path.is_file():
            raise FileNotFoundError(
                f"{record_path} not found: the audit maps documents to their source clips through the chunk records "
                f"under {layout.chunks_dir}; keep that folder next to the dataset"
            )
        record = json.loads(record_path.read_text(encoding="utf-8"))
        for written in record["written"]:
            clips, documents = int(written["clips"]), int(written["documents"])
            per_clip = documents // clips if clips else 0
            for clip in range(clips):
                sources += [DocumentSource(int(written["index"]), str(written["id"]), clip)] * per_clip
    return sources


def dataset_token_counts(dataset, levels: Sequence[int], documents: Sequence[int] | None = None) -> TokenCounter:
    """Codebook usage of the visual tokens of ``documents`` (default: all) of a
    :class:`~nemo_cosmos_tokenizer.data.reader.VideoTokenDataset`: ids in the layout's visual range, minus its
    offset (the layout guarantees no other id falls there)."""
    layout = dataset.layout
    counter = TokenCounter(tuple(levels))
    if counter.codebook_size != layout.codebook_size:
        raise ValueError(f"FSQ levels {tuple(levels)} give {counter.codebook_size} codes, the layout has "
                         f"{layout.codebook_size}")
    low, high = layout.vision_offset, layout.vision_offset + layout.codebook_size
    for i in range(len(dataset)) if documents is None else documents:
        tokens = dataset.tokens(int(i))
        counter.add(tokens[(tokens >= low) & (tokens < high)] - low)
    return counter


def audit_dataset(
    prefix: str | os.PathLike,
    config: EvalConfig = EvalConfig(),
    *,
    sample: int = 8,
    seed: int = 0,
    tokenizer: str | None = None,
    device: str | None = None,
    dtype: str | None = None,
    manifest: str | os.PathLike | None = None,
    text_tokenizer: str | os.PathLike | None = None,
    token_stats: bool = True,
    progress: bool | None = None,
    on_failure: Callable[[EvalFailure], None] | None = None,
) -> EvalReport:
    """Audit ``sample`` random documents (``seed``) of the dataset at ``prefix`` (see the module docstring).

    ``tokenizer`` overrides the sidecar's name (e.g. the local folder the build used when it has moved; its
    architecture must match the recorded one). ``device``/``dtype``: where and how to decode (default: CUDA when
    available; the build's dtype). ``manifest``: the build's input when it has moved. ``token_stats``: also count
    the codebook usage of every document.
    """
    from ..data import ClipSpec, read_manifest, read_sample
    from ..data.reader import VideoTokenDataset
    from ..data.video_tokenizer import load_video_tokenizer, state_dict_sha256

    started = time.perf_counter()
    prefix = str(prefix)
    sidecar = _read_sidecar(prefix)
    dataset = VideoTokenDataset(prefix, text_tokenizer)
    sources = document_sources(prefix, sidecar)
    if len(sources) != len(dataset):
        raise ValueError(f"the chunk records list {len(sources)} documents, the dataset holds {len(dataset)}; "
                         f"{prefix}.chunks/ does not belong to this dataset")

    recorded_manifest = sidecar["manifest"]
    inputs = read_manifest(manifest or recorded_manifest["source"])
    if inputs.checksum != recorded_manifest["sha256"]:
        raise ValueError(f"the manifest {inputs.source} changed since the build (sha256 {inputs.checksum[:12]}..., "
                         f"the dataset records {recorded_manifest['sha256'][:12]}...); audit with the original one")
    samples = {s.index: s for s in inputs.samples}

    frames = dict(sidecar["frames"])
    build_backend = frames.pop("video_backend", "auto")
    spec = ClipSpec(**frames)
    # NVDEC gives PyAV's frames (except after a resize, where the GPU's float resize may differ by one level).
    backend = "pyav" if build_backend == "nvdec" else build_backend

    recorded = sidecar["video_tokenizer"]
    build_dtype = sidecar.get("encoding", {}).get("dtype") or recorded.get("dtype")
    name = tokenizer or recorded["name"]
    video_tokenizer = load_video_tokenizer(name, device, dtype or build_dtype, parts=("encoder", "decoder"))
    if video_tokenizer.config.to_dict() != recorded["config"]:
        raise ValueError(f"{name} is not the architecture the dataset was built with ({recorded['name']}: "
                         f"{recorded['config']}); pass the build's tokenizer")
    # The build hashed its encoder weights in its own dtype: hash ours in that dtype to compare.
    import torch

    weights = video_tokenizer.inference.network.cosmos_state_dict("encoder")
    recorded_dtype = getattr(torch, str(recorded.get("dtype", "float32")))
    checksum = state_dict_sha256({k: v.to(recorded_dtype) if v.is_floating_point() else v for k, v in weights.items()})
    encoder_matches = checksum == recorded.get("encoder_sha256")
    if not encoder_matches:
        log.warning("the encoder weights of %s differ from the ones the dataset was built with (%s)", name,
                    recorded.get("name"))

    count = min(int(sample), len(dataset))
    if count < 1:
        raise ValueError(f"--sample must be >= 1, got {sample}")
    chosen = sorted(int(i) for i in np.random.default_rng(seed).choice(len(dataset), size=count, replace=False))

    scorer = VideoScorer(config)
    settings: dict[str, Any] = {
        "metrics": config.to_dict(),
        "mode": "dataset",
        "tokenizer": {"name": video_tokenizer.name, "requested": name, "family": video_tokenizer.config.family,
                      "config": video_tokenizer.config.to_dict(),
                      "dtype": str(video_tokenizer.dtype).removeprefix("torch."),
                      "device": str(video_tokenizer.device), "encoder_sha256": checksum,
                      "encoder_matches_build": encoder_matches},
        "metric_device": str(scorer.device),
        "weights": scorer.weights,
    }
    report = EvalReport([], settings)

    def fail(path: str, label: str, reason: str, message: str) -> None:
        failure = EvalFailure(label, path, reason, message)
        report.failures.append(failure)
        log.info("skipping %s", failure)
        if on_failure is not None:
            on_failure(failure)

    from tqdm import tqdm

    clips_cache: dict[int, Any] = {}
    counter = TokenCounter(video_tokenizer.config.levels)
    for index in tqdm(chosen, unit="doc", disable=(None if progress is None else not progress), dynamic_ncols=True):
        source = sources[index]
        item = samples[source.sample_index]
        label = f"doc{index}: {source.sample_id} clip {source.clip}"
        if source.sample_index not in clips_cache:
            clips_cache = {source.sample_index: read_sample(item, spec, backend)}  # documents are sorted: keep one
        clips = clips_cache[source.sample_index]
        if clips.failure is not None:
            fail(item.path, label, clips.failure.reason, f"the source no longer reads: {clips.failure.message}")
            continue
        if source.clip >= len(clips.clips):
            fail(item.path, label, "clip_mismatch", f"the source now gives {len(clips.clips)} clips, the build "
                                                    f"wrote clip {source.clip}")
            continue
        clip = np.asarray(clips.clips[source.clip])  # [T, H, W, 3] at the build's resolution
        grid = dataset.decode(index).grid  # [T', H', W'] int32
        counter.add(grid)
        decoded = video_tokenizer.decode(grid[None])[0]  # [T, H, W, 3] uint8
        if decoded.shape != clip.shape:
            fail(item.path, label, "shape_mismatch", f"the tokens decode to {decoded.shape}, the source clip is "
                                                     f"{clip.shape}")
            continue
        again = video_tokenizer.encode(clip[None])[0]  # [T', H', W'] int32
        agreement = float((again == grid).mean()) if again.shape == grid.shape else 0.0
        extra = {"document": index, "path": item.path, "sample_id": source.sample_id, "clip": source.clip,
                 "frame_indices": clips.frame_indices[source.clip], "token_grid": list(grid.shape),
                 "token_agreement": agreement}
        try:
            report.videos.append(scorer.score(label, clip, decoded, window_starts=[0], extra=extra))
        except ValueError as err:  # e.g. clips smaller than SSIM's 7x7 window
            fail(item.path, label, "unscorable", str(err))

    report.fvd = scorer.fvd()
    report.tokens = counter.summary() if counter.total else None
    report.token_counts = counter.counts if counter.total else None
    dataset_info: dict[str, Any] = {
        "prefix": prefix,
        "documents": len(dataset),
        "sampled": chosen,
        "seed": seed,
        "frames": sidecar["frames"],
        "video_backend": backend,
        "manifest": recorded_manifest,
        "build_tokenizer": {k: recorded.get(k) for k in ("name", "family", "encoder_sha256", "dtype")},
        "build_encoding": sidecar.get("encoding"),
    }
    if report.videos:
        dataset_info["mean_token_agreement"] = float(np.mean([v.extra["token_agreement"] for v in report.videos]))
    if token_stats:
        whole = dataset_token_counts(dataset, video_tokenizer.config.levels)
        dataset_info["tokens"] = whole.summary()
        report.token_counts = whole.counts  # the report's histogram shows the whole dataset
    report.dataset = dataset_info
    report.settings["dataset"] = {"prefix": prefix, "sample": count, "seed": seed}
    report.seconds = time.perf_counter() - started
    return report
