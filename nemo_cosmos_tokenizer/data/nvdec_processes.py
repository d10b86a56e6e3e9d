"""The ``nvdec`` backend's samples read in processes of their own: :class:`NvdecProcessReader`.

Why it was built: in one process the reader's threads (PyAV probes, PyNvVideoCodec calls, the conversion's launches)
and the encoder's thread share one interpreter lock, and BENCHMARKS.md run 13 found reading and encoding taking
turns (reader alone 1,075 frames/s, encoder alone 1,767, builds 649-687 = 1 / (1/1,075 + 1/1,767)). What it gave
(run 14, H100): slower builds than threads (33-41 % of encoder-only against 47-62 %, the same bytes). Without MPS
the GPU time-slices between the processes' CUDA contexts, so the readers' small kernels cost the encoder whole time
slices; the GIL was not what held the build (run 14's GIL probe: the decode calls release it). It stays as an
option (``BuildConfig.nvdec_processes``, default 0) for what threads cannot do: a process that NVDEC aborts (error
208 ended a whole build in run 11) is restarted, and the build goes on.

How (``processes`` = P):

* Sample ``k`` of the sequence goes to process ``k % P``; each runs an :class:`~.nvdec.NvdecReader` (its threads,
  decoder sessions and CUDA stream, the same code, so the same clips) over the samples it is sent, and sends back
  :class:`~.video.SampleClips` in its order. The consumer takes them in sample order, so the output does not depend
  on P.
* Clips stay on the GPU: torch sends CUDA tensors by IPC handle, with an IPC event that the receiving stream waits
  for (the sender's current stream, where the reader made its stream wait for the clips). The consumer copies each
  clip into memory of its own on a receiving stream and waits for that copy before it lets the sender's memory go
  (the pattern of torch's note on sharing CUDA tensors): the builder may then keep a clip as long as it likes, and
  a sender that dies cannot take memory still in use with it.
* At most ``ahead`` samples per process are sent and not yet handed over (:attr:`NvdecProcessReader.ahead`, at least
  the process reader's own read-ahead, else its pass could wait for a sample that is never sent): this bounds the
  GPU memory that clips hold.
* A process that dies (PyNvVideoCodec's C++ abort on NVDEC error 208 killed a whole build in BENCHMARKS.md run 11)
  is started again and sent its unanswered samples again; a sample that was unanswered in two deaths is decoded by
  PyAV there (:attr:`.nvdec.NvdecReader.avoid_nvdec`: the same planes, the same tokens). After ``max_restarts``
  restarts the read fails with the processes' exit codes.

Off CUDA (tests with a stand-in decoder, ``decoder_module``) the clips come back through shared host memory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import logging
import math
import os
import queue as queue_module
import signal
import traceback
from collections import deque
from typing import Any, Iterable, Iterator

import torch

from ..media.clips import ClipSpec
from .manifest import Sample
from .video import SampleClips

log = logging.getLogger(__name__)

__all__ = ["NvdecProcessReader"]

#: Seconds between checks that a process that owes the consumer a sample is still alive.
POLL_SECONDS = 1.0
#: A sample unanswered in this many deaths of its process is decoded there by PyAV instead of NVDEC.
DEATHS_BEFORE_PYAV = 2
_EXIT = "exit"


@dataclasses.dataclass(frozen=True)
class _ProcessOptions:
    """What each reader process needs to make its :class:`~.nvdec.NvdecReader` (picklable)."""

    spec: ClipSpec
    device: str
    threads: int
    max_decodes: int
    probe_threads: int
    resize: str
    frame_access: str
    storage: Any
    decoder_module: str | None
    """``"module:attribute"`` of a stand-in for PyNvVideoCodec (tests), or ``None`` for PyNvVideoCodec."""
    log_level: int | None
    """This package's log level in the consumer (the processes log at it where nothing else configured logging)."""


def _load(name: str | None):
    if name is None:
        return None
    module, _, attribute = name.partition(":")
    return getattr(importlib.import_module(module), attribute)


