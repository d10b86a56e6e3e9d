"""GPU video decoding with NVDEC (PyNvVideoCodec): which streams NVDEC takes, and a decoder session that decodes the
frames a clip plan needs as NV12 surfaces, then turns them into clips at the target size.

Same frames as the CPU path: NVDEC's decoded YUV planes are FFmpeg's (the codecs' decoding is bit-exact by
standard), and :func:`.yuv.nv12_to_rgb` repeats swscale's arithmetic, so each frame equals PyAV's
``to_ndarray("rgb24")``. That holds for 8-bit 4:2:0, even-sized H.264 / HEVC / AV1 in MP4/MOV and VP9 in MP4 or
WebM, in the colour matrices of :data:`.yuv.COLOURSPACES` (:meth:`StreamInfo.nvdec_problem` names what else there
is; PyNvVideoCodec's frame indices for H.264 in Matroska were found not to be PyAV's).

How a session reads (:class:`NvdecSession`): one PyNvVideoCodec ``SimpleDecoder`` per session, pointed at the next
file with ``reconfigure_decoder`` (media in memory - tar members, objects - go through a ``/dev/shm`` file by default:
PyNvVideoCodec 2.2's ``reconfigure_decoder`` takes paths only, so bytes made a new decoder per sample, see
:data:`MEMORY_INPUTS`), and
the wanted frames decoded as runs of consecutive frames (``seek_to_index`` to a run's first frame unless the decoder
is already there, then ``get_batch_frames``): no per-frame seek inside a run, small gaps decoded through. NVDEC's
engines (7 on an H100) work in parallel only for concurrent sessions, so a reader runs several.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from .decode import VideoSource, pyav_open
from .resize import resize_clip
from .yuv import COLOURSPACES, nv12_to_rgb

INSTALL_HINT = 'pip install "nemo-cosmos-tokenizer[nvdec]" (PyNvVideoCodec; needs an NVIDIA GPU and driver)'
#: Codecs sent to NVDEC (FFmpeg canonical names); others are decoded on the CPU.
NVDEC_CODECS = ("h264", "hevc", "vp9", "av1")
#: A gap of at most this many frames between two wanted frames is decoded through rather than sought over (a seek
#: restarts at the keyframe before the target, usually further back).
MAX_GAP = 32
RESIZE_KINDS = ("auto", "exact", "fused")
"""How NV12 surfaces become clips (:func:`nv12_to_clip`); ``auto`` is ``fused`` on CUDA where Triton imports, else
``exact`` (:func:`resolve_resize`): both give the same bytes."""
#: How a session fetches frames: ``runs`` (seek to a run's first frame, then decode it sequentially) or ``index``
#: (``get_batch_frames_by_index``, the reader of runs 7-10, whose frames were checked against PyAV on an H100).
FRAME_ACCESS = ("runs", "index")
#: How a session hands media held in memory to the decoder: ``file`` (a ``/dev/shm`` file, so that the session's
#: decoder is reconfigured for it like for any file) or ``bytes`` (``SimpleDecoder(bytes)``: no copy to a file, but
#: PyNvVideoCodec 2.2.4 cannot reconfigure a decoder from bytes, so each sample made a new decoder: 128 for 128 tar
#: members in BENCHMARKS.md run 11, where the tar build ran at half the files build's rate).
MEMORY_INPUTS = ("file", "bytes")


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
    ``pyav_open(path, describe=True)`` (one open, while the frames are counted)."""
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
    return stream_info(pyav_open(path, describe=True))


def frame_runs(wanted: Sequence[int], max_gap: int = MAX_GAP) -> list[tuple[int, int]]:
    """Sorted distinct frame indices -> ``[start, stop)`` runs to decode, merging runs at most ``max_gap`` apart."""
    runs: list[list[int]] = []
    for index in wanted:
        if runs and index - runs[-1][1] <= max_gap:
            runs[-1][1] = index + 1
        else:
            runs.append([index, index + 1])
    return [(a, b) for a, b in runs]


