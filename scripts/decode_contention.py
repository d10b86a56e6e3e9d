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
"""

from __future__ import annotations

import time
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
