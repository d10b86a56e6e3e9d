"""GPU video decoding with NVDEC (PyNvVideoCodec): the dataset builder's ``nvdec`` video backend.

Why: the fast encode path tokenizes 1,800+ frames/s of 720p video on one H100, while one CPU core decodes and
converts ~90 such H.264 frames/s; 16 cores cannot keep the GPU busy. NVDEC (the GPU's video decode engines) does,
and its frames stay on the GPU: no host copies, no pinned staging, no transfer.

Same frames as the CPU path: frame plans come from the same PyAV demux count (:func:`.video._pyav_open`), NVDEC's
decoded YUV planes are FFmpeg's (the codecs' decoding is bit-exact by standard), and :func:`.yuv.nv12_to_rgb`
repeats swscale's arithmetic, so each frame equals PyAV's ``to_ndarray("rgb24")``. That holds for 8-bit 4:2:0,
even-sized H.264 / HEVC / AV1 in MP4/MOV and VP9 in MP4 or WebM, in the colour matrices of
:data:`.yuv.COLOURSPACES` (PyNvVideoCodec's frame indices for H.264 in Matroska were found not to be PyAV's). Every other sample
(10-bit, 4:2:2/4:4:4, odd sizes, other codecs, images, files NVDEC refuses - on an H100: AV1 and 4:0:0 H.264) is
read by PyAV on the CPU in the same decode thread: same frames, slower. A stream NVDEC should take but fails on
(:attr:`NvdecReader.refused` lists them) is decoded by PyAV at its own size and resized on the GPU like NVDEC's
frames, so its tokens are the ones NVDEC would have given. A rotation is applied on the GPU (exact); a resize to a
target size other than the source's runs on the GPU in float32 (:func:`.video.resize_clip`), which can differ from
the CPU's uint8 result by one level at a few pixels - the one difference from the ``pyav`` backend (the backend is
part of a build's config hash, so two backends never mix in one dataset).

Media held in memory (a tar member, an object read from storage: :mod:`.sources.media`) are probed by PyAV from
the bytes; PyNvVideoCodec's decoder opens a path, so the bytes of that one sample are written to a temporary file
in ``/dev/shm`` (memory, not disk, where it exists) for the decode and removed right after - never a shard's
extraction.

Decoding runs in ``threads`` Python threads of the main process (PyNvVideoCodec releases the GIL), each with its
own decoder and CUDA stream; samples come out in manifest order.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch

from .manifest import Sample
from .sources.media import load_media
from .video import (
    ClipSpec,
    MediaError,
    SampleClips,
    VideoSource,
    _pyav_open,
    frame_range,
    plan_clips,
    read_sample,
    resize_clip,
)
from .yuv import COLOURSPACES, nv12_to_rgb

log = logging.getLogger(__name__)

INSTALL_HINT = 'pip install "nemo-cosmos-tokenizer[nvdec]" (PyNvVideoCodec; needs an NVIDIA GPU and driver)'
#: Codecs sent to NVDEC (FFmpeg canonical names); others are decoded on the CPU.
NVDEC_CODECS = ("h264", "hevc", "vp9", "av1")
DEFAULT_THREADS = 8
#: NVDEC calls in flight at once: more than ~4 concurrent decode sessions run slower in total on an H100 (2.6k
#: frames/s of 720p H.264 with 4, 2.2k with 8, 1.4k with 16), while the CPU side of a sample (PyAV open and frame
#: count) wants more threads; so threads probe freely and take turns at the decoder.
MAX_CONCURRENT_DECODES = 4


def require_nvdec():
    """Import PyNvVideoCodec, or raise ImportError saying how to install it."""
    try:
        import PyNvVideoCodec
    except ImportError as err:
        raise ImportError(f"the nvdec video backend needs PyNvVideoCodec: {INSTALL_HINT}") from err
    except RuntimeError as err:  # it raises RuntimeError when the driver's video libraries are missing
        raise ImportError(f"PyNvVideoCodec cannot load the NVIDIA video libraries ({err}); use another backend") from err
    return PyNvVideoCodec


@dataclass(frozen=True)
class StreamInfo:
    """What decides whether a video goes to NVDEC, read with PyAV."""

    codec: str
    container: str
    """FFmpeg's demuxer name (``mov,mp4,m4a,3gp,3g2,mj2``, ``matroska,webm``, ...)."""
    pix_fmt: str
    width: int
    height: int
    colourspace: int
    full_range: bool
    rotation: int
    """Display rotation in degrees, counter-clockwise (as PyAV's ``frame.rotation``)."""

    def nvdec_problem(self) -> str | None:
        """Why NVDEC + :func:`nv12_to_rgb` would not give PyAV's frames, or ``None`` when they would."""
        if self.codec not in NVDEC_CODECS:
            return f"codec {self.codec}"
        if not ("mp4" in self.container or (self.codec == "vp9" and "webm" in self.container)):
            # PyNvVideoCodec's frame indices in Matroska H.264 (B-frames) are not PyAV's (measured on the H100:
            # frames from the 6th on differed); MP4/MOV and VP9 in WebM matched frame for frame.
            return f"{self.codec} in {self.container} (frame indices not verified)"
        if self.pix_fmt not in ("yuv420p", "yuvj420p"):
            return f"pixel format {self.pix_fmt}"
        if self.width % 2 or self.height % 2:
            return f"odd size {self.width}x{self.height}"
        if self.colourspace not in COLOURSPACES:
            return f"colour matrix {self.colourspace}"
        if self.rotation % 90:
            return f"rotation {self.rotation}"
        return None


