"""Reading clips: decode (decord or PyAV), sample frames, resize to the target resolution.

A sample's media becomes one or several clips, each ``uint8 [T, H, W, 3]`` at the target resolution:

* **Backends.** ``decord`` (random access by frame index) or ``pyav`` (sequential decode, no seeking: PyAV seeks
  land on unclean sync samples in some files). ``auto`` tries decord and falls back to PyAV when decord is not
  installed or cannot open the file (AV1, some containers). Both give the same frames: PyAV applies the display
  rotation (decord does), takes the largest video stream (decord's choice in multi-stream files) and counts
  frames by demuxing (MKV/WebM headers carry no count). Pixels are identical for 8-bit content; 10-bit and
  odd-sized 4:2:0 video differ by a few levels (decord bundles FFmpeg 4.1's colour conversion).
* **Frame sampling** (:class:`ClipSpec`): ``num_frames`` per clip (``1 + k * t`` for a video tokenizer with
  temporal compression ``t``), taken at a target ``fps`` (index step ``source_fps / fps``, never repeating a
  frame) or every ``stride``-th frame, or every frame; ``clips_per_video`` non-overlapping clips spread evenly
  over the usable range. A video too short for one clip is a ``too_short`` failure, or, with
  ``short_videos="shorten"``, gives one clip of the longest valid length it holds.
* **Images** (by extension) are 1-frame clips: EXIF orientation applied, CMYK and ICC profiles converted to sRGB,
  alpha composited on white, 16-bit and grey scaled to 8-bit RGB.
* **Resize**: ``crop`` scales the shortest side to cover the target and centre-crops; ``pad`` fits the longest
  side inside and pads with black, centred. The target is validated against the tokenizer's spatial compression.

Media come as a local path, or as bytes (a tar member, an object fetched from storage: :mod:`.sources.media`),
which every reader opens from memory (decord and PyAV read file-like objects) without writing them to disk.

Failures raise :class:`MediaError` with a short ``reason`` code (see :data:`FAILURE_REASONS`).

**Partly decodable videos** (all packets present, the data corrupt from some frame on): one policy for the builder,
``encode`` and ``reconstruct-*``: a video is used up to its first undecodable frame, with a warning that names the
frame; a job that needs frames past it plans again on the decodable head (the builder's clips) or takes the head
(``encode``/``reconstruct``), and a head too short for the job is a ``too_short``/``truncated`` failure. Files
cut off before the end (fewer packets than the header promises) remain ``truncated`` failures.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import re
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from ..config import frame_count_error, resolution_error
from .manifest import Sample

log = logging.getLogger(__name__)

INSTALL_HINT = 'pip install "nemo-cosmos-tokenizer[data]"'
BACKENDS = ("auto", "decord", "pyav")
RESIZE_MODES = ("crop", "pad")
SHORT_VIDEO_POLICIES = ("skip", "shorten")

from .failures import FAILURE_REASONS, MediaError  # noqa: E402,F401  (defined there; public here as before)


@dataclass(frozen=True)
class ClipSpec:
    """How clips are cut from a video and sized (validated on creation)."""

    num_frames: int = 17
    """Frames per clip; must be ``1 + k * temporal_compression`` of the video tokenizer."""

    fps: float | None = None
    """Target frame rate; ``None`` keeps the source rate (or uses ``stride``)."""

    stride: int | None = None
    """Take every ``stride``-th source frame (exclusive with ``fps``)."""

    clips_per_video: int = 1
    """At most this many non-overlapping clips per video, spread evenly over it."""

    short_videos: str = "skip"
    """``skip`` (a ``too_short`` failure) or ``shorten`` (one clip of the longest valid length)."""

    height: int = 256
    width: int = 256

    resize_mode: str = "crop"
    """``crop`` (cover + centre crop) or ``pad`` (fit + centre pad with black)."""

    temporal_compression: int = 1
    """The tokenizer's ``t`` (1 for image tokenizers: any clip length works)."""

    spatial_compression: int = 1
    """The tokenizer's spatial factor; height and width must be multiples of it."""

    def __post_init__(self) -> None:
        problem = frame_count_error(self.num_frames, self.temporal_compression)
        if problem is not None:
            raise ValueError(problem)
        if self.fps is not None and self.stride is not None:
            raise ValueError("give a target fps or a stride, not both")
        if self.fps is not None and not self.fps > 0:
            raise ValueError(f"fps must be > 0, got {self.fps}")
        if self.stride is not None and self.stride < 1:
            raise ValueError(f"stride must be >= 1, got {self.stride}")
        if self.clips_per_video < 1:
            raise ValueError(f"clips_per_video must be >= 1, got {self.clips_per_video}")
        if self.short_videos not in SHORT_VIDEO_POLICIES:
            raise ValueError(f"short_videos must be one of {SHORT_VIDEO_POLICIES}, got {self.short_videos!r}")
        if self.resize_mode not in RESIZE_MODES:
            raise ValueError(f"resize_mode must be one of {RESIZE_MODES}, got {self.resize_mode!r}")
        problem = resolution_error(self.height, self.width, self.spatial_compression)
        if problem is not None:
            raise ValueError(problem)