def _serve(options: _ProcessOptions, avoid_nvdec: dict[str, str], tasks, results) -> None:
    """A reader process: passes over the samples sent on ``tasks`` (``None`` ends a pass, :data:`_EXIT` the process),
    sending ``("item", SampleClips)`` for each, in order, and ``("done", stats)`` after each pass; ``("error", text)``
    if the reader itself fails."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the consumer decides and stops us
    if options.log_level is not None and not logging.getLogger().handlers:
        logging.basicConfig(level=options.log_level, format="%(processName)s %(name)s: %(message)s")
    from .nvdec import NvdecReader

    try:
        device = torch.device(options.device)
        if device.type == "cuda":
            torch.cuda.set_device(device)
        reader = NvdecReader(options.spec, device, options.threads, decoder_module=_load(options.decoder_module),
                             storage=options.storage, max_decodes=options.max_decodes, resize=options.resize,
                             frame_access=options.frame_access, probe_threads=options.probe_threads)
        reader.avoid_nvdec.update(avoid_nvdec)
        while (first := tasks.get()) != _EXIT:

            def sent(sample: Sample | None = first) -> Iterator[Sample]:
                while sample is not None:
                    yield sample
                    sample = tasks.get()

            decoders = reader.decoder_counts
            for item in reader.iter_samples(sent()):
                # The reader made this process's current stream wait for the clips; torch records the IPC event that
                # the receiver waits for on that stream when the queue's feeder thread pickles them (its current
                # stream is the default one, as here). The CUDA event itself does not cross processes.
                results.put(("item", dataclasses.replace(item, ready=None)))
            results.put(("done", _pass_stats(reader, decoders)))
    except BaseException:  # noqa: BLE001 - the consumer raises it with the traceback
        results.put(("error", traceback.format_exc()))
        return
    # Told to exit, everything sent was taken. Leave without the interpreter's teardown: torch's bookkeeping of
    # tensors sent by CUDA IPC is destroyed after the CUDA driver is unloaded there, which aborted these processes
    # with "CUDA error: driver shutting down" on an H100 (harmless, but a crash in the log).
    if torch.cuda.is_available() and torch.device(options.device).type == "cuda":
        torch.cuda.synchronize()
    results.close()
    results.join_thread()
    os._exit(0)


def _pass_stats(reader, decoders_before: dict[str, int]) -> dict[str, Any]:
    """What ``reader`` did in the pass that just ended (its counters are reset for the next pass)."""
    stats = {"counts": dict(reader.counts), "seconds": dict(reader.seconds), "refused": dict(reader.refused),
             "decoders": {k: v - decoders_before.get(k, 0) for k, v in reader.decoder_counts.items()},
             "peak_ahead_bytes": reader.peak_ahead_bytes}
    reader.counts = dict.fromkeys(reader.counts, 0)
    reader.seconds = dict.fromkeys(reader.seconds, 0.0)
    reader.refused, reader.peak_ahead_bytes = {}, 0
    return stats


class _Process:
    """One reader process, its queues, and the samples it owes the consumer, in the order sent."""

    def __init__(self, context, number: int, options: _ProcessOptions, avoid_nvdec: dict[str, str]) -> None:
        self.number = number
        self.tasks = context.Queue()
        self.results = context.Queue()
        self.process = context.Process(target=_serve, args=(options, avoid_nvdec, self.tasks, self.results),
                                       name=f"nvdec-reader-{number}", daemon=True)
        self.process.start()
        self.owed: deque[Sample] = deque()
        self.ended = False
        """Whether the end of this pass's samples (``None``) was sent."""

    def send(self, sample: Sample | None) -> None:
        self.ended = sample is None
        if sample is not None:
            self.owed.append(sample)
        self.tasks.put(sample)

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.is_alive() and self.ended and not self.owed:  # between passes, waiting for the next task
            self.tasks.put(_EXIT)
            self.process.join(timeout)
        if self.process.is_alive():  # mid-pass (an error, an early stop) or stuck: what it would still send is not
            self.process.terminate()  # wanted, and a result bigger than the pipe would keep it from exiting
            self.process.join(timeout)
        for q in (self.tasks, self.results):
            q.cancel_join_thread()  # items no one will read must not keep this process from exiting
            q.close()


