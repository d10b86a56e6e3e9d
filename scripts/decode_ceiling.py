"""The decode ceiling of a GPU: how many frames/s its NVDEC engines give with 1, 2, 4, 7, 8, 14 concurrent decoder
sessions, per source kind, with nothing but decoding (NV12 surfaces, no conversion, no resize).

Used by ``benchmark_corpus_e2e.py --ceiling``. Each session is a thread with its own PyNvVideoCodec ``SimpleDecoder``
(and CUDA stream) that takes the kind's files from a shared cycle and decodes each one sequentially from its first
frame (``get_batch_frames``: no seeking), until ``min_seconds`` have passed; frames/s and source Gpx/s are over the
wall time of all sessions. Beside it, ``nvidia-smi dmon -s u`` samples the decoder utilisation once a second (its
``dec`` column: the share of time any NVDEC engine was busy, averaged over the engines by the driver); the mean of
the samples that fall inside a measurement is reported.

NVIDIA's figure for Turing-class NVDEC (the H100's): ~771 1080p H.264 frames/s per engine, 7 engines on an H100,
used in parallel only by concurrent sessions (../shared/reference/PERFORMANCE.md) - so 1 session should give about
a seventh of 7 sessions' rate if the host keeps them fed.

``backend="pyav"``: the same plumbing with PyAV decoding on the CPU (a dry run for machines without NVDEC).
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Sequence

DEFAULT_SESSIONS = (1, 2, 4, 7, 8, 14)


class DmonSampler:
    """``nvidia-smi dmon -s u -d 1`` in a subprocess: (time, dec %) samples of GPU ``gpu``; nothing without nvidia-smi."""

    def __init__(self, gpu: int = 0) -> None:
        self.samples: list[tuple[float, float]] = []
        self.available = shutil.which("nvidia-smi") is not None
        self._process = None
        if not self.available:
            return
        self._process = subprocess.Popen(["nvidia-smi", "dmon", "-s", "u", "-d", "1", "-i", str(gpu)],
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        column = None
        for line in self._process.stdout:
            fields = line.split()
            if not fields:
                continue
            if fields[0] == "#":  # header: "# gpu sm mem enc dec ..." (and a units line)
                if "dec" in fields:
                    column = fields.index("dec") - 1  # data lines have no leading '#'
                continue
            if column is not None and column < len(fields):
                try:
                    self.samples.append((time.monotonic(), float(fields[column])))
                except ValueError:  # '-' when the driver does not report it
                    pass

    def mean_between(self, start: float, end: float) -> float | None:
        """Mean dec % of the samples taken in ``[start, end]`` (a sample covers the second before it)."""
        inside = [v for t, v in list(self.samples) if start < t <= end + 0.5]
        return sum(inside) / len(inside) if inside else None

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()


def _nvdec_session(nvc, device_index: int) -> Callable[[str], int]:
    """A function decoding one file sequentially on this session's decoder; returns the frames decoded."""
    import torch

    stream = torch.cuda.Stream(torch.device("cuda", device_index))
    state: dict[str, Any] = {"decoder": None}

    def decode(path: str) -> int:
        decoder = state["decoder"]
        if decoder is not None:
            try:
                decoder.reconfigure_decoder(path)
            except Exception:  # noqa: BLE001 - another codec or a larger size: a new decoder
                decoder = None
        if decoder is None:
            decoder = nvc.SimpleDecoder(path, gpu_id=device_index, use_device_memory=True,
                                        output_color_type=nvc.OutputColorType.NATIVE, cuda_stream=stream.cuda_stream)
            state["decoder"] = decoder
        frames = 0
        while True:
            batch = decoder.get_batch_frames(16)
            if not batch:
                break
            frames += len(batch)
        stream.synchronize()  # the last surfaces are written
        return frames

    return decode


def _pyav_session() -> Callable[[str], int]:
    def decode(path: str) -> int:
        import av

        with av.open(path) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            return sum(1 for _ in container.decode(stream))  # frames stay in their own YUV format

    return decode


def measure(paths: Sequence[str], sessions: int, session_factory: Callable[[], Callable[[str], int]],
            min_seconds: float, pixels: Callable[[str], int], dmon: DmonSampler | None) -> dict[str, Any]:
    """``sessions`` threads decode files of ``paths`` (cycled) until ``min_seconds`` passed; rates and dec %."""
    files = itertools.cycle(paths)
    lock = threading.Lock()
    deadline: list[float] = [0.0]

    def worker(_: int) -> tuple[int, int, int]:
        decode = session_factory()
        frames = px = count = 0
        while True:  # at least one file per session, then until the deadline
            with lock:
                path = next(files)
            n = decode(path)
            frames, px, count = frames + n, px + n * pixels(path), count + 1
            if time.monotonic() >= deadline[0]:
                return frames, px, count

    started = time.monotonic()
    deadline[0] = started + min_seconds
    with ThreadPoolExecutor(sessions, thread_name_prefix="ceiling") as pool:
        done = list(pool.map(worker, range(sessions)))
    seconds = time.monotonic() - started
    frames, px, files_done = (sum(d[i] for d in done) for i in range(3))
    return {"sessions": sessions, "files": files_done, "frames": frames, "seconds": seconds,
            "frames_per_s": frames / seconds, "gpx_per_s": px / seconds / 1e9,
            "dec_percent": dmon.mean_between(started, started + seconds) if dmon is not None else None}


_PART: dict[str, Any] = {}


