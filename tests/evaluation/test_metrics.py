"""PSNR and SSIM against scikit-image on real decoded video, through the ``evaluate`` command (folder mode).

Each shared-media clip is re-encoded with H.264 at a low quality (real codec loss, like TokenBench's decoded mp4
reconstructions); ``evaluate INPUT... --reconstructions DIR`` must give, per video, TokenBench's PSNR and
scikit-image's SSIM computed here on frames decoded independently with PyAV, to 1e-6 relative.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from evaluation_helpers import decode_video, write_video
from nemo_cosmos_tokenizer.cli.main import main
from nemo_cosmos_tokenizer.evaluation.metrics import FLOAT32_EPS, psnr_from_mse, squared_error_sums, ssim_frames

skimage_metrics = pytest.importorskip("skimage.metrics", reason="scikit-image is the independent reference")

# Small clips (the float64 SSIM of large frames is slow on a shared CPU): 36 frames of 64x48, 3 frames of 568x320
# with a display-matrix-free rotation, one 480x270 frame.
CLIPS = ("plant_tiny_64x48.mp4", "keyboard_rot0_3frames.mov", "nasa_single_frame.mp4")
# Both sides are exact float64 computations of the same formulas (integer squared errors; box sums of 8-bit values
# far below 2**53); what differs is summation order, ~1e-13 relative. 1e-6 is the bound.
RTOL = 1e-6


@pytest.fixture(scope="module")
def reconstructions(media_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("recon")
    for name in CLIPS:
        frames = decode_video(media_dir / name)
        write_video(folder / name.replace(".mov", ".mp4"), frames, crf=38)  # .mov -> .mp4: matched by stem
    return folder


def test_psnr_ssim_equal_scikit_image_on_real_video(media_dir, reconstructions, tmp_path):
    out = tmp_path / "out"
    status = main(["evaluate", *[str(media_dir / c) for c in CLIPS], "--reconstructions", str(reconstructions),
                   "--output-dir", str(out), "--metric-device", "cpu", "--batch-frames", "4", "--no-progress"])
    assert status == 0
    report = json.loads((out / "metrics.json").read_text())
    assert [v["name"] for v in report["videos"]] == list(CLIPS)
    psnrs, ssims = [], []
    for video in report["videos"]:
        ref = decode_video(media_dir / video["name"]).astype(np.float64)
        rec = decode_video(reconstructions / video["name"].replace(".mov", ".mp4")).astype(np.float64)
        assert video["frames"] == len(ref) and (video["height"], video["width"]) == ref.shape[1:3]
        mse = ((ref - rec) ** 2).mean()
        tokenbench_psnr = 20 * math.log10(255.0 / (math.sqrt(mse) + FLOAT32_EPS))  # metrics_cli.PSNR
        assert video["psnr"] == pytest.approx(tokenbench_psnr, rel=RTOL)
        # skimage's PSNR has no eps: equal to TokenBench's to ~1e-8 relative at these error levels.
        assert video["psnr"] == pytest.approx(skimage_metrics.peak_signal_noise_ratio(ref, rec, data_range=255),
                                              rel=RTOL)
        frame_ssim = [skimage_metrics.structural_similarity(a, b, data_range=255, channel_axis=-1)
                      for a, b in zip(ref, rec)]
        np.testing.assert_allclose(video["per_frame"]["ssim"], frame_ssim, rtol=RTOL)
        assert video["ssim"] == pytest.approx(np.mean(frame_ssim), rel=RTOL)
        assert 15 < video["psnr"] < 60 and 0.3 < video["ssim"] < 1.0  # real, lossy, not identical
        psnrs.append(tokenbench_psnr)
        ssims.append(np.mean(frame_ssim))
    assert report["mean"]["psnr"] == pytest.approx(np.mean(psnrs), rel=RTOL)
    assert report["mean"]["ssim"] == pytest.approx(np.mean(ssims), rel=RTOL)
    assert report["settings"]["mode"] == "reconstructions" and report["failures"] == []


def test_ssim_matches_skimage_on_edges_and_flat_regions():
    """Flat regions (zero variance, where the constants dominate) and hard edges, on odd sizes just above 7x7."""
    rng = np.random.default_rng(0)
    a = np.zeros((3, 9, 11, 3), np.uint8)
    a[:, :, 5:] = 255
    a[1] = rng.integers(0, 256, a[1].shape)
    b = a.copy()
    b[0, 4, 4] = 128
    b[2] = np.clip(b[2].astype(int) + rng.integers(-30, 31, b[2].shape), 0, 255)
    ours = ssim_frames(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    ref = [skimage_metrics.structural_similarity(x, y, data_range=255, channel_axis=-1) for x, y in zip(a, b)]
    np.testing.assert_allclose(ours, ref, rtol=RTOL)
    assert ours[1] == 1.0  # identical frames


def test_psnr_of_identical_frames_is_tokenbench_finite_value():
    frames = torch.randint(0, 256, (2, 8, 8, 3), dtype=torch.uint8)
    assert squared_error_sums(frames, frames).tolist() == [0, 0]
    assert psnr_from_mse(0.0) == pytest.approx(20 * math.log10(255 / FLOAT32_EPS))


def test_bad_frame_pairs_are_rejected():
    a = torch.zeros((1, 8, 8, 3), dtype=torch.uint8)
    with pytest.raises(ValueError, match="differ in shape"):
        ssim_frames(a, torch.zeros((1, 8, 9, 3), dtype=torch.uint8))
    with pytest.raises(ValueError, match="at least 7x7"):
        ssim_frames(a[:, :6], a[:, :6])
    with pytest.raises(TypeError, match="uint8"):
        squared_error_sums(a.float(), a.float())
