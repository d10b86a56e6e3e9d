"""Dataset audit on a demo dataset built here with the built-in tokenizer (the ``build-dataset --demo`` inputs)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from nemo_cosmos_tokenizer.cli.main import main
from nemo_cosmos_tokenizer.data import (BuildConfig, ClipSpec, load_video_tokenizer, read_manifest, read_sample,
                                        run_build)
from nemo_cosmos_tokenizer.data.reader import VideoTokenDataset
from nemo_cosmos_tokenizer.data.samples import make_sample_inputs
from nemo_cosmos_tokenizer.evaluation import EvalConfig, audit_dataset
from nemo_cosmos_tokenizer.evaluation.audit import document_sources

BUILTIN = "tiny-random-dv8x16x16"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("audit")
    inputs = make_sample_inputs(root / "inputs")  # 5 clips + 1 image, captions, a sentencepiece model
    config = BuildConfig(input=str(inputs.manifest), output_prefix=str(root / "ds"),
                         text_tokenizer=str(inputs.text_tokenizer), tokenizer=BUILTIN, resolution=[32, 48],
                         num_frames=9, clips_per_video=2, template="both", device="cpu", chunk_size=4, progress=False)
    run_build(config)  # this process alone
    return config


def test_documents_map_to_their_source_clips(demo):
    sources = document_sources(demo.output_prefix)
    dataset = VideoTokenDataset(demo.output_prefix)
    assert len(sources) == len(dataset)
    manifest = read_manifest(demo.input)
    sidecar = json.loads(open(f"{demo.output_prefix}.json").read())
    spec = ClipSpec(**{k: v for k, v in sidecar["frames"].items() if k != "video_backend"})
    tokenizer = load_video_tokenizer(BUILTIN, "cpu", "float32")
    # "both": two documents per clip (caption first, caption last) with the same grid; 24-frame videos give 2 clips.
    assert [(s.sample_index, s.clip) for s in sources[:4]] == [(0, 0), (0, 0), (0, 1), (0, 1)]
    for index in (0, 3, len(sources) - 1):
        source = sources[index]
        clip = read_sample(manifest.samples[source.sample_index], spec).clips[source.clip]
        np.testing.assert_array_equal(dataset.decode(index).grid, tokenizer.encode(clip[None])[0])


def test_audit_scores_decoded_documents_against_their_clips(demo):
    report = audit_dataset(demo.output_prefix, EvalConfig(device="cpu"), sample=3, seed=1, device="cpu",
                           progress=False)
    assert len(report.videos) == 3 and report.failures == []
    assert report.settings["tokenizer"]["encoder_matches_build"] is True
    dataset = VideoTokenDataset(demo.output_prefix)
    sources = document_sources(demo.output_prefix)
    manifest = read_manifest(demo.input)
    spec = ClipSpec(**{k: v for k, v in report.dataset["frames"].items() if k != "video_backend"})
    decoder = load_video_tokenizer(BUILTIN, "cpu", "float32", parts=("decoder",))
    from skimage.metrics import structural_similarity

    for video, index in zip(report.videos, report.dataset["sampled"]):
        assert video.extra["document"] == index and video.extra["token_agreement"] == 1.0  # same device and dtype
        source = sources[index]
        clip = read_sample(manifest.samples[source.sample_index], spec).clips[source.clip].astype(np.float64)
        decoded = decoder.decode(dataset.decode(index).grid[None])[0].astype(np.float64)
        assert clip.shape == (9, 32, 48, 3) or clip.shape == (1, 32, 48, 3)  # clips, or the image
        mse = ((clip - decoded) ** 2).mean()
        assert video.psnr == pytest.approx(20 * np.log10(255 / (np.sqrt(mse) + np.finfo(np.float32).eps)), rel=1e-9)
        ssim = np.mean([structural_similarity(a, b, data_range=255, channel_axis=-1) for a, b in zip(clip, decoded)])
        assert video.ssim == pytest.approx(ssim, rel=1e-6)
    whole = report.dataset["tokens"]
    assert whole["tokens"] == sum(int(np.prod(dataset.decode(i).grid.shape)) for i in range(len(dataset)))
    assert report.dataset["documents"] == len(dataset) and report.dataset["mean_token_agreement"] == 1.0


def test_audit_command_writes_the_reports(demo, tmp_path):
    out = tmp_path / "out"
    status = main(["evaluate", "--dataset", demo.output_prefix, "--sample", "2", "--device", "cpu", "--metric-device",
                   "cpu", "--output-dir", str(out), "--no-progress"])
    assert status == 0
    report = json.loads((out / "metrics.json").read_text())
    assert report["settings"]["mode"] == "dataset" and len(report["videos"]) == 2
    assert report["dataset"]["tokens"]["codebook_size"] == 64000 and (out / "report.html").stat().st_size > 10_000


def test_audit_refuses_a_changed_manifest_or_missing_chunk_records(demo, tmp_path):
    moved = tmp_path / "manifest.jsonl"
    lines = open(demo.input).read().splitlines()
    moved.write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(ValueError, match="changed since the build"):
        audit_dataset(demo.output_prefix, EvalConfig(device="cpu"), sample=1, device="cpu", manifest=moved)
    copy = tmp_path / "copy"
    copy.mkdir()
    for suffix in (".bin", ".idx", ".json"):
        shutil.copy(f"{demo.output_prefix}{suffix}", copy / f"ds{suffix}")
    with pytest.raises(FileNotFoundError, match="chunk records"):
        audit_dataset(copy / "ds", EvalConfig(device="cpu"), sample=1, device="cpu")
