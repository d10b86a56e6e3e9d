"""Ctrl-C in ``scripts/train_gpt.py``: exit status 130 and one line saying what was kept (no ``[rank0]``
traceback), and a ``--device`` this machine lacks in train_gpt / sample_video: one error line + hint, exit 2.
Subprocesses: signals and exit statuses are the point."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("megatron.core")

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny_prefix(tmp_path_factory):
    """The demo inputs built at 32x32, 9 frames with the built-in tokenizer (6 documents)."""
    from build_helpers import build_tiny_demo

    config, _ = build_tiny_demo(tmp_path_factory.mktemp("train_interrupt"))
    return config.output_prefix


def _env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    env.pop("NCT_DEBUG", None)
    return env


def _train_args(prefix: str, out: Path, *extra: str) -> list[str]:
    return [sys.executable, str(REPO / "scripts" / "train_gpt.py"), "--data-prefix", prefix, "--output-dir", str(out),
            "--device", "cpu", "--position-embedding", "learned_absolute", "--split", "5,1,0", "--seq-length", "64",
            "--num-layers", "1", "--hidden-size", "32", "--num-attention-heads", "2", "--micro-batch-size", "2",
            "--eval-batches", "0", "--num-workers", "0", "--log-interval", "1", *extra]


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="signals need the main thread")
def test_ctrl_c_in_training_is_one_line_and_exit_130(tiny_prefix, tmp_path):
    out = tmp_path / "run"
    # Far more steps than the test waits for; a checkpoint at step 2 so the line can name it.
    proc = subprocess.Popen(_train_args(tiny_prefix, out, "--max-steps", "100000", "--save-interval", "2"),
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = out / "train_log.jsonl"
    deadline = time.monotonic() + 240
    while proc.poll() is None and time.monotonic() < deadline:  # training runs: a checkpoint, then a few steps more
        if (out / "checkpoints" / "latest").is_file() and log.is_file() and len(log.read_text().splitlines()) >= 4:
            break
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate(timeout=60)
    proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
    stdout, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err and "KeyboardInterrupt" not in err and "[rank" not in err, err[-3000:]
    lines = [x for x in err.splitlines() if x.startswith("interrupted")]
    assert len(lines) == 1, err[-3000:]
    newest = (out / "checkpoints" / (out / "checkpoints" / "latest").read_text().strip())
    assert f"newest: {newest}" in lines[0] and "run the same command again to resume" in lines[0], lines[0]
    assert not stdout.strip()  # no summary: the run did not finish


def test_train_and_sample_refuse_a_device_this_machine_lacks(tiny_prefix, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: --device cuda works")
    runs = [_train_args(tiny_prefix, tmp_path / "run", "--max-steps", "1") + ["--device", "cuda"],
            [sys.executable, str(REPO / "scripts" / "sample_video.py"), str(tmp_path / "run"), "a caption",
             "--device", "cuda"]]
    # sample_video needs a checkpoint: train one step on the CPU first.
    subprocess.run(_train_args(tiny_prefix, tmp_path / "run", "--max-steps", "1"), env=_env(), check=True,
                   capture_output=True, timeout=300)
    for cmd in runs:
        proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300, check=False)
        assert proc.returncode == 2, proc.stderr[-3000:]
        lines = proc.stderr.strip().splitlines()
        assert lines[-2].startswith("error: device cuda was asked for") and "Traceback" not in proc.stderr, lines
        assert lines[-1] == "hint: use --device cpu, or install a CUDA build of torch on a machine with a GPU"
        assert not proc.stdout.strip()