def stream_info(source: VideoSource) -> StreamInfo:
    """Codec, pixel format, size, colour matrix and range, rotation of a video opened with
    ``_pyav_open(path, describe=True)`` (one open, while the frames are counted)."""
    d = source.description
    return StreamInfo(
        codec=d["codec"],
        container=d["container"],
        pix_fmt=d["pix_fmt"],
        width=d["width"],
        height=d["height"],
        colourspace=d["colorspace"],
        full_range=d["pix_fmt"] == "yuvj420p" or d["color_range"] == 2,
        rotation=d["rotation"],
    )


def probe_stream(path: str) -> StreamInfo:
    """:class:`StreamInfo` of the video stream the readers take from ``path``."""
    return stream_info(_pyav_open(path, describe=True))


class NvdecReader:
    """Reads samples into clips on the GPU: uint8 CUDA tensors ``[T, H, W, 3]`` at the target resolution.

    ``read(sample)`` runs in any thread (one decoder and CUDA stream per thread); :meth:`iter_samples` reads a
    sequence in ``threads`` threads and yields :class:`SampleClips` in order. The clips are ready for use on the
    CUDA stream that was current when the reader was made (the consumer's).
    """

    def __init__(
        self, spec: ClipSpec, device: torch.device | str = "cuda", threads: int = DEFAULT_THREADS, *, decoder_module=None,
        storage=None, max_decodes: int | None = None,
    ) -> None:
        device = torch.device(device)
        if device.type != "cuda" and decoder_module is None:
            raise ValueError(f"the nvdec backend decodes on the GPU the tokenizer runs on; got device {device}")
        # decoder_module: a stand-in for PyNvVideoCodec (tests on machines without NVDEC); then CPU is allowed.
        self.nvc = decoder_module if decoder_module is not None else require_nvdec()
        self.spec = spec
        self.storage = storage
        """How tar shards and remote objects are reached (:class:`.sources.storage.Storage`; default options)."""
        self.cuda = device.type == "cuda"
        if self.cuda and device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        self.device = device
        self.threads = max(1, threads)
        self.max_decodes = min(self.threads, max_decodes or MAX_CONCURRENT_DECODES)
        """NVDEC decodes in flight at once (``max_decodes``, default :data:`MAX_CONCURRENT_DECODES`)."""
        self._decode_slots = threading.BoundedSemaphore(self.max_decodes)
        self.consumer_stream = torch.cuda.current_stream(self.device) if self.cuda else None
        self._local = threading.local()
        self.counts = {"nvdec": 0, "cpu": 0, "decoders_created": 0, "decoders_reconfigured": 0}
        """Samples decoded on the GPU / read on the CPU, and how often a thread's decoder was made anew versus pointed
        at the next file (a new decoder costs a session start; mixed codecs and sizes force them)."""
        self.refused: dict[str, str] = {}
        """Samples (by id) NVDEC failed on, with the error: decoded by PyAV instead (counted as read on the CPU)."""
        self._count_lock = threading.Lock()

    # ------------------------------------------------------------------ one sample
    def read(self, sample: Sample) -> SampleClips:
        """Clips of one sample, or a failure (never raises for bad media)."""
        spec = self.spec
        try:
            if sample.text is None or sample.failure_reason is not None or sample.is_image:
                return self._on_cpu(sample)  # the CPU reader reports these failures with their reasons
            media = load_media(sample, self.storage)  # a local path, or the bytes of a tar member / remote object
            source = _pyav_open(media, describe=True)  # frames counted by demuxing, as the pyav backend does
            begin, end = frame_range(sample, source.num_frames, source.fps)
            plans = plan_clips(begin, end, source.fps, spec)
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
        frame_indices = np.concatenate(plans)
        backend = "nvdec"
        try:
            with self._decode_slots, _decodable_path(media, sample) as path:
                frames = self._decode(path, frame_indices, info)  # [N, H, W, 3] on the GPU
        except Exception as err:  # noqa: BLE001 - NVDEC refused the stream, or failed on it
            log.debug("nvdec could not decode %s (%s); decoding it with PyAV", sample.id, err)
            self._drop_decoder()  # a decoder that failed is not trusted with the next file
            self.refused[sample.id] = f"{type(err).__name__}: {err}"
            try:
                frames = self._pyav_frames(source, frame_indices)
            except Exception:  # noqa: BLE001 - the CPU reader reads it again and names the failure
                return self._on_cpu(sample)
            backend = "pyav"
        clips, at = [], 0
        with self._on_stream():
            for plan in plans:
                clip = resize_clip(frames[at : at + len(plan)], spec.height, spec.width, spec.resize_mode)
                clips.append(clip.contiguous())
                at += len(plan)
            if self.cuda:
                for clip in clips:
                    clip.record_stream(self.consumer_stream)  # freed only after the consumer's work on it
                self._stream().synchronize()  # the decoder's surfaces are reused by its next call
        self._count("nvdec" if backend == "nvdec" else "cpu")
        return SampleClips(sample, clips, [p.tolist() for p in plans], backend=backend)

    def _on_cpu(self, sample: Sample) -> SampleClips:
        self._count("cpu")
        return read_sample(sample, self.spec, "pyav", self.storage)

    def _count(self, key: str) -> None:
        with self._count_lock:
            self.counts[key] += 1

    def _stream(self) -> torch.cuda.Stream | None:
        """This thread's CUDA stream (the decoder's and the conversion's); ``None`` off CUDA."""
        if self.cuda and getattr(self._local, "stream", None) is None:
            self._local.stream = torch.cuda.Stream(self.device)
        return getattr(self._local, "stream", None)

    def _on_stream(self):
        return torch.cuda.stream(self._stream()) if self.cuda else contextlib.nullcontext()

    def _decode(self, path: str, indices: np.ndarray, info: StreamInfo) -> torch.Tensor:
        """uint8 ``[len(indices), H, W, 3]`` on the GPU for source frame ``indices`` (any order, repeats)."""
        wanted = sorted(set(int(i) for i in indices))
        decoder = self._decoder(path)
        surfaces = decoder.get_batch_frames_by_index(wanted)
        if len(surfaces) != len(wanted):
            raise RuntimeError(f"NVDEC returned {len(surfaces)} of {len(wanted)} frames")
        with self._on_stream():
            nv12 = torch.stack([torch.from_dlpack(s) for s in surfaces])  # [N, 3H/2, W] uint8, NV12
            if tuple(nv12.shape[1:]) != (info.height * 3 // 2, info.width):
                raise RuntimeError(f"NVDEC surface {tuple(nv12.shape[1:])} is not {info.width}x{info.height} NV12")
            rgb = nv12_to_rgb(nv12, info.colourspace, info.full_range)  # [N, H, W, 3]
            if info.rotation % 360:
                # Counter-clockwise display rotation, as the CPU reader applies it with np.rot90 on [H, W, 3].
                rgb = torch.rot90(rgb, k=(info.rotation // 90) % 4, dims=(1, 2))
            position = {f: i for i, f in enumerate(wanted)}
            order = torch.tensor([position[int(i)] for i in indices], device=rgb.device)
            return rgb.index_select(0, order)

    def _pyav_frames(self, source, indices: np.ndarray) -> torch.Tensor:
        """uint8 ``[len(indices), H, W, 3]`` on this reader's device, decoded by PyAV at the source's size: where NVDEC
        failed on a stream it takes, PyAV's frames are the ones NVDEC gives (bit for bit), and the resize that
        follows is the same GPU one, so a sample's tokens do not depend on whether NVDEC failed on it."""
        frames = torch.from_numpy(source.get_frames(indices.tolist()))  # [N, H, W, 3], rotation applied
        with self._on_stream():
            return frames.to(self.device)

    def _decoder(self, path: str):
        """This thread's decoder, pointed at ``path``: reconfigured when the thread has one, else a new one.

        One decoder per thread: PyNvVideoCodec's ``reconfigure_decoder`` keeps its own cache of decoders for other
        codecs and sizes. Keeping up to 4 of ours per thread as well (one per codec and size; 8 threads made ~30 per
        build) was no faster on a mixed 1080p/4K/HEVC/portrait corpus, and in 3 of 10 passes on an H100 NVDEC failed
        (``cuvidMapVideoFrame`` error 208, once as an abort inside PyNvVideoCodec); with one per thread, none in 13
        (BENCHMARKS.md, runs 9 and 10)."""
        nvc, decoder = self.nvc, getattr(self._local, "decoder", None)
        if decoder is not None:
            try:
                decoder.reconfigure_decoder(path)
                self._count("decoders_reconfigured")
                return decoder
            except Exception:  # noqa: BLE001 - another codec or a larger size than it was made for: a fresh decoder
                self._drop_decoder()
        decoder = nvc.SimpleDecoder(
            path,
            gpu_id=self.device.index if self.cuda else 0,
            use_device_memory=True,
            output_color_type=nvc.OutputColorType.NATIVE,
            cuda_stream=self._stream().cuda_stream if self.cuda else 0,
        )
        self._local.decoder = decoder
        self._count("decoders_created")
        return decoder

    def _drop_decoder(self) -> None:
        """Forget this thread's decoder (freed with its surfaces once this thread's stream has finished with them)."""
        if getattr(self._local, "decoder", None) is not None:
            if self.cuda:
                self._stream().synchronize()
            self._local.decoder = None

    # ------------------------------------------------------------------ many samples
    def iter_samples(self, samples: Sequence[Sample]) -> Iterator[SampleClips]:
        """:meth:`read` of every sample in ``threads`` threads, yielded in order (at most 2 x threads ahead)."""
        with ThreadPoolExecutor(self.threads, thread_name_prefix="nvdec") as pool:
            pending: deque = deque()
            queue = iter(samples)
            for sample in queue:
                pending.append(pool.submit(self.read, sample))
                if len(pending) >= 2 * self.threads:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        log.info(
            "nvdec: %d samples decoded on the GPU, %d read on the CPU (%d refused by NVDEC%s); decoders: %d created, "
            "%d reconfigured for the next file",
            self.counts["nvdec"], self.counts["cpu"], len(self.refused),
            f", e.g. {next(iter(self.refused))}" if self.refused else "",
            self.counts["decoders_created"], self.counts["decoders_reconfigured"],
        )


@contextlib.contextmanager
def _decodable_path(media: str | bytes, sample: Sample):
    """A path PyNvVideoCodec can open: the file itself, or the sample's bytes in a temporary file in memory
    (``/dev/shm`` where it exists), removed on exit."""
    if isinstance(media, str):
        yield media
        return
    folder = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    suffix = os.path.splitext(sample.media_name)[1]
    with tempfile.NamedTemporaryFile(prefix="nct-nvdec-", suffix=suffix, dir=folder) as tmp:
        tmp.write(media)
        tmp.flush()
        yield tmp.name
