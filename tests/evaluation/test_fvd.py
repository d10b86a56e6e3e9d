"""rFVD: the Fréchet distance against scipy's matrix square root, and the whole rFVD pipeline against an
independent rendering of TokenBench's steps, under a random TorchScript detector with I3D's call signature."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nemo_cosmos_tokenizer.evaluation import EvalConfig, frechet_distance
from nemo_cosmos_tokenizer.evaluation.fvd import i3d_input, load_i3d
from nemo_cosmos_tokenizer.evaluation.scoring import VideoScorer

scipy_linalg = pytest.importorskip("scipy.linalg")


def scipy_frechet(real: np.ndarray, fake: np.ndarray) -> float:
    """The textbook formula: |mu_r - mu_f|^2 + tr(S_r + S_f - 2 sqrtm(S_r S_f)), with scipy's sqrtm."""
    mu_r, mu_f = real.mean(0), fake.mean(0)
    cov_r, cov_f = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    root = scipy_linalg.sqrtm(cov_r @ cov_f)
    return float(((mu_r - mu_f) ** 2).sum() + np.trace(cov_r) + np.trace(cov_f) - 2 * np.trace(root).real)


def test_frechet_distance_equals_scipy():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(64, 12))
    fake = rng.normal(size=(64, 12)) @ rng.normal(scale=0.5, size=(12, 12)) + 0.3
    expected = scipy_frechet(real, fake)
    # float64 eigenvalues vs float64 Schur square root of a well-conditioned 12x12 product: ~1e-12 relative.
    assert frechet_distance(torch.from_numpy(real), torch.from_numpy(fake)) == pytest.approx(expected, rel=1e-9)
    assert frechet_distance(torch.from_numpy(real), torch.from_numpy(real)) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="at least 2"):
        frechet_distance(torch.from_numpy(real[:1]), torch.from_numpy(fake[:1]))


def tokenbench_preprocess(video: np.ndarray) -> torch.Tensor:
    """``token_bench/fvd.py`` ``preprocess_single`` on ``metrics_cli.main_fvd``'s input: ``[T, H, W, 3]`` uint8 ->
    ``[3, T, 224, 224]``."""
    x = torch.from_numpy(video[:300] / 255.0).float().permute(3, 0, 1, 2)  # [C, T, H, W] in [0, 1]
    c, t, h, w = x.shape
    scale = 224 / min(h, w)
    size = (224, math.ceil(w * scale)) if h < w else (math.ceil(h * scale), 224)
    x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    h, w = x.shape[-2:]
    x = x[:, :, (h - 224) // 2:(h - 224) // 2 + 224, (w - 224) // 2:(w - 224) // 2 + 224]
    return ((x - 0.5) * 2).contiguous()


@pytest.mark.parametrize("shape", [(5, 30, 50), (4, 61, 37)])  # landscape and portrait, odd sizes
def test_i3d_input_is_tokenbench_preprocessing(shape):
    video = np.random.default_rng(1).integers(0, 256, (*shape, 3), dtype=np.uint8)
    ours = i3d_input(torch.from_numpy(video), chunk=2)  # chunked resize: the same values
    torch.testing.assert_close(ours, tokenbench_preprocess(video), rtol=0, atol=0)
    assert i3d_input(torch.from_numpy(video), max_frames=3).shape == (3, 3, 224, 224)


def test_rfvd_pipeline_equals_independent_computation(i3d_file):
    rng = np.random.default_rng(2)
    real = [rng.integers(0, 256, (6, 20, 28, 3), dtype=np.uint8) for _ in range(10)]
    # Darker, lower-contrast, noisy "reconstructions": features clearly apart from the real ones.
    fake = [np.clip(v // 3 + 40 + rng.integers(-30, 31, v.shape), 0, 255).astype(np.uint8) for v in real]
    scorer = VideoScorer(EvalConfig(metrics=("fvd",), device="cpu", i3d_weights=str(i3d_file)))
    for i, (a, b) in enumerate(zip(real, fake)):
        scorer.score(f"v{i}", a, b)
    result = scorer.fvd()
    assert result["videos"] == 10 and scorer.weights["i3d"]["path"] == str(i3d_file)

    detector = torch.jit.load(str(i3d_file))
    with torch.no_grad():
        feats_real = np.stack([detector(tokenbench_preprocess(v)[None], rescale=False, resize=False,
                                        return_features=True)[0].double().numpy() for v in real])
        feats_fake = np.stack([detector(tokenbench_preprocess(v)[None], rescale=False, resize=False,
                                        return_features=True)[0].double().numpy() for v in fake])
    # Same float32 network; ours runs real and fake as one batch of 2: features equal to float32 rounding.
    np.testing.assert_allclose(torch.stack(scorer.real_features).numpy(), feats_real, rtol=1e-5, atol=1e-6)
    expected = scipy_frechet(feats_real, feats_fake)
    assert expected > 1e-3  # the reconstructions differ: a distance that is not rounding noise
    # Feature rounding (~1e-7 relative) moves the distance by far less than 1e-4 of the covariance traces.
    traces = np.trace(np.cov(feats_real, rowvar=False)) + np.trace(np.cov(feats_fake, rowvar=False))
    assert result["value"] == pytest.approx(expected, abs=1e-4 * traces)
    ours = frechet_distance(torch.from_numpy(feats_real), torch.from_numpy(feats_fake))
    assert ours == pytest.approx(expected, rel=1e-9)


def test_rfvd_needs_two_videos(i3d_file):
    scorer = VideoScorer(EvalConfig(metrics=("fvd",), device="cpu", i3d_weights=str(i3d_file)))
    video = np.zeros((2, 16, 16, 3), np.uint8)
    scorer.score("one", video, video)
    assert scorer.fvd()["value"] is None and "2 videos" in scorer.fvd()["note"]


def test_load_i3d_rejects_a_non_torchscript_file(tmp_path):
    path = tmp_path / "i3d_torchscript.pt"
    path.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="not a TorchScript file"):
        load_i3d(path)
