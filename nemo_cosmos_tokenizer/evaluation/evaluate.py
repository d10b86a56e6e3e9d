"""The evaluation jobs: score videos against reconstructions made on the fly or found in a folder.

::

    from nemo_cosmos_tokenizer.evaluation import EvalConfig, ReconstructionConfig, evaluate_videos

    report = evaluate_videos(["clips/a.mp4", "clips/b.mp4"], EvalConfig(metrics=("psnr", "ssim", "lpips")),
                             tokenizer=ReconstructionConfig("Cosmos-1.0-Tokenizer-DV8x16x16"))
    report = evaluate_videos(paths, EvalConfig(), reconstructions="recon/")     # TokenBench's mode
    report.write("out/")                                                        # metrics.json (+ report.html)

Unreadable inputs, missing reconstructions and shape mismatches are recorded in ``report.failures`` and skipped.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..interrupts import raise_if_interrupted
from .config import EvalConfig, ReconstructionConfig
from .scoring import VideoResult, VideoScorer
from .tokens import TokenCounter

log = logging.getLogger(__name__)

__all__ = ["EvalReport", "EvalFailure", "evaluate_videos", "match_reconstruction"]

#: Extensions tried when a reconstruction is matched by stem (``reconstruct-videos`` writes ``<stem>.mp4``).
_MATCH_EXTENSIONS = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".png", ".jpg", ".jpeg", ".webp", ".bmp")


@dataclass
class EvalFailure:
    name: str
    path: str
    reason: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "path": self.path, "reason": self.reason, "message": self.message}

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}: {self.message}"


@dataclass
class EvalReport:
    """Everything an evaluation measured; :meth:`to_dict` is ``metrics.json``."""

    videos: list[VideoResult]
    settings: dict[str, Any]
    failures: list[EvalFailure] = field(default_factory=list)
    fvd: dict[str, Any] | None = None
    tokens: dict[str, Any] | None = None
    """Discrete-token statistics (:meth:`TokenCounter.summary`), when the tokens were seen."""
    token_counts: np.ndarray | None = field(default=None, repr=False)
    dataset: dict[str, Any] | None = None
    """Dataset audits: what was sampled, and the statistics of the whole dataset's tokens."""
    seconds: float = 0.0

    def mean(self) -> dict[str, Any]:
        """Means over videos of each per-video metric (TokenBench's aggregate)."""
        out: dict[str, Any] = {"videos": len(self.videos)}
        for key in ("psnr", "ssim", "lpips"):
            values = [getattr(v, key) for v in self.videos if getattr(v, key) is not None]
            if values:
                out[key] = float(np.mean(values))
        if self.fvd is not None and self.fvd.get("value") is not None:
            out["fvd"] = self.fvd["value"]
        return out

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "videos": [v.to_dict() for v in self.videos],
            "mean": self.mean(),
            "settings": self.settings,
            "failures": [f.to_dict() for f in self.failures],
            "seconds": self.seconds,
        }
        if self.fvd is not None:
            out["fvd"] = self.fvd
        if self.tokens is not None:
            out["tokens"] = self.tokens
        if self.dataset is not None:
            out["dataset"] = self.dataset
        return out

    def write(self, output_dir: str | os.PathLike, *, html: bool = True) -> dict[str, Path]:
        """Write ``metrics.json`` (and ``report.html``) into ``output_dir``; returns the paths written."""
        from .report import write_html, write_json

        folder = Path(output_dir)
        folder.mkdir(parents=True, exist_ok=True)
        written = {"json": write_json(self, folder / "metrics.json")}
        if html:
            written["html"] = write_html(self, folder / "report.html")
        return written


def match_reconstruction(path: str, folder: Path, listing: Sequence[Path] | None = None) -> Path | None:
    """The reconstruction of input ``path`` in ``folder``: the same file name, else the one file with the same stem
    and a media extension (``reconstruct-videos`` writes ``<stem>.mp4`` for any input container)."""
    name = Path(path).name
    same = folder / name
    if same.is_file():
        return same
    stem = Path(path).stem
    files = listing if listing is not None else sorted(p for p in folder.iterdir() if p.is_file())
    matches = [p for p in files if p.stem == stem and p.suffix.lower() in _MATCH_EXTENSIONS]
    return matches[0] if len(matches) == 1 else None


def _progress(items, enabled: bool | None, unit: str):
    from tqdm import tqdm

    return tqdm(items, unit=unit, disable=(None if enabled is None else not enabled), dynamic_ncols=True)


