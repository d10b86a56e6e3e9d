"""Does decoding wait for the encoder? Latencies of the reader's GPU steps with the GPU idle and with other work
queued, per stream priority: a diagnostic for ``benchmark_corpus_e2e.py --contention`` (issue 22).

A build overlaps reading with encoding only if a decode thread's steps do not wait for the encoder's queued work.
Two ways they could (BENCHMARKS.md run 11 found reading and encoding taking turns):

* **implicit synchronization**: an operation a library issues on the legacy default stream, or a ``cuMemFree``,
  waits for every kernel queued on that stream or on the whole device. Probed with ``torch.cuda._sleep`` (one thread
  block spinning for a set time, so no contention for the SMs): queued on the default stream, then on a stream of its
  own, while a decoder is made, decodes a file, is reconfigured for another size and codec;
* **SM contention**: the reader's small kernels (NVDEC's surface copies, the conversion) queue behind the encoder's
  large ones. Probed with back-to-back bf16 matmuls filling the GPU, on a side stream, at normal and high priority of
  the reader's stream.

Each row gives milliseconds per step; a step that waited for the background shows about the background's length.

**Host side** (``benchmark_corpus_e2e.py --gil``, :func:`run_gil`; run 13 found reading and encoding still taking
turns on the host): does each of the reader's library calls hold the GIL while it works in C/C++ (a new
``SimpleDecoder``, ``reconfigure_decoder``, ``get_batch_frames``, ``get_batch_frames_by_index``, the PyAV probe, the
conversion launch; and ``ThreadedDecoder``, a candidate fix)? Each runs in a worker thread beside a pure-Python ticker and beside a loop of tiny CUDA
launches on a side stream (the encoder's thread, in small), with reference calls of known behaviour first
(:mod:`gil_probe`).
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

BACKGROUND_SECONDS = 1.0


def _sleep_cycles_per_second() -> float:
    torch.cuda.synchronize()
    start = time.perf_counter()
    torch.cuda._sleep(50_000_000)
    torch.cuda.synchronize()
    return 50_000_000 / (time.perf_counter() - start)


def _queue_background(kind: str, cycles_per_s: float, side: torch.cuda.Stream) -> None:
    """Queue ~``BACKGROUND_SECONDS`` of GPU work without waiting for it."""
    if kind == "none":
        return
    if kind in ("sleep-default", "sleep-side"):
        stream = torch.cuda.default_stream() if kind == "sleep-default" else side
        with torch.cuda.stream(stream):
            torch.cuda._sleep(int(cycles_per_s * BACKGROUND_SECONDS))
        return
    if kind == "matmul-side":
        with torch.cuda.stream(side):
            a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
            for _ in range(int(BACKGROUND_SECONDS * 600)):  # ~1.1 TFLOP each, ~600 per second on an H100
                torch.mm(a, a)
        return
    raise ValueError(kind)


def probe(paths: Sequence[str], convert: Callable[[torch.Tensor, str], torch.Tensor], device_index: int = 0,
          backgrounds: Sequence[str] = ("none", "sleep-default", "sleep-side", "matmul-side"),
          priorities: Sequence[int] = (0, -1)) -> list[dict[str, Any]]:
    """Milliseconds of each reader step (``create``: a new decoder; ``decode``: the first file's frames as NV12 on
    the reader's stream, waited for; ``reconfigure``: the same decoder for ``paths[1]``, its frames decoded;
    ``convert``: :func:`convert` of the first file's surfaces, waited for) for each background and priority."""
    from nemo_cosmos_tokenizer.media.nvdec import require_nvdec

    nvc = require_nvdec()
    cycles_per_s = _sleep_cycles_per_second()
    side = torch.cuda.Stream()
    rows = []
    for background in backgrounds:
        for priority in priorities:
            stream = torch.cuda.Stream(priority=priority)
            torch.cuda.synchronize()
            _queue_background(background, cycles_per_s, side)
            times: dict[str, float] = {}
            clock = time.perf_counter()

            def step(name: str) -> None:
                nonlocal clock
                now = time.perf_counter()
                times[name] = (now - clock) * 1e3
                clock = now

            decoder = nvc.SimpleDecoder(paths[0], gpu_id=device_index, use_device_memory=True,
                                        output_color_type=nvc.OutputColorType.NATIVE, cuda_stream=stream.cuda_stream)
            step("create")
            with torch.cuda.stream(stream):
                frames = torch.stack([torch.from_dlpack(s) for s in decoder.get_batch_frames(32)])  # [N, 3H/2, W]
            stream.synchronize()
            step("decode")
            with torch.cuda.stream(stream):
                clip = convert(frames, paths[0])
            stream.synchronize()
            step("convert")
            decoder.reconfigure_decoder(paths[1])
            with torch.cuda.stream(stream):
                again = torch.stack([torch.from_dlpack(s) for s in decoder.get_batch_frames(32)])
            stream.synchronize()
            step("reconfigure")
            del decoder, frames, again, clip
            torch.cuda.synchronize()
            step("background_left")
            rows.append({"background": background, "priority": priority, **{k: round(v, 1) for k, v in times.items()}})
            print(f"contention {background:14s} priority {priority:2d}: "
                  + "  ".join(f"{k} {v:7.1f} ms" for k, v in times.items()), flush=True)
    return rows


def reader_operations(nvc, path_1080p: str, path_4k: str, device: torch.device, resolution: Sequence[int] = (720, 1280),
                      resize: str = "exact", frames: int = 32) -> list[tuple]:
    """The reader's library calls as ``(name, op, settle)`` for :func:`gil_probe.probe`: with ``nvc`` (PyNvVideoCodec
    or a stand-in with its ``SimpleDecoder`` interface) the decoder's calls as :class:`~nemo_cosmos_tokenizer.media.
    nvdec.NvdecSession` makes them, then the PyAV probe and the NV12->RGB conversion + resize of
    :class:`~nemo_cosmos_tokenizer.data.nvdec.NvdecReader` (its two clips of a sample), and last, where ``nvc`` has
    one, PyNvVideoCodec's ``ThreadedDecoder`` (decoding in a C++ thread) in the session's step. ``settle`` (untimed)
    waits for the call's GPU work on its stream and drops what it made."""
    import av

    from nemo_cosmos_tokenizer.media.decode import pyav_open
    from nemo_cosmos_tokenizer.media.nvdec import nv12_to_clip, pyav_nv12, stream_info

    cuda = device.type == "cuda"
    stream = torch.cuda.Stream(device) if cuda else None
    made: list = []

    def settle() -> None:
        made.clear()
        if stream is not None:
            stream.synchronize()

    source = pyav_open(path_1080p, describe=True)
    n = min(frames, source.num_frames)
    ops: list[tuple] = []
    if nvc is not None:
        def make(path: str):
            return nvc.SimpleDecoder(path, gpu_id=device.index or 0, use_device_memory=True,
                                     output_color_type=nvc.OutputColorType.NATIVE,
                                     cuda_stream=stream.cuda_stream if stream is not None else 0)

        def sequential(decoder) -> Callable[[], None]:
            def op() -> None:
                decoder.seek_to_index(0)
                made.append(decoder.get_batch_frames(n))
            return op

        turn = [0]

        def session_step(decoder) -> None:
            """A sample as NvdecSession reads it: the decoder pointed at the next file (4K and 1080p from call to
            call), its first frames decoded and copied out on the session's stream."""
            turn[0] += 1
            decoder.reconfigure_decoder(path_4k if turn[0] % 2 else path_1080p)
            with torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext():
                made.append(torch.stack([torch.from_dlpack(s) for s in decoder.get_batch_frames(n)]))

        again, by_index, step = make(path_1080p), make(path_1080p), make(path_1080p)
        ops += [("(a) SimpleDecoder(1080p)", lambda: made.append(make(path_1080p)), settle),
                ("(b) reconfigure_decoder 1080p -> 4K -> 1080p",
                 lambda: (again.reconfigure_decoder(path_4k), again.reconfigure_decoder(path_1080p)), settle),
                (f"(b) reconfigure_decoder + get_batch_frames({n}) + stack, 4K and 1080p in turn",
                 lambda: session_step(step), settle),
                (f"(c) seek_to_index(0) + get_batch_frames({n}), 1080p", sequential(make(path_1080p)), settle),
                (f"(c) seek_to_index(0) + get_batch_frames({n}), 4K", sequential(make(path_4k)), settle),
                (f"(d) get_batch_frames_by_index({n} indices), 1080p",
                 lambda: made.append(by_index.get_batch_frames_by_index(list(range(n)))), settle)]

    def av_open(path: str) -> None:
        with av.open(path):
            pass

    ops += [("(e) pyav_open(describe, counting=index), 1080p",
             lambda: pyav_open(path_1080p, describe=True, counting="index")),
            ("(e) pyav_open(describe, counting=index), 4K",
             lambda: pyav_open(path_4k, describe=True, counting="index")),
            ("(e) av.open only, 1080p", lambda: av_open(path_1080p)),
            ("(e) av.open only, 4K", lambda: av_open(path_4k))]
    info = stream_info(source)
    nv12 = torch.from_numpy(pyav_nv12(source, list(range(n)))).to(device)  # [n, 3H/2, W], as NVDEC gives it
    if cuda:
        torch.cuda.synchronize(device)  # made on the caller's stream, read on the conversion's
    plans = [torch.arange(k * (n // 2), (k + 1) * (n // 2), device=device) for k in range(2)]
    height, width = resolution

    def convert() -> None:
        with torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext():
            for order in plans:
                made.append(nv12_to_clip(nv12.index_select(0, order), info, height, width, "crop", resize))

    ops.append((f"(f) nv12_to_clip x2 ({resize}), {n // 2} 1080p frames each -> {height}x{width}", convert, settle))
    if nvc is not None and hasattr(nvc, "ThreadedDecoder"):
        # It decodes in a C++ thread of its own (linear access only): the candidate fix, measured like the session's
        # step (b). Made by the probe's first, untimed call, so that a failure is only this row's; last, in case
        # it hangs.
        threaded: list = []

        def threaded_step() -> None:
            if not threaded:
                threaded.append(nvc.ThreadedDecoder(path_1080p, n, gpu_id=device.index or 0, use_device_memory=True,
                                                    output_color_type=nvc.OutputColorType.NATIVE,
                                                    cuda_stream=stream.cuda_stream if stream is not None else 0))
            session_step(threaded[0])

        ops.append((f"(g) ThreadedDecoder: reconfigure_decoder + get_batch_frames({n}) + stack, 4K and 1080p in turn",
                    threaded_step, settle))
    return ops


def run_gil(root: Path, rows: list[dict], args, device: torch.device) -> int:
    """``benchmark_corpus_e2e.py --gil``: :func:`reader_operations` on the first 1080p and 4K H.264 sources (picked as
    ``--contention`` picks them; PyNvVideoCodec's calls only with ``--backend nvdec``) and :mod:`gil_probe`'s
    reference calls, beside the ticker and beside tiny ``torch.add`` launches (on a side stream on CUDA), at the
    default and a 0.5 ms switch interval. Prints a Markdown table; JSON to ``--out`` (or
    ``$OUT/benchmark-corpus-gil.json``)."""
    import json
    import os
    import sys

    from gil_probe import format_table, probe, reference_operations

    paths = {Path(r["path"]).stem.split("-", 1)[1]: str(root / "videos" / r["path"]) for r in rows}
    if "1080p" not in paths or "4k" not in paths:
        raise SystemExit("--gil needs a 1080p and a 4K source (at least --num-1080p 1 --num-4k 1)")
    nvc = None
    if args.backend == "nvdec":
        from nemo_cosmos_tokenizer.media.nvdec import require_nvdec

        nvc = require_nvdec()
    else:
        print(f"# --gil with --backend {args.backend}: PyNvVideoCodec's calls are left out (a dry run)", flush=True)
    cuda = device.type == "cuda"
    side = torch.cuda.Stream(device) if cuda else None
    with torch.cuda.stream(side) if cuda else contextlib.nullcontext():
        a, b = torch.zeros(16, device=device), torch.ones(16, device=device)
        c = torch.empty_like(a)
        ops = reference_operations() + reader_operations(nvc, paths["1080p"], paths["4k"], device, args.resolution,
                                                         args.nvdec_resize)
        table_rows, idle = probe(ops, lambda: torch.add(a, b, out=c), seconds=0.3,
                                 sync=torch.cuda.synchronize if cuda else None)
    table = format_table(table_rows, idle)
    print(f"# GIL probe (switch interval {sys.getswitchinterval() * 1e3:g} ms; launches: torch.add of 16 floats on "
          f"{'a side CUDA stream' if cuda else 'the CPU'}):\n{table}", flush=True)
    out = args.out or (os.path.join(os.environ["OUT"], "benchmark-corpus-gil.json") if os.environ.get("OUT") else None)
    if out:
        name = torch.cuda.get_device_name(device) if cuda else "cpu"
        Path(out).write_text(json.dumps({"args": vars(args), "device": name, "idle_launches_per_s": idle,
                                         "gil": table_rows, "table": table}, indent=1, default=str))
        print(f"# wrote {out}")
    return 0
