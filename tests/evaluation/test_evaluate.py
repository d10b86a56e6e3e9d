"""``evaluate`` with on-the-fly reconstructions, folder matching, failures and the command's errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from evaluation_helpers import write_video
from nemo_cosmos_tokenizer.cli.main import main
from nemo_cosmos_tokenizer.evaluation import EvalConfig, ReconstructionConfig, evaluate_videos
from nemo_cosmos_tokenizer.evaluation.evaluate import match_reconstruction
from nemo_cosmos_tokenizer.evaluation.reconstruct import load_tokenizer, read_frames, reconstruct
from nemo_cosmos_tokenizer.evaluation.scoring import VideoScorer

BUILTIN = "tiny-random-dv8x16x16"


@pytest.fixture(scope="module")
def clip(media_dir):
    return read_frames(media_dir / "plant_tiny_64x48.mp4", max_frames=12).frames  # [12, 48, 64, 3]: windows 9 + 3


@pytest.fixture(scope="module")
def builtin():
    return load_tokenizer(ReconstructionConfig(BUILTIN, device="cpu"))


def test_window_reconstruction_is_the_inference_api_s(clip, builtin):
    tokenizer, description = builtin
    assert description["name"] == BUILTIN and description["family"] == "DV" and description["dtype"] == "float32"
    out = reconstruct(tokenizer, clip, ReconstructionConfig(BUILTIN, temporal_window=9, batch_windows=4))
    # What reconstruct-videos writes (the public uint8 API), and the tokens encode writes.
    np.testing.assert_array_equal(out.frames, tokenizer(clip[None], temporal_window=9, batch_windows=4)[0])
    np.testing.assert_array_equal(out.indices, tokenizer.encode_uint8(clip[None], temporal_window=9)[0][0].numpy())
    assert out.window_starts == [0, 9] and out.indices.shape == (2 + 2, 3, 4)  # 9 frames: 1 + 1 latent; 3: 1 + 1


def test_streaming_reconstruction_is_the_whole_clip_at_once(clip, builtin):
    tokenizer, _ = builtin
    streamed = reconstruct(tokenizer, clip, ReconstructionConfig(BUILTIN, temporal_mode="streaming", chunk_frames=8))
    whole = reconstruct(tokenizer, clip, ReconstructionConfig(BUILTIN, temporal_window=0))
    assert streamed.window_starts is None and whole.window_starts == [0]
    np.testing.assert_array_equal(streamed.indices, whole.indices)  # exact streaming: the same tokens in float32
    # The same tokens decoded chunk by chunk: float32 sums in another order, at most one level after rounding.
    assert np.abs(streamed.frames.astype(int) - whole.frames).max() <= 1


def test_evaluate_with_a_tokenizer(media_dir, clip, builtin, tmp_path):
    out = tmp_path / "out"
    inputs = [str(media_dir / "plant_tiny_64x48.mp4"), str(media_dir / "broken_text.mp4"),
              str(media_dir / "missing_clip.mp4")]
    status = main(["evaluate", *inputs, "--tokenizer", BUILTIN, "--device", "cpu", "--metric-device", "cpu",
                   "--max-frames", "12", "--temporal-window", "9", "--output-dir", str(out), "--no-progress",
                   "--no-html"])
    assert status == 1  # two inputs skipped
    report = json.loads((out / "metrics.json").read_text())
    assert [f["reason"] for f in report["failures"]] == ["unreadable", "missing"]
    (video,) = report["videos"]
    assert video["name"] == "plant_tiny_64x48.mp4" and video["frames"] == 12 and video["window_starts"] == [0, 9]
    assert len(video["per_frame"]["psnr"]) == len(video["per_frame"]["ssim"]) == 12

    # The same scores as scoring the inference API's reconstruction directly.
    tokenizer, _ = builtin
    expected = VideoScorer(EvalConfig(device="cpu")).score("x", clip, tokenizer(clip[None], temporal_window=9)[0])
    assert video["psnr"] == expected.psnr and video["ssim"] == expected.ssim
    assert report["mean"] == {"videos": 1, "psnr": video["psnr"], "ssim": video["ssim"]}

    settings = report["settings"]
    assert settings["tokenizer"]["name"] == BUILTIN and len(settings["tokenizer"]["weights_sha256"]) == 64
    assert settings["reconstruction"]["temporal_window"] == 9 and settings["metrics"]["metrics"] == ["psnr", "ssim"]
    tokens = report["tokens"]
    assert tokens["tokens"] == 4 * 3 * 4 and tokens["codebook_size"] == 64000 and 1 <= tokens["used_codes"] <= 48
    assert sum(tokens["levels"][0]["counts"]) == 48


def test_evaluate_a_continuous_tokenizer_folder(media_dir, load_conformance_model, tmp_path):
    from nemo_cosmos_tokenizer.hub.convert import save_pretrained

    folder = save_pretrained(load_conformance_model("CV4x8x8"), tmp_path / "cv4x8x8")
    report = evaluate_videos([media_dir / "plant_tiny_64x48.mp4"], EvalConfig(device="cpu", max_frames=9),
                             tokenizer=ReconstructionConfig(str(folder), device="cpu", temporal_window=5),
                             progress=False)
    assert report.tokens is None and report.settings["tokenizer"]["family"] == "CV"
    assert report.videos[0].window_starts == [0, 5] and report.videos[0].frames == 9


def test_reconstructions_matched_by_name_then_stem(media_dir, tmp_path):
    frames = read_frames(media_dir / "keyboard_rot0_3frames.mov").frames
    recon = tmp_path / "recon"
    recon.mkdir()
    write_video(recon / "keyboard_rot0_3frames.mp4", frames)  # what reconstruct-videos writes for a .mov
    write_video(recon / "plant_tiny_64x48.mp4", frames)  # wrong size for plant_tiny
    assert match_reconstruction("a/keyboard_rot0_3frames.mov", recon).name == "keyboard_rot0_3frames.mp4"
    assert match_reconstruction("a/other.mov", recon) is None

    inputs = [media_dir / "keyboard_rot0_3frames.mov", media_dir / "plant_tiny_64x48.mp4",
              media_dir / "nasa_single_frame.mp4"]
    report = evaluate_videos(inputs, EvalConfig(device="cpu"), reconstructions=recon, temporal_window=2,
                             progress=False)
    assert [v.name for v in report.videos] == ["keyboard_rot0_3frames.mov"]
    assert report.videos[0].window_starts == [0, 2] and 20 < report.videos[0].psnr < 70
    assert [(f.name, f.reason) for f in report.failures] == [("plant_tiny_64x48.mp4", "shape_mismatch"),
                                                               ("nasa_single_frame.mp4", "missing_reconstruction")]


def test_command_errors(media_dir, tmp_path, capsys, monkeypatch):
    video = str(media_dir / "plant_tiny_64x48.mp4")
    out = str(tmp_path / "o")
    assert main(["evaluate", video, "--output-dir", out]) == 2
    assert "exactly one of --tokenizer, --reconstructions, --dataset" in capsys.readouterr().err
    assert main(["evaluate", video, "--tokenizer", BUILTIN, "--reconstructions", out, "--output-dir", out]) == 2
    assert "got --tokenizer and --reconstructions" in capsys.readouterr().err
    assert main(["evaluate", "--tokenizer", BUILTIN, "--output-dir", out]) == 2
    assert "INPUT" in capsys.readouterr().err
    assert main(["evaluate", video, "--tokenizer", "no-such-tokenizer", "--device", "cpu", "--output-dir", out]) == 2
    assert "unknown tokenizer 'no-such-tokenizer'" in capsys.readouterr().err
    monkeypatch.setenv("NCT_EVAL_WEIGHTS", str(tmp_path / "empty"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    assert main(["evaluate", video, "--tokenizer", BUILTIN, "--device", "cpu", "--metrics", "psnr", "lpips",
                 "--output-dir", out]) == 2
    assert "vgg16-397923af.pth" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["evaluate", video, "--tokenizer", BUILTIN, "--metrics", "mse", "--output-dir", out])


def test_yaml_config_with_flag_overrides(tmp_path):
    from nemo_cosmos_tokenizer.cli.evaluate import _eval_config
    from nemo_cosmos_tokenizer.cli.main import build_parser

    yaml = tmp_path / "eval.yaml"
    yaml.write_text("metrics: [psnr, ssim, lpips]\nbatch_frames: 2\nfvd_frames: 16\n")
    args = build_parser().parse_args(["evaluate", "x.mp4", "--reconstructions", "r", "--output-dir", "o",
                                      "--config", str(yaml), "--batch-frames", "3"])
    config = _eval_config(args)
    assert config.metrics == ("psnr", "ssim", "lpips") and config.batch_frames == 3 and config.fvd_frames == 16
    with pytest.raises(ValueError, match="unknown metric"):
        EvalConfig(metrics=("psnr", "mse"))


def test_fast_path_reconstruction_matches_eager(clip, builtin):
    """``--fast`` (uncompiled on a CPU) against the eager network: float32 sums in another order."""
    config = ReconstructionConfig(BUILTIN, device="cpu", fast=True, temporal_window=9)
    fast, description = load_tokenizer(config)
    assert description["fast"] is True and type(fast.network).__name__ == "FastCosmosTokenizer"
    got = reconstruct(fast, clip[:9], config)
    eager = reconstruct(builtin[0], clip[:9], config)
    # FSQ rounding can flip at a boundary on some CPU's kernels: almost all tokens equal, pixels a level apart.
    assert (got.indices == eager.indices).mean() >= 0.95
    assert np.abs(got.frames.astype(int) - eager.frames).mean() < 1.0


def test_tokenbench_preprocessing():
    from nemo_cosmos_tokenizer.evaluation.reconstruct import tokenbench_preprocess

    long = np.zeros((450, 4, 6, 3), np.uint8)
    assert len(tokenbench_preprocess(long, 30.0)) == 300  # max(ceil(10 s * 30), 300)
    assert len(tokenbench_preprocess(long, 40.5)) == 405  # ceil(405.0)
    assert len(tokenbench_preprocess(long, None)) == 450  # no rate: no clipping
    big = np.random.default_rng(0).integers(0, 256, (2, 1200, 1300, 3), dtype=np.uint8)
    out = tokenbench_preprocess(big, 25.0)
    # short side 1200 -> 1080, long side int(1300 * 1080 / 1200 + 0.5) = 1170 (no even rounding), Lanczos
    assert out.shape == (2, 1080, 1170, 3)
    from PIL import Image

    expected = np.asarray(Image.fromarray(big[1]).resize((1170, 1080), Image.Resampling.LANCZOS))
    np.testing.assert_array_equal(out[1], expected)
    small = big[:, :1080]
    np.testing.assert_array_equal(tokenbench_preprocess(small, 25.0), small)  # short side <= 1080: untouched


def test_frames_too_small_for_ssim_are_skipped_and_recorded(tmp_path):
    from PIL import Image

    tiny = tmp_path / "tiny.png"
    Image.fromarray(np.full((5, 9, 3), 200, np.uint8)).save(tiny)
    recon = tmp_path / "recon"
    recon.mkdir()
    Image.fromarray(np.full((5, 9, 3), 190, np.uint8)).save(recon / "tiny.png")
    report = evaluate_videos([tiny], EvalConfig(device="cpu"), reconstructions=recon, progress=False)
    assert report.videos == [] and [(f.reason, "7x7" in f.message) for f in report.failures] == [("unscorable", True)]
    only_psnr = evaluate_videos([tiny], EvalConfig(metrics=("psnr",), device="cpu"), reconstructions=recon,
                                progress=False)
    assert only_psnr.videos[0].psnr == pytest.approx(20 * np.log10(255 / (10 + np.finfo(np.float32).eps)))
