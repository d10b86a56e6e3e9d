"""Reports: ``metrics.json`` with every number, and a self-contained ``report.html``.

The HTML page holds its images inline (PNG data URIs; nothing is fetched): the per-video PSNR chart, per-frame
PSNR curves of the worst videos with their temporal-window boundaries, a side-by-side strip (input | reconstruction
| difference) of the worst frame of the worst videos, and the codebook-usage charts for discrete tokens. Plots use
matplotlib (``pip install "nemo-cosmos-tokenizer[eval]"``), frame strips Pillow. When every image has loaded the
page sets ``data-images-loaded="<count>"`` on ``<body>`` (what the browser test reads).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np

__all__ = ["require_plotting", "write_html", "write_json"]

INSTALL_HINT = 'pip install "nemo-cosmos-tokenizer[eval]"'
#: Videos shown with per-frame curves and frame strips (the lowest PSNR first).
WORST_VIDEOS = 6


class EvalReportLike(Protocol):
    """What a report is drawn from: the fields of :class:`~.evaluate.EvalReport` that the page reads. A protocol
    rather than that class, so this module does not import the one that calls it (no cycle, not even for types)."""

    videos: Sequence[Any]  # VideoResult
    failures: Sequence[Any]  # EvalFailure
    seconds: float
    tokens: dict[str, Any] | None
    token_counts: np.ndarray | None
    dataset: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]: ...


def require_plotting() -> None:
    """Fail early (before any work) when the HTML report cannot be drawn."""
    try:
        import matplotlib  # noqa: F401
        import PIL  # noqa: F401
    except ImportError as err:
        raise ImportError(f"the HTML report needs matplotlib and Pillow: {INSTALL_HINT} (or pass --no-html)") from err


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _finite(value: Any) -> Any:
    """JSON has no inf/nan: they become ``None``."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def write_json(report: EvalReportLike, path: str | os.PathLike) -> Path:
    """``metrics.json`` (written to a temporary name, then renamed)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(json.dumps(_finite(report.to_dict()), indent=1, default=_json_default) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


# ------------------------------------------------------------------------------------------------------ images
def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _pil_png(image: np.ndarray) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure(width: float, height: float):
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    return Figure(figsize=(width, height))


def _video_chart(report: EvalReportLike) -> str:
    videos = report.videos
    fig = _figure(max(6.0, min(18.0, 0.35 * len(videos) + 3)), 3.2)
    ax = fig.subplots()
    values = [v.psnr for v in videos]
    ax.bar(range(len(videos)), values, color="#4878cf")
    mean = float(np.mean(values))
    ax.axhline(mean, color="#d62728", linestyle="--", linewidth=1, label=f"mean {mean:.2f} dB")
    ax.set_ylabel("PSNR (dB)")
    ax.set_xticks(range(len(videos)))
    ax.set_xticklabels([_short(v.name) for v in videos], rotation=60, ha="right", fontsize=7)
    ax.set_title("PSNR per video")
    ax.legend(fontsize=8)
    return _png(fig)


def _frame_chart(videos) -> str:
    cols = 2 if len(videos) > 1 else 1
    rows = -(-len(videos) // cols)
    fig = _figure(6.0 * cols, 2.4 * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).reshape(-1)
    for ax, video in zip(axes, videos):
        ax.plot(range(video.frames), video.frame_psnr, color="#4878cf", linewidth=1,
                marker="." if video.frames < 60 else None)
        for start in video.window_starts or []:
            if start > 0:
                ax.axvline(start - 0.5, color="#999999", linestyle=":", linewidth=1)
        ax.set_title(f"{_short(video.name, 50)}  (PSNR {video.psnr:.2f} dB)", fontsize=8)
        ax.set_xlabel("frame", fontsize=8)
        ax.set_ylabel("PSNR (dB)", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes[len(videos):]:
        ax.set_visible(False)
    fig.suptitle("PSNR per frame (dotted: temporal window boundaries)", fontsize=9)
    fig.tight_layout()
    return _png(fig)


def _strip(video) -> np.ndarray:
    """Input | reconstruction | |difference| x 4 of the video's worst frame, side by side with 4 px gaps."""
    ref, rec = video.thumbnails
    diff = np.clip(np.abs(ref.astype(np.int16) - rec.astype(np.int16)) * 4, 0, 255).astype(np.uint8)
    h, w = ref.shape[:2]
    out = np.full((h, 3 * w + 8, 3), 255, np.uint8)
    for k, image in enumerate((ref, rec, diff)):
        out[:, k * (w + 4):k * (w + 4) + w] = image
    return out