def _start_part(backend: str, device_index: int, pixel_table: dict[str, int]) -> None:
    """Initializer of a ``--ceiling-processes`` process: its session factory, made once (library, CUDA context)."""
    if backend == "nvdec":
        from nemo_cosmos_tokenizer.media.nvdec import require_nvdec

        nvc = require_nvdec()
        _PART["factory"] = lambda: _nvdec_session(nvc, device_index)  # noqa: E731
    else:
        _PART["factory"] = _pyav_session
    _PART["pixels"] = pixel_table.__getitem__
    measure(list(pixel_table)[:1], 1, _PART["factory"], 0.0, _PART["pixels"], None)  # warm-up


def _measure_part(job: tuple[list[str], int, float]) -> dict[str, Any]:
    paths, sessions, min_seconds = job
    return measure(paths, sessions, _PART["factory"], min_seconds, _PART["pixels"], None)


def _measure_in_processes(pool, processes: int, paths: Sequence[str], sessions: int, min_seconds: float,
                          dmon: DmonSampler | None) -> dict[str, Any]:
    """:func:`measure` with the sessions spread over ``processes`` warm processes (each its own interpreter), each
    starting on another file; frames/s over the longest process's time."""
    per = [sessions // processes + (k < sessions % processes) for k in range(processes)]
    jobs = [(list(paths[k % len(paths):]) + list(paths[:k % len(paths)]), n, min_seconds) for k, n in enumerate(per) if n]
    started = time.monotonic()
    parts = pool.map(_measure_part, jobs, chunksize=1)
    seconds = max(p["seconds"] for p in parts)
    frames, px = sum(p["frames"] for p in parts), sum(p["gpx_per_s"] * p["seconds"] * 1e9 for p in parts)
    return {"sessions": sessions, "processes": len(jobs), "files": sum(p["files"] for p in parts), "frames": frames,
            "seconds": seconds, "frames_per_s": frames / seconds, "gpx_per_s": px / seconds / 1e9,
            "dec_percent": dmon.mean_between(started, started + seconds) if dmon is not None else None}


def measure_ceiling(paths_by_kind: dict[str, list[str]], pixels: Callable[[str], int], *, backend: str = "nvdec",
                    sessions: Sequence[int] = DEFAULT_SESSIONS, min_seconds: float = 3.0, device_index: int = 0,
                    processes: int = 0) -> list[dict[str, Any]]:
    """Rows ``{kind, sessions, frames_per_s, gpx_per_s, dec_percent, ...}`` for every kind and session count,
    printed as a table while they are measured. ``processes`` > 0: the sessions of each measurement are spread over
    that many processes (threads of this process otherwise), which tells a ceiling of the decode engines from one of
    a single interpreter."""
    if processes:
        return _ceiling_in_processes(paths_by_kind, pixels, backend, sessions, min_seconds, device_index, processes)
    if backend == "nvdec":
        from nemo_cosmos_tokenizer.media.nvdec import require_nvdec

        nvc = require_nvdec()
        factory = lambda: _nvdec_session(nvc, device_index)  # noqa: E731
        dmon = DmonSampler(device_index)
    elif backend == "pyav":
        factory, dmon = _pyav_session, None
    else:
        raise ValueError(f"--ceiling decodes with nvdec or pyav, got {backend!r}")
    rows = []
    print(f"{'kind':9s} {'sessions':>8s} {'frames/s':>10s} {'Gpx/s':>7s} {'dec %':>6s}", flush=True)
    try:
        for kind, paths in paths_by_kind.items():
            if not paths:
                continue
            measure(paths[:1], 1, factory, 0.0, pixels, None)  # warm-up: CUDA context, decoder libraries
            for n in sessions:
                row = {"kind": kind, **measure(paths, n, factory, min_seconds, pixels, dmon)}
                rows.append(row)
                dec = "-" if row["dec_percent"] is None else f"{row['dec_percent']:.0f}"
                print(f"{kind:9s} {n:8d} {row['frames_per_s']:10.1f} {row['gpx_per_s']:7.2f} {dec:>6s}", flush=True)
    finally:
        if dmon is not None:
            dmon.stop()
    return rows


def _ceiling_in_processes(paths_by_kind: dict[str, list[str]], pixels: Callable[[str], int], backend: str,
                          sessions: Sequence[int], min_seconds: float, device_index: int,
                          processes: int) -> list[dict[str, Any]]:
    from multiprocessing import get_context

    if backend not in ("nvdec", "pyav"):
        raise ValueError(f"--ceiling decodes with nvdec or pyav, got {backend!r}")
    table = {p: pixels(p) for paths in paths_by_kind.values() for p in paths}
    dmon = DmonSampler(device_index) if backend == "nvdec" else None
    rows = []
    print(f"{'kind':9s} {'sessions':>8s} {'procs':>5s} {'frames/s':>10s} {'Gpx/s':>7s} {'dec %':>6s}", flush=True)
    try:
        with get_context("spawn").Pool(processes, initializer=_start_part, initargs=(backend, device_index, table)) as pool:
            for kind, paths in paths_by_kind.items():
                for n in (n for n in sessions if paths):
                    row = {"kind": kind, **_measure_in_processes(pool, min(processes, n), paths, n, min_seconds, dmon)}
                    rows.append(row)
                    dec = "-" if row["dec_percent"] is None else f"{row['dec_percent']:.0f}"
                    print(f"{kind:9s} {n:8d} {row['processes']:5d} {row['frames_per_s']:10.1f} {row['gpx_per_s']:7.2f} "
                          f"{dec:>6s}", flush=True)
    finally:
        if dmon is not None:
            dmon.stop()
    return rows
