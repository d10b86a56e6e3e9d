"""Dataset builder ``fast=True`` (``--fast``) on CPU: the network is swapped for the fast path after the weight
checksum is taken, the build completes, and ``fast`` enters the config hash (only when enabled)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nemo_cosmos_tokenizer.data import BuildConfig, load_video_tokenizer
from nemo_cosmos_tokenizer.data.build import ConfigMismatchError, run_build
from nemo_cosmos_tokenizer.distributed import DistEnv

VIDEOS = ("cockatoo_hevc.mp4", "plant_tiny_64x48.mp4")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, media_dir):
    from media_build_inputs import make_build_inputs

    pytest.importorskip("sentencepiece")
    return make_build_inputs(tmp_path_factory.mktemp("fast_build"), media_dir, VIDEOS)


def _config(inputs, name: str, **changes) -> BuildConfig:
    root, manifest, spm, model_dir = inputs
    return BuildConfig(input=str(manifest), output_prefix=str(root / name / "ds"), text_tokenizer=str(spm),
                       tokenizer=str(model_dir), resolution=[32, 32], num_frames=9, batch_size=2, progress=False,
                       device="cpu", dtype="float32", **changes)


def test_fast_build_on_cpu(inputs):
    eager = load_video_tokenizer(inputs[3], "cpu", "float32")
    plain = run_build(_config(inputs, "eager"), video_tokenizer=eager, env=DistEnv())

    fast = load_video_tokenizer(inputs[3], "cpu", "float32")
    summary = run_build(_config(inputs, "fast", fast=True), video_tokenizer=fast, env=DistEnv())
    assert fast.is_fast and fast.checksum == eager.checksum  # checksum of the plain weights, taken before the swap
    assert fast.inference.network.use_fast, [r.message for r in fast.inference.network.reports]
    assert (summary.written_samples, summary.clips, summary.tokens) == (plain.written_samples, plain.clips, plain.tokens)

    sidecar = json.loads(Path(f"{summary.output_prefix}.json").read_text())
    eager_sidecar = json.loads(Path(f"{plain.output_prefix}.json").read_text())
    assert sidecar["encoding"]["fast"] is True and "fast" not in eager_sidecar["encoding"]
    assert sidecar["config_hash"] != eager_sidecar["config_hash"]
    assert {k for k in sidecar["fingerprint"] if sidecar["fingerprint"][k] != eager_sidecar["fingerprint"][k]} == {
        "encoding"}
    # the eager build's prefix refuses a --fast rerun (and the other way round)
    with pytest.raises(ConfigMismatchError, match="--fast"):
        run_build(_config(inputs, "eager", fast=True), video_tokenizer=load_video_tokenizer(inputs[3], "cpu", "float32"),
                  env=DistEnv())


def test_fast_build_whole_mode_streams_on_cpu(inputs):
    """``--fast --temporal-mode whole`` (issue 15: it failed every chunk with a TypeError from StreamingEncoder)."""
    eager = load_video_tokenizer(inputs[3], "cpu", "float32")
    plain = run_build(_config(inputs, "eager_whole", temporal_mode="whole"), video_tokenizer=eager, env=DistEnv())
    fast = load_video_tokenizer(inputs[3], "cpu", "float32")
    summary = run_build(_config(inputs, "fast_whole", fast=True, temporal_mode="whole"), video_tokenizer=fast,
                        env=DistEnv())
    assert fast.is_fast and fast.inference.network.use_fast, [r.message for r in fast.inference.network.reports]
    assert summary.written_samples == plain.written_samples > 0
    assert (summary.clips, summary.tokens) == (plain.clips, plain.tokens)


def test_deterministic_build_turns_kernel_timing_off(inputs, monkeypatch):
    """``deterministic=True`` (the default; ``--no-deterministic`` turns it off): cuDNN benchmarking off and
    deterministic, Inductor's deterministic mode where torch has it, the fast path told not to turn benchmarking back
    on and to round as eager does; the same tokens as without it (on the CPU nothing is timed or compiled) and the
    setting in the config hash, under a value other than the ``True`` of builds made before eager rounding."""
    import torch

    from nemo_cosmos_tokenizer.data.build import BuildConfig

    assert BuildConfig.deterministic is True  # the default
    # the flags are process-wide: restore them for the other tests of this worker
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", True)
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", False)
    inductor_config = pytest.importorskip("torch._inductor.config")
    if hasattr(inductor_config, "deterministic"):
        monkeypatch.setattr(inductor_config, "deterministic", False)

    timed = load_video_tokenizer(inputs[3], "cpu", "float32")
    plain = run_build(_config(inputs, "plain_fast", fast=True, deterministic=False), video_tokenizer=timed,
                      env=DistEnv())
    assert torch.backends.cudnn.deterministic is False and not getattr(inductor_config, "deterministic", False)
    assert timed.inference.network.options.eager_numerics is False
    fast = load_video_tokenizer(inputs[3], "cpu", "float32")
    summary = run_build(_config(inputs, "deterministic", fast=True), video_tokenizer=fast, env=DistEnv())
    assert torch.backends.cudnn.benchmark is False and torch.backends.cudnn.deterministic is True
    assert getattr(inductor_config, "deterministic", False) is hasattr(inductor_config, "deterministic")
    options = fast.inference.network.options
    assert options.cudnn_benchmark is False and options.eager_numerics is True
    for suffix in (".bin", ".idx"):
        assert Path(f"{summary.output_prefix}{suffix}").read_bytes() == Path(f"{plain.output_prefix}{suffix}").read_bytes()
    sidecar = json.loads(Path(f"{summary.output_prefix}.json").read_text())
    other = json.loads(Path(f"{plain.output_prefix}.json").read_text())
    assert sidecar["encoding"]["deterministic"] == "untimed kernels, eager rounding"
    assert "deterministic" not in other["encoding"]
    assert sidecar["config_hash"] != other["config_hash"]
