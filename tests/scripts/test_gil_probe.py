"""``scripts/gil_probe.py`` and ``decode_contention.reader_operations`` (``benchmark_corpus_e2e.py --gil``): the probe
tells a call that holds the GIL from one that releases it, on the CPU, and the reader's operations run with the
stand-in decoder (tests/nvdec_fake.py). Device time is scarce; a probe that misreads or breaks there wastes a lease."""

from __future__ import annotations

import sys
import time
import types
from fractions import Fraction
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))

import gil_probe


def test_stall_stats_and_verdicts_on_made_up_gaps():
    switch = 0.005
    calls = [(0.0, 0.05), (0.1, 0.15)]
    held = gil_probe.stall_stats(calls, [(0.001, 0.049), (0.101, 0.149)])  # one stall over each whole call
    assert held["stall_cover"] == pytest.approx(0.96) and held["stalled"] == pytest.approx(0.96)
    assert gil_probe.verdict(held, switch) == "holds the GIL"
    part = gil_probe.stall_stats(calls, [(0.01, 0.03), (0.11, 0.13)])  # 20 ms of each 50 ms call
    assert gil_probe.verdict(part, switch).startswith("holds it in part (~20 ms")
    slices = [(t / 1000, (t + 5) / 1000) for t in range(0, 150, 10)]  # 5 ms turns: Python-level sharing
    assert gil_probe.verdict(gil_probe.stall_stats(calls, slices), switch).startswith("shares it")
    short = [(0.02, 0.0215)]  # below STALL_MS: not a stall
    assert gil_probe.stall_stats(calls, short)["stalled"] == 0.0
    assert gil_probe.verdict(gil_probe.stall_stats(calls, []), switch) == "releases it"


def test_probe_tells_a_gil_holding_call_from_a_releasing_one():
    # sum(range(n)) is one C call that never lets go of the GIL; time.sleep releases it. Thresholds are generous:
    # this 2-core CI machine is shared with other jobs, so the OS deschedules the ticker now and then (stalls of a
    # few ms that are not the GIL) and call times vary; a held GIL shows as one stall over most of each ~40 ms call,
    # which preemption does not produce, so the verdicts and the cover (a call's longest stall over its length)
    # separate the two even then.
    start = time.perf_counter()
    sum(range(1_000_000))
    n = int(1_000_000 * 0.04 / max(1e-4, time.perf_counter() - start))  # ~40 ms here
    a, b = torch.zeros(16), torch.ones(16)
    c = torch.empty_like(a)
    started = time.perf_counter()
    rows, idle = gil_probe.probe([("holder", lambda: sum(range(n))), ("sleeper", lambda: time.sleep(0.04))],
                                 lambda: torch.add(a, b, out=c), seconds=0.2, switch_intervals=(None,))
    assert time.perf_counter() - started < 10
    holder, sleeper = rows
    assert "error" not in holder and "error" not in sleeper
    assert holder["verdict"] == "holds the GIL", holder
    assert not sleeper["verdict"].startswith("holds"), sleeper
    assert holder["ticker_stall_cover"] > sleeper["ticker_stall_cover"] + 0.3
    assert holder["ticker_longest_gap_ms"] > 15
    # The launch loop (torch.add releases and retakes the GIL on each call) mostly waits during the holder's calls
    # (compared with the sleeper's rate, measured alike, rather than with the idle rate: under load that drifts).
    assert idle[""] > 0 and holder["launches_per_s"] < 0.6 * sleeper["launches_per_s"]
    table = gil_probe.format_table(rows, idle)
    assert table.count("\n") == 4 and "holds the GIL" in table and "nothing (idle)" in table


def _write_mp4(path: Path, width: int, height: int, frames: int) -> str:
    import av
    import numpy as np

    rng = np.random.default_rng(width)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(24))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for _ in range(frames):
            image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return str(path)


def test_reader_operations_run_with_the_stand_in_decoder(tmp_path):
    pytest.importorskip("av")
    from decode_contention import reader_operations
    from nvdec_fake import FAKE_NVC, FakeSimpleDecoder

    class FakeThreadedDecoder(FakeSimpleDecoder):  # PyNvVideoCodec.ThreadedDecoder's calls that the probe makes
        def __init__(self, source, buffer_size, **kwargs):
            super().__init__(source, **kwargs)

        def reconfigure_decoder(self, source, start_frame=0):
            super().reconfigure_decoder(source)

    nvc = types.SimpleNamespace(SimpleDecoder=FakeSimpleDecoder, ThreadedDecoder=FakeThreadedDecoder,
                                OutputColorType=FAKE_NVC.OutputColorType)
    small = _write_mp4(tmp_path / "00000-1080p.mp4", 64, 48, 34)
    large = _write_mp4(tmp_path / "00001-4k.mp4", 128, 96, 34)
    ops = reader_operations(nvc, small, large, torch.device("cpu"), (16, 16), "exact", frames=32)
    names = [op[0] for op in ops]
    assert [name[:3] for name in names] == ["(a)", "(b)", "(b)", "(c)", "(c)", "(d)", "(e)", "(e)", "(e)", "(e)", "(f)",
                                            "(g)"]
    rows, idle = gil_probe.probe(ops, None, seconds=0.01, min_calls=1)
    assert idle == {} and [r["operation"] for r in rows] == names
    assert all("error" not in r and r["calls"] >= 1 and r["verdict"] for r in rows), rows
    assert len(gil_probe.format_table(rows).splitlines()) == 2 + len(ops)
    failing = gil_probe.measure("fails", lambda: 1 / 0)
    assert failing["error"].startswith("ZeroDivisionError") and "verdict" not in failing
    assert "failed: ZeroDivisionError" in gil_probe.format_table([failing])
    without_decoder = reader_operations(None, small, large, torch.device("cpu"), (16, 16))
    assert [op[0][:3] for op in without_decoder] == ["(e)", "(e)", "(e)", "(e)", "(f)"]