class NvdecProcessReader:
    """:class:`~.nvdec.NvdecReader`'s :meth:`iter_samples` with the reading done in ``processes`` processes.

    ``threads``, ``max_decodes`` and ``probe_threads`` are totals, divided among the processes (rounded up). The
    clips are uint8 CUDA tensors ``[T, H, W, 3]`` ready on the stream that was current when the reader was made, the
    same as the in-process reader's (the processes run its code).
    """

    def __init__(
        self, spec: ClipSpec, device: torch.device | str = "cuda", processes: int = 2, threads: int = 8, *,
        max_decodes: int | None = None, probe_threads: int | None = None, resize: str = "auto",
        frame_access: str = "runs", storage=None, decoder_module: str | None = None, max_restarts: int = 4,
    ) -> None:
        from .nvdec import MAX_CONCURRENT_DECODES, PROBE_THREADS

        if processes < 1:
            raise ValueError(f"processes must be >= 1, got {processes}")
        device = torch.device(device)
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        if device.type != "cuda" and decoder_module is None:
            raise ValueError(f"the nvdec backend decodes on the GPU the tokenizer runs on; got device {device}")
        self.device = device
        self.processes = processes
        share = lambda total: max(1, math.ceil(total / processes))  # noqa: E731
        threads = share(threads)
        self.options = _ProcessOptions(
            spec=spec, device=str(device), threads=threads,
            max_decodes=min(threads, share(max_decodes or MAX_CONCURRENT_DECODES)),
            probe_threads=share(PROBE_THREADS if probe_threads is None else probe_threads),
            resize=resize, frame_access=frame_access, storage=storage, decoder_module=decoder_module,
            log_level=logging.getLogger(__package__.split(".")[0]).getEffectiveLevel())
        self.ahead = 2 * self.options.threads + self.options.probe_threads + 1
        """Samples sent to one process and not yet handed over, at most: more than the process reader reads ahead
        (``2 x threads + probe_threads``), so that its pass never waits for a sample the consumer has not sent."""
        self.max_restarts = max_restarts
        self.restarts = 0
        self.deaths: dict[str, int] = {}
        """Sample id -> deaths of its process while it was unanswered."""
        self.cuda = device.type == "cuda"
        self.consumer_stream = torch.cuda.current_stream(device) if self.cuda else None
        self._receiving = torch.cuda.Stream(device) if self.cuda else None
        self._procs: list[_Process] | None = None
        self._kept = False
        self._context = None
        self.counts = {"nvdec": 0, "cpu": 0}
        """Samples decoded on the GPU / read on the CPU, summed over the processes and passes (added at the end of
        each pass; a process that dies takes its counts of the pass with it)."""
        self.seconds: dict[str, float] = {}
        self.refused: dict[str, str] = {}
        self.decoder_counts = {"decoders_created": 0, "decoders_reconfigured": 0}
        self.peak_ahead_bytes = 0
        """The largest of the processes' own peaks (:attr:`.nvdec.NvdecReader.peak_ahead_bytes`)."""

    # ------------------------------------------------------------------ processes and passes
    def start(self) -> "NvdecProcessReader":
        """Start the processes (spawned: a second or more each, to import torch and make a CUDA context) now rather
        than at the first pass; they then stay up for later passes until :meth:`close`."""
        self._spawn()
        self._kept = True
        return self

    def _spawn(self) -> list[_Process]:
        if self._procs is None:
            if self.cuda:
                # Memory this process's allocator keeps cached (a verify batch, an earlier pass) would leave the new
                # processes none for their CUDA contexts: on an H100 a build after another one in the same process
                # failed to start its readers with "CUDA error: out of memory" in set_device.
                torch.cuda.empty_cache()
            self._context = torch.multiprocessing.get_context("spawn")
            self._procs = [_Process(self._context, n, self.options, {}) for n in range(self.processes)]
        return self._procs

    def close(self) -> None:
        """Stop the processes."""
        procs, self._procs, self._kept = self._procs, None, False
        if self.cuda:
            self._receiving.synchronize()  # no copy out of their memory is still running
        for proc in procs or ():
            proc.stop()

    def __enter__(self) -> "NvdecProcessReader":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def iter_samples(self, samples: Iterable[Sample]) -> Iterator[SampleClips]:
        """Every sample's :class:`SampleClips`, in the order given (failures included, never raised). The processes
        stop at the end of the pass unless :meth:`start` started them; always after an error or an early stop."""
        procs = self._spawn()
        order: deque[int] = deque()  # the process of each sample sent and not yet handed over, in sample order
        source, exhausted, position, complete = iter(samples), False, 0, False
        try:
            while True:
                while not exhausted and len(procs[position % self.processes].owed) < self.ahead:
                    sample = next(source, None)
                    if sample is None:
                        exhausted = True
                        for proc in procs:
                            proc.send(None)
                        break
                    procs[position % self.processes].send(sample)
                    order.append(position % self.processes)
                    position += 1
                if not order:
                    break
                yield self._receive(procs, order.popleft())
            for number in range(self.processes):
                self._finish(procs, number)
            complete = True
        finally:
            if not (complete and self._kept):
                self.close()
        self._log()

    def _next(self, procs: list[_Process], number: int) -> tuple[str, Any]:
        """The next message of process ``number``, restarting the process when it died (its owed samples resent)."""
        while True:
            proc = procs[number]
            try:
                with self._on_receiving_stream():  # the IPC event's wait lands on the receiving stream
                    return proc.results.get(timeout=POLL_SECONDS)
            except queue_module.Empty:
                pass
            except Exception:  # noqa: BLE001 - a result sent before its sender died: its tensors died with it
                proc.process.join(5 * POLL_SECONDS)
                if proc.process.is_alive():
                    raise
            if not proc.process.is_alive():
                procs[number] = self._restart(proc)

    def _expect(self, procs: list[_Process], number: int, wanted: str, otherwise: str) -> Any:
        """The payload of process ``number``'s next message, which must be of kind ``wanted``."""
        kind, payload = self._next(procs, number)
        if kind == "error":
            raise RuntimeError(f"nvdec reader process {number} failed:\n{payload}")
        if kind != wanted:
            raise RuntimeError(f"nvdec reader process {number} {otherwise} ({kind})")
        return payload

    def _receive(self, procs: list[_Process], number: int) -> SampleClips:
        """The next sample of process ``number``, its clips in memory of this process."""
        payload = self._expect(procs, number, "item", "ended with samples still owed")
        expected = procs[number].owed.popleft()
        if payload.sample.index != expected.index:
            raise RuntimeError(f"nvdec reader process {number} gave sample {payload.sample.index} for {expected.index}")
        return self._own(payload)

    def _own(self, item: SampleClips) -> SampleClips:
        """``item`` with its clips copied out of the sender's memory (which is released on return)."""
        if not self.cuda:
            return item
        with self._on_receiving_stream():
            # clips read on the CPU (images, 10-bit, odd sizes: the probe sends them to PyAV) are host arrays, owned
            clips = [clip.clone() if isinstance(clip, torch.Tensor) and clip.is_cuda else clip for clip in item.clips]
            copied = torch.cuda.Event()
            copied.record(self._receiving)
        # Waiting here (for the sender's conversion and this copy only: the receiving stream holds nothing else) is
        # what lets the sender's memory go at once, and keeps a sender that dies later from taking clips in use.
        copied.synchronize()
        for clip in clips:
            if isinstance(clip, torch.Tensor) and clip.is_cuda:
                clip.record_stream(self.consumer_stream)  # allocated on the receiving stream, used on the consumer's
        return dataclasses.replace(item, clips=clips)

    def _on_receiving_stream(self):
        return torch.cuda.stream(self._receiving) if self.cuda else contextlib.nullcontext()

    def _restart(self, dead: _Process) -> _Process:
        """A new process in place of ``dead``, sent the samples ``dead`` owed (PyAV for those owed twice)."""
        self.restarts += 1
        code = dead.process.exitcode
        if self.restarts > self.max_restarts:
            raise RuntimeError(
                f"nvdec reader process {dead.number} died (exit code {code}) after {self.max_restarts} restarts of "
                "reader processes; complete chunks are kept, so running the build again resumes it. If NVDEC aborted "
                "(error 208 in the log), fewer --nvdec-decodes may help.")
        for sample in dead.owed:
            self.deaths[sample.id] = self.deaths.get(sample.id, 0) + 1
        avoid = {s.id: f"its nvdec reader process died {self.deaths[s.id]} times while it was being read"
                 for s in dead.owed if self.deaths[s.id] >= DEATHS_BEFORE_PYAV}
        log.warning("nvdec reader process %d died (exit code %s) owing %d samples; restarting it (%d of %d restarts)%s",
                    dead.number, code, len(dead.owed), self.restarts, self.max_restarts,
                    f"; {len(avoid)} of them go to PyAV" if avoid else "")
        dead.stop(timeout=1.0)
        fresh = _Process(self._context, dead.number, self.options, avoid)
        for sample in dead.owed:
            fresh.send(sample)
        if dead.ended:
            fresh.send(None)
        return fresh

    def _finish(self, procs: list[_Process], number: int) -> None:
        """After the last sample: what process ``number`` did in the pass, added to the totals."""
        payload = self._expect(procs, number, "done", "gave a sample beyond the ones it was sent")
        for total, part in ((self.counts, payload["counts"]), (self.seconds, payload["seconds"]),
                            (self.decoder_counts, payload["decoders"])):
            for key, value in part.items():
                total[key] = total.get(key, 0) + value
        self.refused.update(payload["refused"])
        self.peak_ahead_bytes = max(self.peak_ahead_bytes, payload["peak_ahead_bytes"])

    def _log(self) -> None:
        log.info(
            "nvdec (%d processes): %d samples decoded on the GPU, %d read on the CPU (%d refused by NVDEC%s); "
            "decoders: %d created, %d reconfigured for the next file; %d processes restarted; clips decoded ahead "
            "of the encoder: at most %.0f MiB in one process",
            self.processes, self.counts["nvdec"], self.counts["cpu"], len(self.refused),
            f", e.g. {next(iter(self.refused))}" if self.refused else "", self.decoder_counts["decoders_created"],
            self.decoder_counts["decoders_reconfigured"], self.restarts, self.peak_ahead_bytes / 2**20)
        log.info("nvdec processes' threads' time: %s",
                 ", ".join(f"{step} {seconds:.2f} s" for step, seconds in self.seconds.items()))