def evaluate_videos(
    inputs: Sequence[str | os.PathLike],
    config: EvalConfig = EvalConfig(),
    *,
    tokenizer: ReconstructionConfig | None = None,
    reconstructions: str | os.PathLike | None = None,
    temporal_window: int | None = None,
    progress: bool | None = None,
    on_failure: Callable[[EvalFailure], None] | None = None,
) -> EvalReport:
    """Score ``inputs`` against reconstructions by ``tokenizer`` (made on the fly) or found in ``reconstructions``
    (matched by file name, see :func:`match_reconstruction`); exactly one of the two.

    ``temporal_window``: in folder mode, the window length the reconstructions were made with (only to mark the
    window boundaries in the report). Returns an :class:`EvalReport` (write it with :meth:`EvalReport.write`).
    """
    from ..media.failures import MediaError
    from .reconstruct import load_tokenizer, read_frames, reconstruct, resize_short_side

    if (tokenizer is None) == (reconstructions is None):
        raise ValueError("give either a tokenizer (reconstruct on the fly) or a folder of reconstructions")
    started = time.perf_counter()
    settings: dict[str, Any] = {"metrics": config.to_dict(), "mode": "tokenizer" if tokenizer else "reconstructions"}
    model = counter = None
    listing = None
    if tokenizer is not None:
        model, settings["tokenizer"] = load_tokenizer(tokenizer)
        settings["reconstruction"] = tokenizer.to_dict()
        if model.is_discrete and model.config is not None:
            counter = TokenCounter(model.config.levels)
    else:
        folder = Path(reconstructions)
        if not folder.is_dir():
            raise FileNotFoundError(f"reconstructions folder not found: {folder}")
        listing = sorted(p for p in folder.iterdir() if p.is_file())
        settings["reconstructions"] = str(folder.resolve())
        settings["temporal_window"] = temporal_window
    scorer = VideoScorer(config)
    settings["metric_device"] = str(scorer.device)
    settings["weights"] = scorer.weights
    report = EvalReport([], settings)

    def fail(path: str, reason: str, message: str) -> None:
        failure = EvalFailure(Path(path).name, str(path), reason, message)
        report.failures.append(failure)
        log.info("skipping %s", failure)
        if on_failure is not None:
            on_failure(failure)

    names = _unique_names(inputs)
    bar = _progress(list(zip(inputs, names)), progress, "video")
    for path, name in bar:
        raise_if_interrupted()  # a Ctrl-C swallowed in a reader's __del__ stops here, between videos
        path = str(path)
        bar.set_postfix_str(name[-40:], refresh=False)
        try:
            ref = read_frames(path, max_frames=config.max_frames, tokenbench=config.tokenbench_preprocess)
        except MediaError as err:
            fail(path, err.reason, err.message)
            continue
        extra: dict[str, Any] = {"path": path}
        frames = ref.frames
        if model is not None:
            if tokenizer.short_size is not None:
                frames = resize_short_side(frames, tokenizer.short_size)
            out = reconstruct(model, frames, tokenizer)
            rec_frames, windows = out.frames, out.window_starts
            if counter is not None and out.indices is not None:
                counter.add(out.indices)
                extra["token_grid"] = list(out.indices.shape)
        else:
            match = match_reconstruction(path, Path(reconstructions), listing)
            if match is None:
                fail(path, "missing_reconstruction", f"no file named {Path(path).name} (or {Path(path).stem}.<ext>) "
                                                     f"in {reconstructions}")
                continue
            try:
                rec_frames = read_frames(match, max_frames=config.max_frames,
                                         tokenbench=config.tokenbench_preprocess).frames
            except MediaError as err:
                fail(path, "unreadable_reconstruction", f"{match}: {err.message}")
                continue
            if rec_frames.shape != frames.shape:
                fail(path, "shape_mismatch", f"the input is {_shape(frames)}, the reconstruction {match.name} "
                                             f"{_shape(rec_frames)}")
                continue
            extra["reconstruction"] = str(match)
            windows = list(range(0, len(frames), temporal_window)) if temporal_window else None
        extra["fps"] = ref.fps
        try:
            report.videos.append(scorer.score(name, frames, rec_frames, window_starts=windows, extra=extra))
        except ValueError as err:  # e.g. frames smaller than SSIM's 7x7 window
            fail(path, "unscorable", str(err))
    report.fvd = scorer.fvd()
    if counter is not None and counter.total:
        report.tokens = counter.summary()
        report.token_counts = counter.counts
    report.seconds = time.perf_counter() - started
    return report


def _shape(frames: np.ndarray) -> str:
    t, h, w = frames.shape[:3]
    return f"{t} frames of {w}x{h}"


def _unique_names(paths: Sequence[str | os.PathLike]) -> list[str]:
    """File names, made unique with the parent folder where two inputs share one."""
    names = [Path(p).name for p in paths]
    seen: dict[str, int] = {}
    for n in names:
        seen[n] = seen.get(n, 0) + 1
    return [n if seen[n] == 1 else f"{Path(p).parent.name}/{n}" for p, n in zip(paths, names)]