# ------------------------------------------------------------------------------------------- frame sampling
def _step(source_fps: float, spec: ClipSpec) -> float:
    if spec.stride is not None:
        return float(spec.stride)
    if spec.fps is not None:
        if not source_fps > 0:
            raise MediaError("unreadable", "the video reports no frame rate, so a target fps cannot be applied")
        return max(1.0, source_fps / spec.fps)
    return 1.0


def _offsets(length: int, step: float) -> np.ndarray:
    """Frame offsets of a clip of ``length`` frames taken every ``step`` source frames."""
    return np.floor(np.arange(length) * step + 0.5).astype(np.int64)


def frame_range(sample: Sample, num_frames: int, source_fps: float) -> tuple[int, int]:
    """The usable ``[begin, end)`` source frames of a sample (its manifest range, clipped to the video)."""
    begin, end = 0, num_frames
    if sample.start_frame is not None or sample.end_frame is not None:
        begin = sample.start_frame or 0
        end = num_frames if sample.end_frame is None else min(sample.end_frame, num_frames)
    elif sample.start is not None or sample.end is not None:
        if not source_fps > 0:
            raise MediaError("bad_range", "a range in seconds needs the video's frame rate, which it does not report")
        begin = int(math.ceil(sample.start * source_fps - 1e-6)) if sample.start is not None else 0
        end = num_frames if sample.end is None else min(num_frames, int(math.ceil(sample.end * source_fps - 1e-6)))
    if end <= begin:
        raise MediaError("bad_range", f"the range [{begin}, {end}) holds no frames (the video has {num_frames})")
    return begin, end