def _usage_chart(counts: np.ndarray, summary: dict[str, Any]) -> str:
    fig = _figure(11.0, 3.2)
    ax_rank, ax_levels = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2, 1]})
    ranked = np.sort(counts)[::-1]
    used = ranked[ranked > 0]
    ax_rank.plot(np.arange(1, len(used) + 1), used, color="#4878cf", linewidth=1)
    ax_rank.set_xscale("log")
    ax_rank.set_yscale("log")
    ax_rank.set_xlabel("code rank")
    ax_rank.set_ylabel("count")
    ax_rank.set_title(f"codebook usage: {summary['used_codes']:,} of {summary['codebook_size']:,} codes used, "
                      f"perplexity {summary['perplexity']:.0f}", fontsize=9)
    levels = summary["levels"]
    x = 0
    ticks, labels = [], []
    for level in levels:
        total = max(1, sum(level["counts"]))
        shares = np.asarray(level["counts"], dtype=np.float64) / total
        ax_levels.bar(np.arange(x, x + len(shares)), shares, color="#6acc65")
        ticks.append(x + (len(shares) - 1) / 2)
        labels.append(f"ch{level['channel']}\n({level['levels']})")
        x += len(shares) + 1
    ax_levels.set_xticks(ticks)
    ax_levels.set_xticklabels(labels, fontsize=7)
    ax_levels.set_ylabel("share of tokens")
    ax_levels.set_title("FSQ digit usage per channel", fontsize=9)
    fig.tight_layout()
    return _png(fig)


def _short(name: str, limit: int = 28) -> str:
    return name if len(name) <= limit else "…" + name[-(limit - 1):]


# -------------------------------------------------------------------------------------------------------- HTML
_STYLE = """body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1300px}
h1{font-size:22px}h2{font-size:17px;margin-top:28px}table{border-collapse:collapse;font-size:13px}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}td.l,th.l{text-align:left}
img{max-width:100%;display:block;margin:6px 0}.strip{display:inline-block;margin:6px 18px 12px 0;font-size:12px}
code{font-size:12px}.small{font-size:12px;color:#555}"""

_SCRIPT = """<script>
(function () {
  function check() {
    var images = Array.prototype.slice.call(document.images);
    var loaded = images.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
    document.body.setAttribute("data-images-total", String(images.length));
    if (loaded === images.length) document.body.setAttribute("data-images-loaded", String(loaded));
    else document.body.setAttribute("data-images-broken", String(images.length - loaded));
  }
  if (document.readyState === "complete") check(); else window.addEventListener("load", check);
})();
</script>"""


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return html.escape(str(value))


