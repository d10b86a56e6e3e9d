"""The dataset builder's ``nvdec`` video backend: samples -> clips on the GPU, decoded by NVDEC in concurrent sessions.

Why: the fast encode path tokenizes 1,800+ frames/s of 720p video on one H100, while one CPU core decodes and
converts ~90 such H.264 frames/s; 16 cores cannot keep the GPU busy. NVDEC (the GPU's video decode engines, 7 on an
H100, used in parallel only by concurrent decoder sessions) does, and its frames stay on the GPU.

Per sample (PyNvVideoCodec and PyAV release the GIL):

1. **Probe**, in one of ``probe_threads`` threads, with PyAV (:func:`nemo_cosmos_tokenizer.media.decode.pyav_open`,
   ``counting="index"``): codec, size, colour matrix, rotation (from the MP4/MOV box headers where the file has no
   display matrix, :mod:`nemo_cosmos_tokenizer.media.mp4`), and the frame count from the MP4/MOV index without
   demuxing the file (other containers are demuxed to count, as the CPU reader does). The clip plans follow (the
   CPU reader's).
2. **Decode**, in one of ``threads`` threads (:class:`nemo_cosmos_tokenizer.media.nvdec.NvdecSession`, the thread's
   one decoder; at most ``max_decodes`` threads decode at once): only the frames the plans need, as runs of
   consecutive frames, NV12 surfaces copied out on the thread's CUDA stream (of high priority,
   :data:`STREAM_PRIORITY`). Media in memory (tar members, objects) go to the decoder through a ``/dev/shm`` file
   (:data:`MEMORY_INPUT`).
3. **Convert and resize** on the same stream (:func:`nemo_cosmos_tokenizer.media.nvdec.nv12_to_clip`): ``exact``
   is swscale's YUV->RGB arithmetic then torch's float32 antialiased resize, the frames of the ``pyav`` backend
   resized on the GPU; ``fused`` is one Triton kernel from NV12 to the target size, written to repeat that
   arithmetic (the same bytes, checked bit for bit on the GPU); ``auto`` (the default, ``BuildConfig.nvdec_resize``)
   takes ``fused`` where Triton is installed. ``fused`` launches one kernel where ``exact`` launches dozens and
   passes over the source-size frame several times in float32: a build ran at 61 % of encoder-only instead of 47 %
   (BENCHMARKS.md, run 14).
4. **Hand over without waiting**: a CUDA event marks the sample's clips ready; the consumer's stream waits for it
   on the GPU (no host synchronization per sample), and the clips are freed only after the consumer's work on them
   (``record_stream``). At most ``2 x threads + probe_threads`` samples are read ahead of the consumer, which bounds
   the GPU memory they hold (the peak is logged).

The decoder writes its surfaces on the thread's stream (PyNvVideoCodec maps and copies each frame on the stream it
was given), so the copy of one run's surfaces, queued before the next decode call, is done before they are
refilled; a thread also waits for its previous sample's event before it decodes the next one.

Failures: everything NVDEC cannot give exactly (:meth:`~nemo_cosmos_tokenizer.media.nvdec.StreamInfo.nvdec_problem`:
10-bit, 4:2:2/4:4:4, odd sizes, other codecs, H.264 in Matroska; images; broken files) is read by PyAV on the CPU in
the probe thread, with the CPU reader's failure reasons. A stream NVDEC should take but fails on
(:attr:`NvdecReader.refused`) is decoded by PyAV into the same NV12 planes and converted and resized on the GPU like
NVDEC's, so its tokens are the ones NVDEC would have given. The backend is part of a build's config hash, so two
never mix in one dataset; the resize kind is not (both kinds give the same bytes).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import torch

from ..media.clips import ClipSpec, frame_range, plan_clips
from ..media.decode import pyav_open
from ..media.failures import MediaError
from ..media.nvdec import (
    INSTALL_HINT,
    NVDEC_CODECS,
    RESIZE_KINDS,
    resolve_resize,
    NvdecSession,
    StreamInfo,
    nv12_to_clip,
    probe_stream,
    pyav_nv12,
    require_nvdec,
    stream_info,
)
from .manifest import Sample
from .sources.media import load_media
from .video import SampleClips, read_sample

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_THREADS", "INSTALL_HINT", "MAX_CONCURRENT_DECODES", "NVDEC_CODECS", "NvdecReader", "StreamInfo",
           "probe_stream", "require_nvdec", "stream_info"]

#: Decoder threads. 8 threads with 4 decodes ran every build of runs 9-11 on an H100, 8 threads with 7 decodes the
#: 13 builds of runs 13-14; 14 threads with 7 decodes ended a build in PyNvVideoCodec's C++ abort
#: (``cuvidMapVideoFrame`` error 208) in run 11, as a per-thread cache of 4 decoders had in run 10.
DEFAULT_THREADS = 8
#: CUDA priority of the decode threads' streams (lower is sooner; torch maps it into the device's range). Their work
#: (NVDEC's surface copies, the conversion and resize) is small next to the encoder's convolutions, and a decode
#: thread waits for it before it decodes its next sample, so it goes first. Run 12 measured no difference in build
#: rate between -1 and 0 (BENCHMARKS.md): what held the reader back was the CPU probe, not SM scheduling.
STREAM_PRIORITY = -1
#: How media held in memory reach the decoder (:data:`nemo_cosmos_tokenizer.media.nvdec.MEMORY_INPUTS`).
MEMORY_INPUT = "file"
#: Threads that open and plan samples with PyAV (CPU work: ``av.open`` decodes a few frames of an H.264 stream to
#: guess its reordering delay) ahead of the decoder threads, which then only decode and convert. In one thread per
#: sample with the decode, probing was 2/3 of the threads' time (BENCHMARKS.md, issue 22). Runs 13-14 built with 12
#: (and 16: 62 % of encoder-only against 60-61 % with 12, one build each).
PROBE_THREADS = 12
#: Whether a decoder thread waits (on the host) for its previous sample's conversion before it decodes the next one.
#: Belt and braces: the decoder refills its surfaces on the thread's stream, after the copies queued there (see the
#: module docstring), so the surfaces are safe without it. ``benchmark_corpus_e2e.py --wait-previous 1,0`` measures
#: what it costs and checks the bytes on a GPU; it stays on until that has run.
WAIT_FOR_PREVIOUS = True
#: NVDEC calls in flight at once: one per decode engine of an H100 or H200 (7), where NVDEC alone peaks
#: (``benchmark_corpus_e2e.py --ceiling``, BENCHMARKS.md runs 11 and 14); 7 instead of 4 raised a build 6 % in run 13,
#: with 8 decoder threads and no error 208 in runs 13-14 (run 11 met it with 14 threads, above).
MAX_CONCURRENT_DECODES = 7


class _Avoided(Exception):
    """A sample kept from NVDEC (:attr:`NvdecReader.avoid_nvdec`)."""


@dataclass
class _Probed:
    """A sample opened and planned for NVDEC (what :meth:`NvdecReader._decode_sample` needs)."""

    sample: Sample
    media: str | bytes
    source: Any
    plans: list
    info: StreamInfo


class NvdecReader:
    """Reads samples into clips on the GPU: uint8 CUDA tensors ``[T, H, W, 3]`` at the target resolution.

    ``read(sample)`` runs in any thread (one decoder session and CUDA stream per thread); :meth:`iter_samples` reads
    a sequence in ``threads`` threads and yields :class:`SampleClips` in order, ready for use on the CUDA stream
    that was current when the reader was made (the consumer's). ``resize``: ``auto``, ``exact`` or ``fused`` (see the module
    docstring).
    """

    def __init__(
        self, spec: ClipSpec, device: torch.device | str = "cuda", threads: int = DEFAULT_THREADS, *, decoder_module=None,
        storage=None, max_decodes: int | None = None, resize: str = "auto", frame_access: str = "runs",
        memory_input: str | None = None, stream_priority: int | None = None, probe_threads: int | None = None,
    ) -> None:
        device = torch.device(device)
        if device.type != "cuda" and decoder_module is None:
            raise ValueError(f"the nvdec backend decodes on the GPU the tokenizer runs on; got device {device}")
        # decoder_module: a stand-in for PyNvVideoCodec (tests on machines without NVDEC); then CPU is allowed.
        self.nvc = decoder_module if decoder_module is not None else require_nvdec()
        self.spec = spec
        self.storage = storage
        """How tar shards and remote objects are reached (:class:`.sources.storage.Storage`; default options)."""
        self.resize = resolve_resize(resize, device)
        """``exact`` or ``fused`` (``auto`` resolved for the device, :func:`~..media.nvdec.resolve_resize`)."""
        self.frame_access = frame_access
        """How sessions fetch frames (:data:`nemo_cosmos_tokenizer.media.nvdec.FRAME_ACCESS`; the same frames either
        way, ``runs`` decodes each frame once, in order)."""
        self.memory_input = MEMORY_INPUT if memory_input is None else memory_input
        """How tar members and objects reach the decoder (:data:`nemo_cosmos_tokenizer.media.nvdec.MEMORY_INPUTS`;
        default :data:`MEMORY_INPUT`)."""
        self.stream_priority = STREAM_PRIORITY if stream_priority is None else stream_priority
        self.cuda = device.type == "cuda"
        if self.cuda and device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        self.device = device
        self.threads = max(1, threads)
        self.probe_threads = max(1, PROBE_THREADS if probe_threads is None else probe_threads)
        """Threads opening and planning samples ahead of the decoders (:meth:`iter_samples`)."""
        self.max_decodes = min(self.threads, max_decodes or MAX_CONCURRENT_DECODES)
        """NVDEC decodes in flight at once (``max_decodes``, default :data:`MAX_CONCURRENT_DECODES`)."""
        self._decode_slots = threading.BoundedSemaphore(self.max_decodes)
        self.consumer_stream = torch.cuda.current_stream(self.device) if self.cuda else None
        self._local = threading.local()
        self._sessions: list[NvdecSession] = []
        self.counts = {"nvdec": 0, "cpu": 0}
        """Samples decoded on the GPU / read on the CPU."""
        self.seconds = {"probe": 0.0, "wait": 0.0, "decode": 0.0, "convert": 0.0, "cpu": 0.0}
        """Thread time summed over the reader's threads (probe and decode), by step: opening and planning (``probe``), waiting for the
        previous sample's conversion and for a decode slot (``wait``), NVDEC (``decode``), launching the conversion
        (``convert``), samples read on the CPU (``cpu``); logged by :meth:`iter_samples`."""
        self.refused: dict[str, str] = {}
        """Samples (by id) NVDEC failed on, with the error: decoded by PyAV instead (counted as read on the CPU)."""
        self.avoid_nvdec: dict[str, str] = {}
        """Samples (by id) not to give NVDEC, with the reason (:mod:`.nvdec_processes`: their reader process died
        while reading them): decoded by PyAV into the same planes, like the ones NVDEC refused."""
        self.peak_ahead_bytes = 0
        """Most bytes of clips decoded but not yet handed to the consumer at once (:meth:`iter_samples`)."""
        self.consumer_wait = 0.0
        """Seconds the consumer (the encoder's thread) waited for the next sample in :meth:`iter_samples`."""
        self._count_lock = threading.Lock()

    @property
    def decoder_counts(self) -> dict[str, int]:
        """Decoders made anew / pointed at the next file, over all sessions (dropped ones included)."""
        with self._count_lock:
            return {"decoders_created": sum(s.created for s in self._sessions),
                    "decoders_reconfigured": sum(s.reconfigured for s in self._sessions)}

    # ------------------------------------------------------------------ one sample
    def read(self, sample: Sample) -> SampleClips:
        """Clips of one sample, or a failure (never raises for bad media), ready for use on the consumer's stream
        (the CUDA stream that was current when the reader was made)."""
        item = self._read(sample)
        self._ready_for_consumer(item)
        return item

    def _ready_for_consumer(self, item: SampleClips) -> None:
        """The consumer's stream waits (on the GPU, not the host) until the thread's stream has made the clips: a
        caller that used them at once would otherwise read them half converted (seen on an H100: clips compared
        straight after the read differed from the same clips made again)."""
        if item.ready is not None and self.consumer_stream is not None:
            self.consumer_stream.wait_event(item.ready)

    def _read(self, sample: Sample) -> SampleClips:
        """:meth:`read` without the hand-over to the consumer's stream (decode threads; :meth:`_hand_over` waits)."""
        probed = self._probe(sample)
        return probed if isinstance(probed, SampleClips) else self._decode_sample(probed)

    def _probe(self, sample: Sample) -> SampleClips | _Probed:
        """Open and plan a sample (PyAV on the CPU, no decoder session): what NVDEC should decode, or the finished
        :class:`SampleClips` of a failure or of a sample read on the CPU."""
        clock = time.perf_counter()
        try:
            if sample.text is None or sample.failure_reason is not None or sample.is_image:
                return self._on_cpu(sample)  # the CPU reader reports these failures with their reasons
            media = load_media(sample, self.storage)  # a local path, or the bytes of a tar member / remote object
            source = pyav_open(media, describe=True, counting="index")
            begin, end = frame_range(sample, source.num_frames, source.fps)
            plans = plan_clips(begin, end, source.fps, self.spec)
            info = stream_info(source)
        except MediaError as err:
            return SampleClips(sample, failure=err)
        except Exception as err:  # PyAV can fail on files it opened a moment ago; the CPU reader names the reason
            log.debug("nvdec probe of %s failed (%s); reading it on the CPU", sample.path, err)
            return self._on_cpu(sample)
        problem = info.nvdec_problem()
        if problem is not None:
            log.debug("%s: %s, decoding on the CPU", sample.path, problem)
            return self._on_cpu(sample)
        self._add("probe", clock)
        return _Probed(sample, media, source, plans, info)

    def _after_probe(self, probe: Future) -> SampleClips:
        """Decode-thread task of :meth:`iter_samples`: wait for the sample's probe, then decode it."""
        clock = time.perf_counter()
        probed = probe.result()
        self._add("wait", clock)
        return probed if isinstance(probed, SampleClips) else self._decode_sample(probed)

    def _decode_sample(self, probed: _Probed) -> SampleClips:
        """NVDEC's frames of a probed sample, converted and resized into its clips on this thread's stream."""
        sample, media, source, plans, info = probed.sample, probed.media, probed.source, probed.plans, probed.info
        spec = self.spec
        wanted = sorted(set(np.concatenate(plans).tolist()))
        backend = "nvdec"
        clock = time.perf_counter()
        self._wait_for_previous()
        try:
            if sample.id in self.avoid_nvdec:
                raise _Avoided(self.avoid_nvdec[sample.id])
            with self._decode_slots:
                clock = self._add("wait", clock)
                nv12 = self._decode(media, wanted, info)  # [len(wanted), 3H/2, W] on the device
                clock = self._add("decode", clock)
        except Exception as err:  # noqa: BLE001 - NVDEC refused the stream, or failed on it
            log.debug("nvdec could not decode %s (%s); decoding it with PyAV", sample.id, err)
            if not isinstance(err, _Avoided):
                self._drop_session()  # a decoder that failed is not trusted with the next file
            self.refused[sample.id] = f"{type(err).__name__}: {err}"
            try:
                nv12 = self._pyav_nv12(source, wanted)
            except Exception:  # noqa: BLE001 - the CPU reader reads it again and names the failure
                return self._on_cpu(sample)
            backend = "pyav"
        position = {f: i for i, f in enumerate(wanted)}
        clips = []
        with self._on_stream():
            for plan in plans:
                order = torch.tensor([position[int(f)] for f in plan], device=nv12.device)
                clips.append(nv12_to_clip(nv12.index_select(0, order), info, spec.height, spec.width,
                                          spec.resize_mode, self.resize))  # [T, height, width, 3]
            ready = None
            if self.cuda:
                for clip in clips:
                    clip.record_stream(self.consumer_stream)  # freed only after the consumer's work on it
                ready = torch.cuda.Event()
                ready.record(self._stream())
                self._local.previous = ready
        self._add("convert", clock)
        self._count("nvdec" if backend == "nvdec" else "cpu")
        return SampleClips(sample, clips, [p.tolist() for p in plans], backend=backend, ready=ready)

    def _on_cpu(self, sample: Sample) -> SampleClips:
        self._count("cpu")
        clock = time.perf_counter()
        try:
            return read_sample(sample, self.spec, "pyav", self.storage)
        finally:
            self._add("cpu", clock)

    def _count(self, key: str) -> None:
        with self._count_lock:
            self.counts[key] += 1

    def _add(self, step: str, since: float) -> float:
        """Add the time since ``since`` to ``step`` (:attr:`seconds`); returns now."""
        now = time.perf_counter()
        with self._count_lock:
            self.seconds[step] += now - since
        return now

    def _stream(self) -> torch.cuda.Stream | None:
        """This thread's CUDA stream (the decoder's and the conversion's); ``None`` off CUDA."""
        if self.cuda and getattr(self._local, "stream", None) is None:
            self._local.stream = torch.cuda.Stream(self.device, priority=self.stream_priority)
        return getattr(self._local, "stream", None)

    def _on_stream(self):
        return torch.cuda.stream(self._stream()) if self.cuda else contextlib.nullcontext()

    def _wait_for_previous(self) -> None:
        """Wait (this thread only) until this thread's previous sample is converted: its surfaces are free again
        (:data:`WAIT_FOR_PREVIOUS`)."""
        previous = getattr(self._local, "previous", None)
        if previous is not None and WAIT_FOR_PREVIOUS:
            previous.synchronize()
            self._local.previous = None

    def _session(self) -> NvdecSession:
        session = getattr(self._local, "session", None)
        if session is None:
            session = NvdecSession(self.nvc, self.device, self._stream(), access=self.frame_access,
                                   memory_input=self.memory_input)
            self._local.session = session
            with self._count_lock:
                self._sessions.append(session)
        return session

    def _decode(self, media: str | bytes, wanted: Sequence[int], info: StreamInfo) -> torch.Tensor:
        """uint8 NV12 ``[len(wanted), 3H/2, W]`` on the device for sorted distinct source frames ``wanted``."""
        suffix = os.path.splitext(media)[1] if isinstance(media, str) else ".mp4"
        with self._on_stream():
            nv12 = self._session().decode(media, wanted, suffix)
        if tuple(nv12.shape[1:]) != (info.height * 3 // 2, info.width):
            raise RuntimeError(f"NVDEC surface {tuple(nv12.shape[1:])} is not {info.width}x{info.height} NV12")
        return nv12

    def _pyav_nv12(self, source, wanted: Sequence[int]) -> torch.Tensor:
        """What :meth:`_decode` gives, decoded by PyAV: for a stream NVDEC takes, its planes are NVDEC's bit for bit,
        and the conversion and resize that follow are the same, so a sample's tokens do not depend on whether NVDEC
        failed on it."""
        frames = torch.from_numpy(pyav_nv12(source, wanted))  # [N, 3H/2, W]
        with self._on_stream():
            return frames.to(self.device)

    def _drop_session(self) -> None:
        """Forget this thread's decoder session (freed with its surfaces once this thread's stream is done)."""
        if getattr(self._local, "session", None) is not None:
            if self.cuda:
                self._stream().synchronize()
            self._local.session = None

    # ------------------------------------------------------------------ many samples
    def iter_samples(self, samples: Iterable[Sample]) -> Iterator[SampleClips]:
        """:meth:`read` of every sample, yielded in order: ``probe_threads`` threads open and plan samples (PyAV, on
        the CPU), ``threads`` threads decode them (one NVDEC session each); at most ``2 x threads + probe_threads``
        samples ahead of the consumer."""
        ahead = 2 * self.threads + self.probe_threads
        with ThreadPoolExecutor(self.probe_threads, thread_name_prefix="nvdec-probe") as probes, \
                ThreadPoolExecutor(self.threads, thread_name_prefix="nvdec") as decodes:
            pending: deque = deque()
            for sample in samples:
                # in submission order, so a decode thread waits only for a probe that is running or done
                pending.append(decodes.submit(self._after_probe, probes.submit(self._probe, sample)))
                if len(pending) >= ahead:
                    yield self._hand_over(pending)
            while pending:
                yield self._hand_over(pending)
        counts = self.decoder_counts
        log.info(
            "nvdec: %d samples decoded on the GPU, %d read on the CPU (%d refused by NVDEC%s); decoders: %d created, "
            "%d reconfigured for the next file; clips decoded ahead of the encoder: at most %.0f MiB",
            self.counts["nvdec"], self.counts["cpu"], len(self.refused),
            f", e.g. {next(iter(self.refused))}" if self.refused else "",
            counts["decoders_created"], counts["decoders_reconfigured"], self.peak_ahead_bytes / 2**20,
        )
        log.info("nvdec threads' time: %s; the consumer waited %.2f s for samples",
                 ", ".join(f"{step} {seconds:.2f} s" for step, seconds in self.seconds.items()), self.consumer_wait)

    def _hand_over(self, pending: deque) -> SampleClips:
        """The oldest sample, ready for the consumer's stream (a GPU-side wait, no host synchronization)."""
        ahead = sum(_clip_bytes(f.result()) for f in pending if f.done())
        self.peak_ahead_bytes = max(self.peak_ahead_bytes, ahead)
        clock = time.perf_counter()
        item = pending.popleft().result()
        self.consumer_wait += time.perf_counter() - clock
        self._ready_for_consumer(item)
        return item


def _clip_bytes(item: SampleClips) -> int:
    return sum(clip.numel() * clip.element_size() for clip in item.clips if isinstance(clip, torch.Tensor))
