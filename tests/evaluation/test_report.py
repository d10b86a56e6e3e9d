"""The reports: ``metrics.json`` round trip, and ``report.html`` rendered by a real headless Chromium.

The browser test needs a Chromium binary (``apt-get install -y chromium``; or ``$NCT_CHROMIUM``) and is skipped
without one. It loads the page from a file (the page is self-contained: inline PNG data URIs, no network), dumps
the DOM after the load event (the page then sets ``data-images-loaded`` on ``<body>`` when every ``<img>`` is
complete with a natural width > 0) and takes a screenshot, which must be a real rendering: not blank, with the
plots' colours in it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest

from nemo_cosmos_tokenizer.evaluation import EvalConfig, ReconstructionConfig, evaluate_videos


def _chromium() -> str | None:
    for candidate in (os.environ.get("NCT_CHROMIUM"), "chromium", "chromium-browser", "google-chrome",
                      "google-chrome-stable"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    return None


@pytest.fixture(scope="module")
def report(media_dir, tmp_path_factory):
    result = evaluate_videos(
        [media_dir / "plant_tiny_64x48.mp4", media_dir / "keyboard_rot0_3frames.mov", media_dir / "broken_empty.mp4"],
        EvalConfig(device="cpu", max_frames=12),
        tokenizer=ReconstructionConfig("tiny-random-dv8x16x16", device="cpu", temporal_window=5), progress=False,
    )
    folder = tmp_path_factory.mktemp("report")
    return result, result.write(folder)


def test_metrics_json_holds_every_number(report):
    result, written = report
    data = json.loads(written["json"].read_text())
    assert data == json.loads(json.dumps(data))  # plain JSON: no NaN/inf, no numpy types
    assert [v["name"] for v in data["videos"]] == ["plant_tiny_64x48.mp4", "keyboard_rot0_3frames.mov"]
    assert data["videos"][0]["window_starts"] == [0, 5, 10] and data["failures"][0]["reason"] == "empty_file"
    assert data["mean"]["psnr"] == pytest.approx(np.mean([v.psnr for v in result.videos]))
    assert data["tokens"]["used_codes"] == int((result.token_counts > 0).sum())


def _browser(binary: str, tmp_path, *args: str) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000"]
    return subprocess.run([binary, *flags, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(_chromium() is None, reason="no Chromium binary (apt-get install -y chromium, or set NCT_CHROMIUM)")
def test_html_report_renders_in_a_browser(report, tmp_path):
    from PIL import Image

    _, written = report
    url = written["html"].resolve().as_uri()
    binary = _chromium()
    dom = _browser(binary, tmp_path, "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body[^>]*>", dom.stdout)
    assert body is not None, dom.stdout[:500]
    total = re.search(r'data-images-total="(\d+)"', body.group(0))
    loaded = re.search(r'data-images-loaded="(\d+)"', body.group(0))
    assert total is not None and loaded is not None, body.group(0)
    # PSNR per video, per frame, two frame strips, the codebook usage: every one decoded by the browser.
    assert int(loaded.group(1)) == int(total.group(1)) == 5
    assert "plant_tiny_64x48.mp4" in dom.stdout and "empty_file" in dom.stdout

    shot = tmp_path / "shot.png"
    run = _browser(binary, tmp_path, "--window-size=1200,1800", f"--screenshot={shot}", url)
    assert run.returncode == 0 and shot.is_file(), run.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.shape == (1800, 1200, 3) and pixels.std() > 10
    # The bar colour of the PSNR chart (#4878cf) is on screen: the images are drawn, not just laid out.
    bar = np.all(np.abs(pixels.astype(int) - (0x48, 0x78, 0xCF)) <= 6, axis=-1)
    assert bar.sum() > 500

    # The flag can fail: one corrupt image and the page reports it instead.
    broken = tmp_path / "broken.html"
    page = written["html"].read_text()
    broken.write_text(page.replace("data:image/png;base64,", "data:image/png;base64,AAAA", 1))
    dom = _browser(binary, tmp_path, "--dump-dom", broken.resolve().as_uri())
    body = re.search(r"<body[^>]*>", dom.stdout).group(0)
    assert 'data-images-broken="1"' in body and "data-images-loaded" not in body
