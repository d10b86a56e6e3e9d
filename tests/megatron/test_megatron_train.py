"""A megatron-core GPTModel trained on CPU (gloo, SDPA core attention): steps, checkpoint, exact resume, and
sampling a layout-valid video from the checkpoint."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

pytest.importorskip("megatron.core")

from nemo_cosmos_tokenizer.megatron.train import TrainConfig, latest_checkpoint, load_checkpoint_file, train  # noqa: E402


def _config(prefix: str, out: Path, **overrides) -> TrainConfig:
    settings = dict(
        data_prefix=prefix, output_dir=str(out), split="5,1,0", seq_length=64, num_layers=2, hidden_size=32,
        num_attention_heads=2, position_embedding="learned_absolute", micro_batch_size=2, max_steps=4, lr=3e-3,
        warmup_steps=1, eval_interval=2, eval_batches=1, log_interval=1, save_interval=100, device="cpu",
        num_workers=0,
    )
    settings.update(overrides)
    return TrainConfig(**settings)


@pytest.fixture(scope="module")
def straight_run(tiny_build, tmp_path_factory):
    out = tmp_path_factory.mktemp("straight")
    return out, train(_config(tiny_build, out))


def test_training_steps_log_and_checkpoint(straight_run):
    out, summary = straight_run
    assert summary.steps == 4 and summary.resumed_from is None and summary.seq_length == 64
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    train_losses = [r["train_loss"] for r in log if "train_loss" in r]
    val = [r["val_loss"] for r in log if "val_loss" in r]
    assert len(train_losses) == 4 and len(val) == 3  # steps 0, 2 and 4
    assert all(r["tokens_per_second"] > 0 for r in log if "train_loss" in r)
    # From ~ln(64512) = 11.07 at initialisation, 4 AdamW steps at lr 3e-3 must lower the loss.
    assert val[-1] < val[0] - 0.05
    assert latest_checkpoint(out).name == "step_0000004"
    state = load_checkpoint_file(latest_checkpoint(out))
    assert state["step"] == 4 and state["shape"]["vocab_size"] % 128 == 0
    assert json.loads((out / "summary.json").read_text())["final_val_loss"] == pytest.approx(val[-1])


def test_resume_continues_exactly(straight_run, tiny_build, tmp_path):
    """2 steps, stop (exit_after), rerun the same command: the weights equal those of 4 uninterrupted steps."""
    first = train(_config(tiny_build, tmp_path, exit_after=2))
    assert first.steps == 2 and latest_checkpoint(tmp_path).name == "step_0000002"
    second = train(_config(tiny_build, tmp_path))
    assert second.resumed_from == 2 and second.steps == 4
    resumed = load_checkpoint_file(latest_checkpoint(tmp_path))["model"]
    straight = load_checkpoint_file(latest_checkpoint(straight_run[0]))["model"]
    assert resumed.keys() == straight.keys()
    for key in straight:
        if isinstance(straight[key], torch.Tensor):
            # Same data, same order, same ops on the same machine; only a thread-dependent reduction order could
            # differ (~1e-7 relative in float32). One missed or repeated AdamW step moves weights by ~lr = 3e-3.
            torch.testing.assert_close(resumed[key], straight[key], rtol=1e-5, atol=1e-5, msg=key)


def test_checkpoint_of_another_shape_is_refused(straight_run, tiny_build):
    out, _ = straight_run
    with pytest.raises(ValueError, match="holds a model of shape"):
        train(_config(tiny_build, out, hidden_size=64, max_steps=6))


def test_sample_video_from_the_checkpoint(straight_run, tiny_build, tmp_path):
    from nemo_cosmos_tokenizer.data.reader import VideoTokenDataset
    from nemo_cosmos_tokenizer.megatron.sampling import sample_videos

    out, _ = straight_run
    caption = VideoTokenDataset(tiny_build).decode(1).text
    result = sample_videos(out, caption, tmp_path / "s.mp4", num_samples=2, seed=3, device="cpu")
    assert result.grid_shape == (2, 2, 2) and len(result.videos) == 2
    import av

    for path in result.videos:
        with av.open(path) as container:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        assert len(frames) == 9 and frames[0].shape == (32, 32, 3)  # 2 latent frames -> 1 + 8 frames of 32x32


def test_tensor_parallel_under_torchrun(tiny_build, tmp_path):
    """Two processes, tensor parallel 2 (gloo on CPU): one checkpoint shard per rank, the whole model counted."""
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    common = ["--data-prefix", tiny_build, "--device", "cpu", "--position-embedding", "learned_absolute",
              "--max-steps", "2", "--split", "5,1,0", "--num-layers", "2", "--hidden-size", "32",
              "--num-attention-heads", "2", "--micro-batch-size", "2", "--seq-length", "64", "--eval-batches", "1",
              "--num-workers", "0", "--log-interval", "1"]
    env = dict(os.environ, PYTHONPATH=str(repo), OMP_NUM_THREADS="1")
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         str(repo / "scripts" / "train_gpt.py"), *common, "--output-dir", str(tmp_path / "tp2"), "--tensor-parallel", "2"],
        capture_output=True, text=True, timeout=600, env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "tp2" / "summary.json").read_text())
    assert summary["tensor_parallel"] == 2 and summary["data_parallel"] == 1 and summary["steps"] == 2
    shards = sorted(p.name for p in (tmp_path / "tp2" / "checkpoints" / "step_0000002").iterdir())
    assert shards == ["mp_rank_00.pt", "mp_rank_01.pt"]
    single = train(_config(tiny_build, tmp_path / "tp1", max_steps=2))
    assert summary["parameters"] == single.parameters  # shards summed, replicated weights once


def test_cli_help_lists_every_setting():
    from nemo_cosmos_tokenizer.cli import sample_video, train_gpt

    text = train_gpt.build_parser().format_help()
    assert "examples:" in text and "torchrun --nproc-per-node 8" in text
    assert "--exit-after" in text and "refused if it leaves a split empty" in text
    assert "examples:" in sample_video.build_parser().format_help()
