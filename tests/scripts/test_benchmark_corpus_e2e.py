"""``scripts/benchmark_corpus_e2e.py`` runs end to end in its CPU dry-run form (PyAV instead of NVDEC, a tiny model):
every input kind (files, tar, a moto S3 server), ``--stages`` and ``--diagnose``. Device time is scarce; a script
that breaks there wastes a GPU lease, so its plumbing is checked here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytest.importorskip("av")
pytest.importorskip("megatron.core")
pytest.importorskip("moto")
pytest.importorskip("s3fs")


def test_dry_run_gives_equal_shards_from_every_input_and_reports_stages(tmp_path):
    out = tmp_path / "result.json"
    cmd = [sys.executable, str(REPO / "scripts" / "benchmark_corpus_e2e.py"), "--dir", str(tmp_path / "corpus"),
           "--device", "cpu", "--dtype", "float32", "--channels", "8", "--backend", "pyav", "--num-1080p", "2",
           "--num-4k", "1", "--num-hevc", "1", "--num-portrait", "1", "--frames", "9", "--num-frames", "9",
           "--clips-per-video", "1", "--inputs", "files,tar,s3", "--stages", "--diagnose", "--resolution", "64", "64",
           "--batch", "2", "--no-compile", "--scale", "0.125", "--workers", "0", "--per-shard", "2",
           "--make-procs", "1", "--out", str(out)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    digests = result["bin_sha256"]
    assert set(digests) == {"files", "tar", "s3"} and len(set(digests.values())) == 1, digests
    assert [(r["input"], r["clips"], r["failed"]) for r in result["runs"]] == [
        ("files", 5, 0), ("tar", 5, 0), ("s3", 5, 0)]
    stages = {row["kind"]: row for row in result["stages"]}
    assert set(stages) == {"1080p", "4k", "hevc", "portrait", "all"}
    assert stages["all"]["frames"] == 5 * 9 == sum(stages[k]["frames"] for k in ("1080p", "4k", "hevc", "portrait"))
    assert all(row["read_fps"] > 0 and row["read_gpx_s"] > 0 for row in stages.values())
    # Decoding is exact and CPU kernels repeat their own results in one process, so reading twice and encoding the
    # same batch twice must agree. (A clip moved to another batch position may meet other rounding in principle, so
    # that count is only checked for its form.)
    diagnose = result["diagnose"]
    assert diagnose["reader_samples"] == 5 and diagnose["reader_differing_clips"] == []
    assert diagnose["encoder_rerun_differing_positions"] == []
    assert isinstance(diagnose["encoder_moved_differing_tokens_by_clip"], dict)


def test_ceiling_dry_run_measures_every_kind_and_session_count(tmp_path):
    out = tmp_path / "ceiling.json"
    cmd = [sys.executable, str(REPO / "scripts" / "benchmark_corpus_e2e.py"), "--dir", str(tmp_path / "corpus"),
           "--device", "cpu", "--backend", "pyav", "--num-1080p", "2", "--num-4k", "1", "--num-hevc", "1",
           "--num-portrait", "1", "--frames", "5", "--scale", "0.0625", "--per-shard", "2", "--make-procs", "1",
           "--ceiling", "--ceiling-sessions", "1,2", "--ceiling-seconds", "0.1", "--out", str(out)]
    proc = subprocess.run(cmd, env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(out.read_text())["ceiling"]
    assert [(r["kind"], r["sessions"]) for r in rows] == [
        (k, n) for k in ("1080p", "4k", "hevc", "portrait") for n in (1, 2)]
    for r in rows:
        # every session decodes at least one whole file of 5 frames; the pixel rate follows from the kind's size
        assert r["files"] >= r["sessions"] and r["frames"] == 5 * r["files"], r
        assert r["frames_per_s"] > 0 and r["dec_percent"] is None  # no nvidia-smi on the CPU
    by = {(r["kind"], r["sessions"]): r for r in rows}
    px_1080p = by[("1080p", 1)]["gpx_per_s"] / by[("1080p", 1)]["frames_per_s"]
    assert px_1080p * 1e9 == pytest.approx(66 * 120)  # 1080x1920 x 0.0625, even: 66 x 120
    assert "1080p" in proc.stdout and "frames/s" in proc.stdout


def test_ceiling_refuses_bad_session_counts(tmp_path):
    cmd = [sys.executable, str(REPO / "scripts" / "benchmark_corpus_e2e.py"), "--dir", str(tmp_path / "corpus"),
           "--device", "cpu", "--backend", "pyav", "--num-1080p", "1", "--num-4k", "0", "--num-hevc", "0",
           "--num-portrait", "0", "--frames", "3", "--scale", "0.0625", "--make-procs", "1", "--ceiling",
           "--ceiling-sessions", "0,x"]
    proc = subprocess.run(cmd, env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "error: --ceiling-sessions takes a comma list" in proc.stderr, proc.stderr[-2000:]
    assert not (tmp_path / "corpus").exists()  # refused before any work


def test_switch_intervals_build_once_each_with_the_same_bytes(tmp_path):
    base = [sys.executable, str(REPO / "scripts" / "benchmark_corpus_e2e.py"), "--dir", str(tmp_path / "corpus"),
            "--device", "cpu", "--dtype", "float32", "--channels", "8", "--backend", "pyav", "--num-1080p", "1",
            "--num-4k", "0", "--num-hevc", "0", "--num-portrait", "1", "--frames", "9", "--num-frames", "9",
            "--clips-per-video", "1", "--inputs", "files", "--resolution", "64", "64", "--batch", "2", "--no-compile",
            "--scale", "0.125", "--workers", "0", "--make-procs", "1"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    refused = subprocess.run(base + ["--switch-intervals", "5,0"], env=env, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "--switch-intervals takes positive milliseconds" in refused.stderr
    assert not (tmp_path / "corpus").exists()  # refused before any work

    out = tmp_path / "result.json"
    proc = subprocess.run(base + ["--switch-intervals", "5,0.5", "--out", str(out)], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert [r["variant"].split()[-1] for r in result["runs"]] == ["switch=5ms", "switch=0.5ms"]
    digests = result["bin_sha256"]
    assert len(digests) == 2 and len(set(digests.values())) == 1, digests  # how threads take turns changes no byte