class NvdecSession:
    """One decoder (and its CUDA stream) of one thread: :meth:`decode` gives the NV12 surfaces of wanted frames.

    ``decoder_module``: PyNvVideoCodec, or a stand-in with its ``SimpleDecoder`` interface (tests without NVDEC).
    """

    def __init__(self, nvc, device: torch.device, stream: torch.cuda.Stream | None, max_gap: int = MAX_GAP,
                 access: str = "runs", memory_input: str = "file") -> None:
        if access not in FRAME_ACCESS:
            raise ValueError(f"frame access must be one of {FRAME_ACCESS}, got {access!r}")
        if memory_input not in MEMORY_INPUTS:
            raise ValueError(f"memory input must be one of {MEMORY_INPUTS}, got {memory_input!r}")
        self.nvc = nvc
        self.access = access
        self.device = device
        self.stream = stream
        self.max_gap = max_gap
        self.decoder = None
        self.created = 0
        self.reconfigured = 0
        self.from_memory = memory_input == "bytes"
        """Whether this session hands in-memory media to the decoder as bytes (:data:`MEMORY_INPUTS`; it switches to a
        file in ``/dev/shm`` for good, retrying the sample, when the decoder refuses bytes with a ``TypeError``)."""

    def decode(self, media: str | bytes, wanted: Sequence[int], suffix: str = ".mp4") -> torch.Tensor:
        """uint8 ``[len(wanted), 3H/2, W]`` NV12 on the device for sorted distinct frame indices ``wanted``, in that
        order; raises whatever the decoder raises (the caller falls back to the CPU)."""
        try:
            return self._decode(media, wanted, suffix)
        except TypeError:  # pybind11's answer to an argument type it does not take
            if isinstance(media, str) or not self.from_memory:
                raise
            self.from_memory = False  # this PyNvVideoCodec opens paths only here: a /dev/shm file from now on
            return self._decode(media, wanted, suffix)

    def _decode(self, media: str | bytes, wanted: Sequence[int], suffix: str) -> torch.Tensor:
        with self._source(media, suffix) as source:
            decoder = self._point_at(source)
            if self.access == "index":
                surfaces = decoder.get_batch_frames_by_index([int(i) for i in wanted])
                if len(surfaces) != len(wanted):
                    raise RuntimeError(f"NVDEC returned {len(surfaces)} of {len(wanted)} frames")
                return torch.stack([torch.from_dlpack(s) for s in surfaces])  # [N, 3H/2, W]
            keep = set(int(i) for i in wanted)
            parts, position = [], 0
            for start, stop in frame_runs(wanted, self.max_gap):
                if start != position:
                    decoder.seek_to_index(start)
                got: list = []
                while len(got) < stop - start:
                    batch = decoder.get_batch_frames(stop - start - len(got))
                    if not batch:
                        raise RuntimeError(f"NVDEC stopped at frame {start + len(got)} of a run to {stop}")
                    got.extend(batch)
                position = stop
                # Copied out on this session's stream right away: the decoder's next call refills its surfaces, and
                # it writes them on this same stream (so after this copy), see nemo_cosmos_tokenizer.data.nvdec's docstring.
                parts.append(torch.stack([torch.from_dlpack(s) for i, s in enumerate(got, start) if i in keep]))
            return parts[0] if len(parts) == 1 else torch.cat(parts)  # [N, 3H/2, W]

    @contextlib.contextmanager
    def _source(self, media: str | bytes, suffix: str):
        if isinstance(media, str) or self.from_memory:
            yield media
            return
        with decodable_path(media, suffix) as path:
            yield path

    def _point_at(self, source: str | bytes):
        """This session's decoder, pointed at ``source``: reconfigured when there is one, else a new one."""
        if self.decoder is not None:
            try:
                self.decoder.reconfigure_decoder(source)
                self.reconfigured += 1
                return self.decoder
            except TypeError:
                raise  # bytes where it takes paths: the decoder is fine, :meth:`decode` retries with a file
            except Exception:  # noqa: BLE001 - another codec or a larger size than it was made for: a fresh decoder
                self.decoder = None
        self.decoder = self.nvc.SimpleDecoder(
            source, gpu_id=self.device.index or 0, use_device_memory=True,
            output_color_type=self.nvc.OutputColorType.NATIVE,
            cuda_stream=self.stream.cuda_stream if self.stream is not None else 0)
        self.created += 1
        return self.decoder