def _table(rows: list[list[Any]], header: list[str], left: int = 1) -> str:
    head = "".join(f'<th class="{"l" if i < left else ""}">{html.escape(h)}</th>' for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(f'<td class="{"l" if i < left else ""}">{_fmt(c)}</td>' for i, c in enumerate(r))
                   + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render_html(report: EvalReportLike) -> str:
    """The report page (see the module docstring)."""
    data = report.to_dict()
    settings = data["settings"]
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Tokenizer evaluation</title>"
             f"<style>{_STYLE}</style></head><body>", "<h1>Tokenizer evaluation</h1>"]
    tokenizer = settings.get("tokenizer") or {}
    what = tokenizer.get("name") or settings.get("reconstructions") or ""
    parts.append(f"<p class='small'>mode <b>{html.escape(settings['mode'])}</b> · {html.escape(str(what))} · "
                 f"metrics on {html.escape(settings.get('metric_device', ''))} · {len(report.videos)} video(s), "
                 f"{len(report.failures)} failure(s) · {report.seconds:.1f} s</p>")
    mean = data["mean"]
    parts.append("<h2>Means over videos</h2>")
    keys = [k for k in ("psnr", "ssim", "lpips", "fvd") if k in mean]
    parts.append(_table([[mean["videos"], *[mean[k] for k in keys]]], ["videos", *[k.upper() for k in keys]], left=0))
    if report.dataset is not None and "mean_token_agreement" in report.dataset:
        parts.append(f"<p>Re-encoding the sampled source clips gives the stored tokens for "
                     f"<b>{100 * report.dataset['mean_token_agreement']:.2f}%</b> of positions.</p>")

    if report.videos:
        parts.append("<h2>Per video</h2>")
        cols = [k for k in ("psnr", "ssim", "lpips") if getattr(report.videos[0], k) is not None]
        rows = [[v.name, v.frames, f"{v.width}x{v.height}", *[getattr(v, k) for k in cols]] for v in report.videos]
        parts.append(_table(rows, ["video", "frames", "size", *[k.upper() for k in cols]], left=1))
        parts.append(f"<img alt='PSNR per video' src='{_video_chart(report)}'>")
        worst = sorted(report.videos, key=lambda v: v.psnr)[:WORST_VIDEOS]
        parts.append(f"<h2>Per frame: the {len(worst)} lowest-PSNR videos</h2>")
        parts.append(f"<img alt='PSNR per frame' src='{_frame_chart(worst)}'>")
        parts.append("<h2>Worst frames (input | reconstruction | difference ×4)</h2>")
        for video in worst:
            if video.thumbnails is None:
                continue
            caption = (f"{html.escape(video.name)} — frame {video.worst_frame}, "
                       f"{video.frame_psnr[video.worst_frame]:.2f} dB")
            parts.append(f"<div class='strip'><img alt='frames of {html.escape(video.name)}' "
                         f"src='{_pil_png(_strip(video))}'>{caption}</div>")

    tokens = (report.dataset or {}).get("tokens") or report.tokens
    if tokens is not None and report.token_counts is not None:
        scope = "the whole dataset" if (report.dataset or {}).get("tokens") else "the evaluated videos"
        parts.append(f"<h2>Discrete tokens ({html.escape(scope)})</h2>")
        parts.append(_table([[tokens["tokens"], tokens["used_codes"], tokens["usage"], tokens["entropy_bits"],
                              tokens["normalized_entropy"], tokens["perplexity"]]],
                            ["tokens", "used codes", "usage", "entropy (bits)", "normalised entropy", "perplexity"],
                            left=0))
        parts.append(f"<img alt='codebook usage' src='{_usage_chart(report.token_counts, tokens)}'>")

    if report.failures:
        parts.append("<h2>Skipped</h2>")
        parts.append(_table([[f.path, f.reason, f.message] for f in report.failures], ["input", "reason", "message"],
                            left=3))
    parts.append("<h2>Settings</h2><pre class='small'>" + html.escape(json.dumps(_finite(settings), indent=1,
                                                                                  default=_json_default)) + "</pre>")
    parts.append(_SCRIPT + "</body></html>")
    return "\n".join(parts)


def write_html(report: EvalReportLike, path: str | os.PathLike) -> Path:
    """``report.html`` (self-contained; written to a temporary name, then renamed)."""
    require_plotting()
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(render_html(report), encoding="utf-8")
    os.replace(tmp, path)
    return path
