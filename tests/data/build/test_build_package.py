"""The build package's surface: imports that stay light, the deprecated module names, the frozen config's
refusals, and summaries that count in words."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from nemo_cosmos_tokenizer.data.build import BuildConfig, RunSummary, load_build_config
from nemo_cosmos_tokenizer.data.build.summary import counted

REPO = Path(__file__).resolve().parents[3]
#: Imported only when a build starts (or a command needs them): a CLI parses its arguments before paying for them.
HEAVY = ("megatron", "decord", "av", "sentencepiece", "transformers", "nemo_run", "PyNvVideoCodec", "omegaconf")


@pytest.mark.parametrize("module", ["nemo_cosmos_tokenizer.data", "nemo_cosmos_tokenizer.data.build"])
def test_import_loads_no_heavy_library(module):
    code = (
        f"import sys, {module}\n"
        f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr[-2000:]


def test_old_module_names_still_work_and_say_so():
    from nemo_cosmos_tokenizer.data import build as package

    for name in ("builder", "distributed_build"):
        sys.modules.pop(f"nemo_cosmos_tokenizer.data.{name}", None)
    with pytest.warns(DeprecationWarning, match="nemo_cosmos_tokenizer.data.build"):
        from nemo_cosmos_tokenizer.data import builder
    with pytest.warns(DeprecationWarning, match="nemo_cosmos_tokenizer.data.build"):
        from nemo_cosmos_tokenizer.data import distributed_build
    for name in ("BuildConfig", "BuildContext", "ConfigMismatchError", "IncompleteBuildError", "load_build_config",
                 "merge", "prepare_build", "run_chunks", "CHUNK_NAME"):
        assert getattr(builder, name) is getattr(package, name), name
    for name in ("ChunkFailedError", "RunSummary", "run_build", "summary_path", "data_paths_path"):
        assert getattr(distributed_build, name) is getattr(package, name), name
    assert builder.BuildSummary is RunSummary and callable(builder.build)
    import nemo_cosmos_tokenizer.data as data

    with pytest.warns(DeprecationWarning, match="RunSummary"):
        assert data.BuildSummary is RunSummary


def test_config_is_frozen_and_loads_from_yaml(tmp_path):
    yaml = tmp_path / "c.yaml"
    yaml.write_text("num_frames: 33\nresolution: [64, 96]\n")
    config = load_build_config(yaml, {"fps": 12.0})
    assert (config.num_frames, config.height, config.width, config.fps) == (33, 64, 96, 12.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.num_frames = 9
    assert dataclasses.replace(config, num_frames=9).num_frames == 9 and config.num_frames == 33


@pytest.mark.parametrize(
    ("fields", "fix"),
    [
        (dict(fps=12.0, stride=2), "give --fps or --stride, not both"),
        (dict(fps=0.0), "leave it unset to keep the source frame rate"),
        (dict(stride=0), "leave it unset to take every frame"),
        (dict(video_backend="nvdec", device="cpu"), "use --device cuda or --video-backend pyav"),
        (dict(layout="llava"), "layout must be one of"),
        (dict(batch_size=0), "batch_size must be >= 1"),
        (dict(nvdec_decodes=0), "nvdec_decodes must be >= 1"),
        (dict(nvdec_probe_threads=0), "nvdec_probe_threads must be >= 1"),
    ],
)
def test_config_refuses_what_cannot_work(fields, fix):
    with pytest.raises(ValueError, match=fix):
        BuildConfig(**fields)


def _summary(**changes) -> RunSummary:
    fields = dict(
        status="complete", output_prefix="out/ds", merged=True, data_path=["out/ds"], vocab_size=64408,
        world_size=1, num_nodes=1, device_type="cpu", backend=None, chunks_total=1, chunks_run=1, chunks_skipped=0,
        chunks_failed=[], samples=1, written_samples=1, failed_samples=0, documents=1, clips=1, frames=9, tokens=1,
        failures_by_reason={}, run_samples=1, run_clips=1, run_frames=9, run_tokens=1, seconds=1.0,
        processing_seconds=1.0, clips_per_second=1.0, frames_per_second=9.0, tokens_per_second=1.0,
        per_gpu={"clips_per_second": 1.0, "frames_per_second": 9.0, "tokens_per_second": 1.0},
    )
    fields.update(changes)
    return RunSummary(**fields)


def test_summary_counts_in_words():
    assert (counted(1, "clip"), counted(0, "clip"), counted(2, "process", "processes")) == (
        "1 clip", "0 clips", "2 processes")
    one = _summary().format()
    assert "wrote 1 document (1 token, 1 clip) from 1 of 1 sample to out/ds.{bin,idx}" in one
    assert "1 of 1 chunk (0 already complete) on 1 cpu process, 1 node," in one
    many = _summary(documents=2, tokens=16, clips=2, samples=3, chunks_total=2, world_size=2, num_nodes=2,
                    device_type="cuda").format()
    assert "wrote 2 documents (16 tokens, 2 clips) from 1 of 3 samples" in many
    assert "of 2 chunks" in many and "on 2 cuda processes, 2 nodes," in many
    failed = _summary(status="chunks_failed", chunks_failed=[0],
                      chunk_errors=[{"chunk": 0, "rank": 0, "error": "RuntimeError: x"}]).format()
    assert failed.startswith("1 chunk failed: 0 (rank 0: RuntimeError: x)")


def test_deprecated_build_is_run_build_in_one_process(monkeypatch):
    from nemo_cosmos_tokenizer.data import build as package
    from nemo_cosmos_tokenizer.distributed import DistEnv

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from nemo_cosmos_tokenizer.data import builder
    calls = []
    monkeypatch.setattr(package, "run_build", lambda config, **kw: calls.append((config, kw)) or "summary")
    config = BuildConfig()
    with pytest.warns(DeprecationWarning, match="run_build"):
        assert builder.build(config, video_tokenizer="v") == "summary"
    assert calls == [(config, {"video_tokenizer": "v", "text_tokenizer": None, "env": DistEnv()})]