@contextlib.contextmanager
def decodable_path(media: bytes, suffix: str):
    """The bytes of one sample in a temporary file in memory (``/dev/shm`` where it exists), removed on exit: for a
    decoder that opens paths only."""
    folder = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    with tempfile.NamedTemporaryFile(prefix="nct-nvdec-", suffix=suffix, dir=folder) as tmp:
        tmp.write(media)
        tmp.flush()
        yield tmp.name


def pyav_nv12(source: VideoSource, wanted: Sequence[int]) -> np.ndarray:
    """uint8 ``[len(wanted), 3H/2, W]`` NV12 of sorted distinct frames ``wanted``, decoded by PyAV (no rotation,
    no conversion): what NVDEC gives for an 8-bit 4:2:0 stream, for a sample NVDEC failed on, so that it goes
    through the same conversion and resize. Raises what PyAV raises."""
    import av

    from .images import as_file

    path, stream_index = source._handle
    keep, out, last = set(int(i) for i in wanted), [], int(wanted[-1])
    with av.open(as_file(path)) as container:
        stream = container.streams[stream_index]
        stream.thread_type = "AUTO"
        for position, frame in enumerate(container.decode(stream)):
            if position in keep:
                y, u, v = (np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width] for p in frame.planes)
                uv = np.stack([u, v], -1).reshape(u.shape[0], -1)  # [H/2, W]: U and V interleaved
                out.append(np.concatenate([y, uv]))  # [3H/2, W]
            if position >= last:
                break
    if len(out) != len(keep):
        raise RuntimeError(f"PyAV decoded {len(out)} of {len(keep)} frames")
    return np.stack(out)


def resolve_resize(resize: str, device: torch.device | str) -> str:
    """``exact`` or ``fused`` for a resize kind of :data:`RESIZE_KINDS`: ``auto`` takes the fused Triton kernel on a
    CUDA device where Triton is installed. The two write the same bytes (the CUDA tests of ``tests/media/test_fused.py``
    compare them bit for bit; BENCHMARKS.md runs 11 and 14: the same shards on the 128-source benchmark mix), and the
    fused one is cheaper (run 14: a build at 61 % of encoder-only instead of 47 %)."""
    if resize not in RESIZE_KINDS:
        raise ValueError(f"resize must be one of {RESIZE_KINDS}, got {resize!r}")
    if resize != "auto":
        return resize
    import importlib.util

    device = torch.device(device)
    if device.type != "cuda" or importlib.util.find_spec("triton") is None:
        return "exact"
    # Triton compiles for compute capability 7.0 (Volta) and later; older GPUs keep the exact path.
    return "fused" if torch.cuda.get_device_capability(device) >= (7, 0) else "exact"


def nv12_to_clip(nv12: torch.Tensor, info: StreamInfo, height: int, width: int, mode: str,
                 resize: str = "exact") -> torch.Tensor:
    """NV12 surfaces uint8 ``[T, 3H/2, W]`` -> a clip uint8 ``[T, height, width, 3]``: rotation applied, resized.

    ``exact``: :func:`.yuv.nv12_to_rgb` at source size, rotation, then :func:`.resize.resize_clip` (float32
    antialiased bilinear) - the frames of the ``pyav`` backend resized on the GPU. ``fused``: one Triton kernel
    from NV12 to the target size (:mod:`.fused`), for unrotated frames (rotated ones take the exact path).
    """
    resize = resolve_resize(resize, nv12.device)
    if resize == "fused" and info.rotation % 360 == 0:
        from .fused import nv12_resize

        return nv12_resize(nv12, info.colourspace, info.full_range, height, width, mode)
    rgb = nv12_to_rgb(nv12, info.colourspace, info.full_range)  # [T, H, W, 3]
    if info.rotation % 360:
        # Counter-clockwise display rotation, as the CPU reader applies it with np.rot90 on [H, W, 3].
        rgb = torch.rot90(rgb, k=(info.rotation // 90) % 4, dims=(1, 2))
    return resize_clip(rgb, height, width, mode).contiguous()