def plan_clips(begin: int, end: int, source_fps: float, spec: ClipSpec) -> list[np.ndarray]:
    """Source frame indices of each clip (int64 arrays) within ``[begin, end)``."""
    step = _step(source_fps, spec)
    available = end - begin
    length = spec.num_frames
    offsets = _offsets(length, step)
    span = int(offsets[-1]) + 1
    if span > available:
        t = spec.temporal_compression
        if spec.short_videos == "shorten":
            # Longest 1 + k*t that fits; a single frame always does.
            k = (length - 1) // t
            while k > 0 and int(_offsets(1 + k * t, step)[-1]) + 1 > available:
                k -= 1
            return [begin + _offsets(1 + k * t, step)]
        rate = f" at {spec.fps:g} fps" if spec.fps else (f" with stride {spec.stride}" if spec.stride else "")
        raise MediaError(
            "too_short",
            f"a {length}-frame clip{rate} spans {span} source frames, the usable range has {available}",
        )
    count = min(spec.clips_per_video, available // span)
    if count == 1:
        starts = [begin]
    else:
        # Evenly spread, non-overlapping: consecutive starts are at least `span` apart since count*span <= available.
        starts = [begin + (i * (available - span)) // (count - 1) for i in range(count)]
    return [start + offsets for start in starts]


# --------------------------------------------------------------------------------------------------- images
def _as_file(media: str | bytes):
    """What a decoder opens: the path itself, or a file object over the bytes (a fresh one per open)."""
    return io.BytesIO(media) if isinstance(media, (bytes, bytearray, memoryview)) else media


def load_image(path: str | bytes) -> np.ndarray:
    """An image (a file path, or its bytes) as uint8 ``[H, W, 3]`` sRGB, displayed orientation."""
    try:
        from PIL import Image, ImageOps
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(f"reading images needs Pillow: {INSTALL_HINT}") from err
    try:
        with Image.open(_as_file(path)) as opened:
            image = ImageOps.exif_transpose(opened)  # applies and drops EXIF Orientation
            image.load()
    except Exception as err:  # Pillow raises many types for bad files
        raise MediaError("unreadable", f"cannot read image: {err}") from err
    image = _to_srgb(image)
    mode = image.mode
    if mode.startswith("I;16") or mode == "I":
        # 16-bit (or 32-bit int) grey: Pillow's convert("L") would clip; scale 0..65535 -> 0..255 instead.
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or values.max() > 255 else 255.0
        grey = np.clip(np.floor(values * (255.0 / top) + 0.5), 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode == "F":
        values = np.asarray(image, dtype=np.float64)
        scale = 255.0 if values.max() <= 1.0 else 1.0
        grey = np.clip(np.floor(values * scale + 0.5), 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA", "La", "RGBa") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


def _to_srgb(image):
    """Convert through an embedded ICC profile to sRGB when there is one (CMYK included)."""
    profile = image.info.get("icc_profile")
    if not profile or image.mode not in ("RGB", "CMYK", "RGBA"):
        return image.convert("RGB") if image.mode == "CMYK" else image
    try:
        import io

        from PIL import ImageCms

        source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
        target = ImageCms.createProfile("sRGB")
        out_mode = "RGBA" if image.mode == "RGBA" else "RGB"
        return ImageCms.profileToProfile(image, source, target, outputMode=out_mode)
    except Exception:  # a broken profile: keep the pixels as they are
        return image.convert("RGB") if image.mode == "CMYK" else image


# --------------------------------------------------------------------------------------------------- videos
@dataclass
class VideoSource:
    """An opened video: frame count, rate, and how to fetch frames by index."""

    backend: str
    num_frames: int
    fps: float
    _handle: object = field(default=None, repr=False)
    description: dict | None = field(default=None, repr=False)
    """PyAV only, when asked for (``_pyav_open(path, describe=True)``): ``codec`` (FFmpeg's canonical name),
    ``container`` (FFmpeg's demuxer name, e.g. ``mov,mp4,m4a,3gp,3g2,mj2``), ``pix_fmt``, ``width``, ``height``,
    ``colorspace``, ``color_range`` and ``rotation`` (degrees, counter-clockwise) of the frames, as PyAV's decoded
    frames report them."""

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        """uint8 ``[N, H, W, 3]`` for source frame ``indices`` (any order, repeats allowed)."""
        if self.backend == "decord":
            return _decord_frames(self._handle, indices)
        return _pyav_frames(self._handle, indices)


def _decord_open(path: str | bytes) -> VideoSource:
    try:
        import decord
    except ImportError as err:
        raise ImportError(f"the decord backend needs decord (x86-64 Linux/Windows): {INSTALL_HINT}") from err
    decord.logging.set_level(decord.logging.QUIET)  # FFmpeg's own log lines
    with _without_decord_stderr():  # decord's C++ "ERROR opening: <path>, ..." lines (the exception says it too)
        reader = decord.VideoReader(_as_file(path), ctx=decord.cpu(0), num_threads=1)
    return VideoSource("decord", len(reader), float(reader.get_avg_fps()), reader)


@contextlib.contextmanager
def _without_decord_stderr():
    """Send file descriptor 2 to a temporary file while decord opens a file, then pass on every line that is not
    decord's ``ERROR opening`` (its native logger ignores ``decord.logging.set_level``)."""
    import sys
    import tempfile

    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable fd 2 (embedded interpreters): leave stderr alone
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            kept = [line for line in sink.read().decode("utf-8", "replace").splitlines()
                    if line.strip() and "ERROR opening" not in line]
            if kept:
                sys.stderr.write("\n".join(kept) + "\n")


def _decord_frames(reader, indices: Sequence[int]) -> np.ndarray:
    return reader.get_batch([int(i) for i in indices]).asnumpy()


def _pyav_best_stream(container):
    streams = [s for s in container.streams.video if not _is_attached_picture(s)]
    if not streams:
        return None
    # The largest picture, like FFmpeg's av_find_best_stream that decord uses (first one on ties).
    return max(streams, key=lambda s: (s.codec_context.width * s.codec_context.height, -s.index))


def _is_attached_picture(stream) -> bool:
    """Cover art stored as a one-frame video stream."""
    import av

    return bool(stream.disposition & av.stream.Disposition.attached_pic)


def _pyav_open(path: str | bytes, describe: bool = False) -> VideoSource:
    """Open with PyAV (a path, or the file's bytes) and count frames by demuxing; ``describe``: also fill
    :attr:`VideoSource.description`."""
    try:
        import av
    except ImportError as err:
        raise ImportError(f"the pyav backend needs PyAV: {INSTALL_HINT}") from err
    try:
        container = av.open(_as_file(path))
    except Exception as err:
        raise MediaError("unreadable", f"cannot open: {describe_av_error(err)}") from err
    with container:
        stream = _pyav_best_stream(container)
        if stream is None:
            raise MediaError("no_video_stream", "no video stream in the file")
        index = stream.index
        fps = float(stream.average_rate or stream.guessed_rate or 0)
        promised = int(stream.frames or 0)
        description = _describe_stream(stream) if describe else None
        need_frame = description is not None and "rotation" not in description  # see _describe_stream
        first = None
        try:
            # Demuxing counts frames without decoding them (MKV/WebM headers carry no count).
            count = 0
            for packet in container.demux(stream):
                if packet.size:
                    count += 1
                    if need_frame and first is None:
                        first = next(iter(stream.decode(packet)), None)
            if need_frame and first is None and count:
                first = next(iter(stream.decode(None)), None)  # flush: frames the decoder held back
        except Exception as err:
            raise MediaError("unreadable", f"cannot demux: {describe_av_error(err)}") from err
        if first is not None:  # what the first decoded frame says wins over the stream parameters
            description.update(pix_fmt=first.format.name, width=first.width, height=first.height,
                               colorspace=int(first.colorspace), color_range=int(first.color_range),
                               rotation=int(getattr(first, "rotation", 0) or 0))
    if count == 0:
        raise MediaError("unreadable", "the video stream holds no frames")
    if promised and promised - count > max(2, promised // 50):
        raise MediaError("truncated", f"the header promises {promised} frames, only {count} are in the file")
    if need_frame and first is None:
        raise MediaError("unreadable", "no frame could be decoded")
    return VideoSource("pyav", count, fps, (path, index), description)


def _describe_stream(stream) -> dict:
    """Stream parameters; ``rotation`` only when it is known without decoding: PyAV >= 19 lists the display matrix
    in ``coded_side_data``, so a stream without one shows its frames unrotated. Otherwise the caller decodes the
    first frame for it (and takes the frame's parameters)."""
    cc = stream.codec_context
    description = {"codec": cc.codec.canonical_name, "container": stream.container.format.name,
                   "pix_fmt": cc.pix_fmt or "", "width": cc.width, "height": cc.height,
                   "colorspace": int(cc.colorspace), "color_range": int(cc.color_range)}
    side_data = getattr(cc, "coded_side_data", None)
    # Only for video codecs: PyAV also rotates JPEG frames by their EXIF orientation, which is no stream side data.
    if (isinstance(side_data, dict) and description["codec"] in ("h264", "hevc", "vp9", "av1")
            and not any("display" in str(key).lower() for key in side_data)):
        description["rotation"] = 0
    return description


def _pyav_frames(handle, indices: Sequence[int]) -> np.ndarray:
    import av

    path, stream_index = handle
    wanted = sorted(set(int(i) for i in indices))
    frames: dict[int, np.ndarray] = {}
    last = wanted[-1]
    decoded = 0
    try:
        with av.open(_as_file(path)) as container:
            stream = container.streams[stream_index]
            stream.thread_type = "AUTO"
            want = set(wanted)
            for position, frame in enumerate(container.decode(stream)):
                decoded = position + 1
                if position in want:
                    pixels = frame.to_ndarray(format="rgb24")
                    rotation = int(getattr(frame, "rotation", 0) or 0)
                    if rotation % 360:
                        # Display matrix angle is counter-clockwise; decord shows frames rotated the same way.
                        pixels = np.rot90(pixels, k=(rotation // 90) % 4)
                    frames[position] = np.ascontiguousarray(pixels)
                if position >= last:
                    break
    except av.error.FFmpegError as err:
        if decoded == 0:
            raise MediaError("unreadable", f"decoding failed: {describe_av_error(err)}") from err
        failure = MediaError("truncated", f"the data is corrupt from frame {decoded} on ({describe_av_error(err)}); "
                             f"frames 0-{decoded - 1} decode")
        failure.decodable_frames = decoded
        if any(i >= decoded for i in wanted):
            raise failure from err
    missing = [i for i in wanted if i not in frames]
    if missing:
        raise MediaError("truncated", f"decoding stopped before frame {missing[0]} ({len(frames)} frames decoded)")
    return np.stack([frames[int(i)] for i in indices])


def describe_av_error(err: BaseException) -> str:
    """An FFmpeg error in words: ``invalid data found when processing input`` rather than
    ``[Errno 1094995529] Invalid data found when processing input: 'avcodec_send_packet()'``."""
    strerror = getattr(err, "strerror", None)
    text = strerror if isinstance(strerror, str) and strerror else str(err)
    return plain_av_message(text)


def plain_av_message(text: str) -> str:
    """Drop ``[Errno N]`` prefixes and turn FFmpeg's numeric AVERROR codes (decord prints ``-1094995529``) into
    FFmpeg's words for them."""
    text = re.sub(r"\[Errno -?\d+\]\s*", "", text)

    def words(match: re.Match) -> str:
        try:
            import av.error

            av.error.err_check(-abs(int(match.group(0))))
        except Exception as err:  # noqa: BLE001  (err_check raises the FFmpegError of that code)
            strerror = getattr(err, "strerror", None)
            if isinstance(strerror, str) and strerror and not strerror.startswith("Error number"):
                return f"'{strerror.lower()}'"
        return match.group(0)

    return re.sub(r"-?\b\d{7,}\b", words, text).strip()


def open_video(path: str | bytes, backend: str = "auto") -> VideoSource:
    """Open a video (a path, or the file's bytes) with ``backend`` (``auto`` tries decord, then PyAV). Raises
    :class:`MediaError`."""
    if backend not in BACKENDS:
        raise ValueError(f"video backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "pyav":
        return _pyav_open(path)
    try:
        return _decord_open(path)
    except ImportError:
        if backend == "decord":
            raise
    except MediaError:
        raise
    except Exception as err:  # decord raises DECORDError for everything, AV1 and audio-only included
        if backend == "decord":
            reason = "no_video_stream" if "cannot find video stream" in str(err) else "unreadable"
            raise MediaError(reason, f"decord: {_last_line(err)}") from err
    return _pyav_open(path)


# --------------------------------------------------------------------------------------------------- resize
def resize_frames(frames: np.ndarray, height: int, width: int, mode: str = "crop") -> np.ndarray:
    """Resize uint8 ``[T, H, W, 3]`` to ``[T, height, width, 3]``: cover + centre crop, or fit + centre pad.

    Bilinear with antialiasing (area-like when shrinking), on uint8, frame by frame in small groups to bound memory.
    """
    return resize_clip(torch.from_numpy(np.ascontiguousarray(frames)), height, width, mode).numpy()


def resize_clip(frames: torch.Tensor, height: int, width: int, mode: str = "crop") -> torch.Tensor:
    """:func:`resize_frames` for a uint8 tensor ``[T, H, W, 3]`` on any device.

    On the CPU the interpolation runs on uint8 (PyTorch's exact integer path); other devices have no uint8 kernel,
    so there it runs in float32 and rounds, which can differ from the CPU result by one level at a few pixels.
    """
    t, h, w, _ = frames.shape
    if (h, w) == (height, width):
        return frames
    if mode == "crop":
        scale = max(height / h, width / w)
        new_h, new_w = max(height, round(h * scale)), max(width, round(w * scale))
    elif mode == "pad":
        scale = min(height / h, width / w)
        new_h, new_w = max(1, min(height, round(h * scale))), max(1, min(width, round(w * scale)))
    else:
        raise ValueError(f"resize mode must be one of {RESIZE_MODES}, got {mode!r}")
    out = torch.zeros((t, height, width, 3), dtype=torch.uint8, device=frames.device)
    top, left = (new_h - height) // 2, (new_w - width) // 2
    on_cpu = frames.device.type == "cpu"
    for g in range(0, t, 8):
        x = frames[g : g + 8].permute(0, 3, 1, 2)  # [n, 3, H, W]
        if (new_h, new_w) != (h, w):
            x = x.contiguous(memory_format=torch.channels_last)
            x = x if on_cpu else x.float()
            x = torch.nn.functional.interpolate(x, size=(new_h, new_w), mode="bilinear", antialias=True, align_corners=False)
            x = x if on_cpu else x.round_().clamp_(0, 255).to(torch.uint8)
        x = x.permute(0, 2, 3, 1)  # [n, new_h, new_w, 3]
        if mode == "crop":
            out[g : g + 8] = x[:, top : top + height, left : left + width]
        else:
            out[g : g + 8, -top : -top + new_h, -left : -left + new_w] = x
    return out


# ------------------------------------------------------------------------------------------------ one sample
@dataclass
class SampleClips:
    """What reading one sample gives: its clips or why it failed."""

    sample: Sample
    clips: list[np.ndarray] = field(default_factory=list)
    """uint8 ``[T, H, W, 3]`` clips at the target resolution."""

    frame_indices: list[list[int]] = field(default_factory=list)
    """Source frame indices of each clip (empty lists for images)."""

    backend: str = ""
    failure: MediaError | None = None


def read_sample(sample: Sample, spec: ClipSpec, backend: str = "auto", storage=None) -> SampleClips:
    """Clips of one sample, or a failure; never raises for bad media (only for programming errors).

    ``storage``: how to reach tar shards and remote objects (a :class:`.sources.storage.Storage`; default options).
    """
    try:
        return _read_sample(sample, spec, backend, storage)
    except MediaError as err:
        return SampleClips(sample, failure=err)


def _read_sample(sample: Sample, spec: ClipSpec, backend: str, storage=None) -> SampleClips:
    from .sources.media import load_media

    if sample.text is None and sample.failure_reason is None:
        raise MediaError("no_caption", "no caption: add a sidecar .txt next to the file (a .txt member to a tar sample)")
    media = load_media(sample, storage)  # the local path, or the bytes of a tar member / remote object
    if sample.is_image:
        frame = load_image(media)[None]  # [1, H, W, 3]
        clip = resize_frames(frame, spec.height, spec.width, spec.resize_mode)
        return SampleClips(sample, [clip], [[]], backend="pillow")
    try:
        return _read_video(sample, spec, open_video(media, backend))
    except MediaError:
        raise
    except Exception as err:
        if backend != "auto":
            raise MediaError("unreadable", f"{backend}: {_last_line(err)}") from err
        # decord opened the file but failed to decode it: PyAV gets its chance (and reports its own failure).
        return _read_video(sample, spec, _pyav_open(media))


def _read_video(sample: Sample, spec: ClipSpec, source: VideoSource) -> SampleClips:
    begin, end = frame_range(sample, source.num_frames, source.fps)
    plans = plan_clips(begin, end, source.fps, spec)
    try:
        frames = source.get_frames(np.concatenate(plans).tolist())
    except MediaError as err:
        usable = err.decodable_frames
        if not usable or usable <= begin or usable >= end:
            raise
        # Corrupt from frame `usable` on: plan again on the decodable head (raises too_short if it holds no clip).
        plans = plan_clips(begin, usable, source.fps, spec)
        frames = source.get_frames(np.concatenate(plans).tolist())
        log.warning("%s: %s; its clips are taken from frames %d-%d", sample.path, err.message, begin, usable - 1)
    clips, at = [], 0
    for plan in plans:
        clips.append(resize_frames(frames[at : at + len(plan)], spec.height, spec.width, spec.resize_mode))
        at += len(plan)
    return SampleClips(sample, clips, [p.tolist() for p in plans], backend=source.backend)


def _last_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return plain_av_message((lines[-1] if lines else type(err).__name__)[:300])
