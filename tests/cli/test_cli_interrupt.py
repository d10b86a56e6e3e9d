"""Ctrl-C during a build: exit status 130, one line saying what was kept, and the same command resumes to the bytes
of an uninterrupted build. A subprocess (signals and exit statuses are the point), slowed down by a test hook."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from nemo_cosmos_tokenizer.cli import build_dataset

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def _demo_build(prefix: Path, **test_env: str) -> tuple[list[str], dict[str, str]]:
    """The demo build's arguments (chunks of 2 samples) and the environment of ``slow_build.py`` with
    ``test_env`` (its NCT_TEST_* hooks)."""
    args = ["--demo", "--output-prefix", str(prefix), "--resolution", "32", "--num-frames", "9", "--chunk-size", "2",
            "--no-progress", "--log-level", "WARNING"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", **test_env}
    env.pop("NCT_DEBUG", None)
    return args, env


def test_ctrl_c_keeps_chunks_and_the_same_command_resumes(tmp_path):
    prefix = tmp_path / "demo" / "tokens"
    args, env = _demo_build(prefix, NCT_TEST_DOCUMENT_SECONDS="1.5")
    proc = subprocess.Popen([sys.executable, str(HERE / "slow_build.py"), *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    first_chunk = Path(f"{prefix}.chunks") / "chunk-000000.json"  # a chunk's record is written last
    deadline = time.monotonic() + 240
    while not first_chunk.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert first_chunk.exists(), proc.communicate(timeout=60)
    proc.send_signal(signal.SIGINT)  # what Ctrl-C sends; the second chunk is being written
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err[-3000:]
    lines = [x for x in err.splitlines() if x.startswith("interrupted")]
    assert len(lines) == 1, err[-3000:]
    line = lines[0]
    assert "complete chunk(s) are kept" in line and "run the same command again to resume" in line, line
    kept = sorted(p.name for p in Path(f"{prefix}.chunks").glob("chunk-*.json"))
    assert 1 <= len(kept) < 3 and f"{len(kept)} complete chunk(s)" in line, (kept, line)
    assert not Path(f"{prefix}.bin").exists()  # no merged output from an interrupted build

    # The same command (in-process here, to save a start-up) resumes: finished chunks are not redone ...
    assert build_dataset.main(args) == 0
    leftovers = sorted(p.name for p in Path(f"{prefix}.chunks").glob("*.tmp-*"))
    assert not leftovers, leftovers
    # ... and the result is byte-identical to an uninterrupted build of the same inputs.
    inputs = Path(f"{prefix}.demo-inputs")
    fresh = tmp_path / "fresh" / "tokens"
    assert build_dataset.main(["--input", str(inputs / "captions.jsonl"), "--text-tokenizer",
                               str(inputs / "text_tokenizer.model"),
                               "--output-prefix", str(fresh), *args[3:]]) == 0
    for suffix in (".bin", ".idx"):
        resumed, whole = Path(f"{prefix}{suffix}").read_bytes(), Path(f"{fresh}{suffix}").read_bytes()
        assert resumed == whole, (suffix, len(resumed), len(whole), _first_difference(resumed, whole))


def test_ctrl_c_swallowed_inside_a_del_still_stops_the_build(tmp_path):
    """SIGINT during a ``__del__`` (where Python would print "Exception ignored" and go on) still stops the build,
    with the usual one line and no traceback."""
    prefix = tmp_path / "demo" / "tokens"
    args, env = _demo_build(prefix, NCT_TEST_SIGINT_IN_DEL_AT="1")
    proc = subprocess.run([sys.executable, str(HERE / "slow_build.py"), *args], env=env, capture_output=True,
                          text=True, timeout=240)
    assert proc.returncode == 130, proc.stderr[-3000:]  # honoured at the next document ...
    assert "Exception ignored" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-3000:]  # quietly
    assert [x for x in proc.stderr.splitlines() if x.startswith("interrupted")], proc.stderr[-3000:]
    assert not Path(f"{prefix}.bin").exists()


def _first_difference(a: bytes, b: bytes) -> int | None:
    """Offset of the first differing byte (a failure message: which document, not just 'different')."""
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None if len(a) == len(b) else min(len(a), len(b)))
