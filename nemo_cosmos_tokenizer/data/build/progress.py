"""Global progress of a (possibly distributed) build: every rank counts its work, a thread all-reduces the counts.

Rank 0 shows them as a progress bar (or a log line a minute without one): **global** clips/s, frames/s and
tokens/s, measured, not rank 0's rate times the world size. Samples count as they are read, clips/frames/tokens
when their chunk completes. The reduced counts also carry an ``aborted`` flag, so a rank that met an error that
every chunk would repeat (:data:`~.run.FATAL_CHUNK_ERRORS`) stops the others at their next chunk.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from ... import distributed as dist_utils

log = logging.getLogger(__name__)

__all__ = ["GlobalProgress", "LOG_INTERVAL_S", "REPORT_INTERVAL_S"]

REPORT_INTERVAL_S = 5.0
"""Seconds between two all-reduces of the progress counts."""

LOG_INTERVAL_S = 60.0
"""Seconds between two progress log lines on rank 0 when the bar is off."""

_FIELDS = ("samples", "clips", "frames", "tokens", "chunks", "done", "aborted")


class GlobalProgress:
    """Counts this rank's work; a thread all-reduces the counts periodically; rank 0 shows them.

    The builder calls :meth:`update` once per sample read (main thread); :meth:`add_chunk` adds a finished chunk's
    clips, frames and tokens. Every rank's reporter runs the same sequence of all-reduces on its own gloo group
    (so it never interleaves with collectives of the main thread) until the reduced ``done`` count equals the
    world size: :meth:`finish` therefore returns on every rank at the same reduction, after all ranks are done.
    """

    def __init__(self, env: dist_utils.DistEnv, total_samples: int, total_chunks: int, *, show: bool,
                 interval: float = REPORT_INTERVAL_S) -> None:
        self.env = env
        self.interval = interval
        self.total_chunks = total_chunks
        self.local = dict.fromkeys(_FIELDS, 0)
        self.totals = dict.fromkeys(_FIELDS, 0)
        self._group = None
        if dist_utils.is_initialized():
            import torch.distributed as dist

            self._group = dist.new_group(backend="gloo", timeout=dist_utils.collective_timeout())  # collective: all ranks
        self._bar = None
        if env.is_main and show and total_samples:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total_samples, unit="sample", desc="tokenizing", smoothing=0.1)
        self._show_logs = env.is_main and not show
        self._last_log = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="nct-progress", daemon=True)
        self.started = time.perf_counter()
        self.elapsed = 0.0
        self._thread.start()

    # called from the builder (main thread)
    def update(self, n: int = 1) -> None:
        self.local["samples"] += n

    def add_chunk(self, record: dict[str, Any]) -> None:
        self.local["clips"] += record["num_clips"]
        self.local["frames"] += record["num_frames"]
        self.local["tokens"] += record["num_tokens"]
        self.local["chunks"] += 1

    def abort(self) -> None:
        """Tell every rank (at the next reduction) to start no further chunk."""
        self.local["aborted"] = 1

    @property
    def aborted(self) -> bool:
        """Whether this rank, or any rank as of the last reduction, aborted."""
        return bool(self.local["aborted"] or self.totals["aborted"])

    def finish(self) -> dict[str, int]:
        """Mark this rank done and wait until every rank is; returns the global counts."""
        self.local["done"] = 1
        self._stop.set()
        self._thread.join()
        if self._bar is not None:
            self._bar.close()
        return dict(self.totals)

    def _reduce(self) -> dict[str, int]:
        snapshot = [float(self.local[k]) for k in _FIELDS]
        if self._group is None:
            return {k: int(v) for k, v in zip(_FIELDS, snapshot)}
        import torch
        import torch.distributed as dist

        tensor = torch.tensor(snapshot, dtype=torch.float64)
        dist.all_reduce(tensor, group=self._group)
        return {k: int(v) for k, v in zip(_FIELDS, tensor.tolist())}

    def _loop(self) -> None:
        while True:
            self._stop.wait(self.interval)
            try:
                self.totals = self._reduce()
            except Exception as err:  # a peer died: the main thread's next collective will say so
                log.warning("progress reporting stopped: %s", err)
                return
            self.elapsed = time.perf_counter() - self.started
            self._show(final=self.totals["done"] >= self.env.world_size)
            if self.totals["done"] >= self.env.world_size:
                return

    def rates(self) -> dict[str, float]:
        seconds = max(self.elapsed, 1e-9)
        return {k: self.totals[k] / seconds for k in ("samples", "clips", "frames", "tokens")}

    def _show(self, final: bool) -> None:
        rates = self.rates()
        text = (
            f"{rates['clips']:.2f} clips/s, {rates['frames']:.1f} frames/s, {rates['tokens']:.0f} tokens/s "
            f"(all {self.env.world_size} ranks), chunks {self.totals['chunks']}/{self.total_chunks}"
        )
        if self._bar is not None:
            self._bar.n = min(self.totals["samples"], self._bar.total)
            self._bar.set_postfix_str(text, refresh=False)
            self._bar.refresh()
        elif self._show_logs and (final or time.monotonic() - self._last_log >= LOG_INTERVAL_S):
            self._last_log = time.monotonic()
            log.info("progress: %d samples, %s", self.totals["samples"], text)


