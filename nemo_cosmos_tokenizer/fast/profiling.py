"""Measuring helpers for the benchmark: FLOP counts on the meta device, CUDA-event timing, peak memory.

FLOPs are counted with :class:`torch.utils.flop_counter.FlopCounterMode` on the plain networks built on the meta
device (no memory, no weights): convolutions and matrix products at 2 FLOPs per multiply-add, attention included;
norms, activations and element-wise work are not counted (the usual MFU convention).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..config import TokenizerConfig

__all__ = ["H100_BF16_DENSE_TFLOPS", "Timing", "count_flops", "time_cuda", "latent_input_shape"]

#: Datasheet dense bf16 tensor-core rate of an H100 SXM (the usual MFU denominator).
H100_BF16_DENSE_TFLOPS = 989.4


def latent_input_shape(config: TokenizerConfig, input_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The decoder's input shape (FSQ codes or latent) for an input video / image of ``input_shape``."""
    shape = config.latent_shape(tuple(input_shape))
    channels = config.embedding_dim
    if config.is_discrete:  # latent_shape gives the index grid [B, (t), h, w]
        return (shape[0], channels, *shape[1:])
    return (shape[0], channels, *shape[2:])


def count_flops(config: TokenizerConfig, input_shape: tuple[int, ...], part: str = "encode") -> int:
    """FLOPs of one ``encode_pre_quant`` (``part="encode"``) or one decode (``"decode"``) of ``input_shape``."""
    from ..networks import build_tokenizer

    with torch.device("meta"):
        model = build_tokenizer(config)
        with FlopCounterMode(display=False) as counter:
            if part == "encode":
                model.encode_pre_quant(torch.empty(input_shape))
            elif part == "decode":
                model.decoder(model.post_quant_conv(torch.empty(latent_input_shape(config, input_shape))))
            else:
                raise ValueError(f"part must be 'encode' or 'decode', got {part!r}")
    return int(counter.get_total_flops())


@dataclass
class Timing:
    """Milliseconds per call: all repetitions, their median, and the first (cold: compile / autotune) call."""

    times_ms: list[float]
    first_call_s: float

    @property
    def median_ms(self) -> float:
        return statistics.median(self.times_ms)

    @property
    def spread(self) -> float:
        """(max - min) / median of the repetitions."""
        return (max(self.times_ms) - min(self.times_ms)) / self.median_ms


def time_cuda(fn: Callable[[], object], *, warmup: int = 2, reps: int = 5) -> Timing:
    """Time ``fn`` with CUDA events: one cold call (wall clock, synchronised), ``warmup`` more, then ``reps`` timed.

    Without CUDA (dry runs on a CPU) the host clock is used instead.
    """
    cuda = torch.cuda.is_available()
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    sync()
    start = time.perf_counter()
    fn()
    sync()
    first = time.perf_counter() - start
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(reps):
        if cuda:
            begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            begin.record()
            fn()
            end.record()
            end.synchronize()
            times.append(begin.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
    return Timing(times_ms=times, first_call_s=first)
