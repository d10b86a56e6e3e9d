"""Opening videos on the CPU (decord or PyAV): frame count, rate, frames by index.

``decord`` (random access by frame index) or ``pyav`` (sequential decode, no seeking: PyAV seeks land on unclean
sync samples in some files). ``auto`` tries decord and falls back to PyAV when decord is not installed or cannot
open the file (AV1, some containers). Both give the same frames: PyAV applies the display rotation (decord does),
takes the largest video stream (decord's choice in multi-stream files) and counts frames by demuxing (MKV/WebM
headers carry no count). Pixels are identical for 8-bit content; 10-bit and odd-sized 4:2:0 video differ by a few
levels (decord bundles FFmpeg 4.1's colour conversion).

Media come as a local path or as bytes (a tar member, an object fetched from storage), which both readers open from
memory. Failures raise :class:`MediaError` with a short ``reason`` code; a video whose data turns corrupt part-way
raises ``truncated`` with :attr:`MediaError.decodable_frames` set (the caller decides whether the head is enough).
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from . import mp4
from .failures import MediaError
from .images import as_file

INSTALL_HINT = 'pip install "nemo-cosmos-tokenizer[data]"'
BACKENDS = ("auto", "decord", "pyav")


@dataclass
class VideoSource:
    """An opened video: frame count, rate, and how to fetch frames by index."""

    backend: str
    num_frames: int
    fps: float
    _handle: object = field(default=None, repr=False)
    description: dict | None = field(default=None, repr=False)
    """PyAV only, when asked for (``pyav_open(path, describe=True)``): ``codec`` (FFmpeg's canonical name),
    ``container`` (FFmpeg's demuxer name, e.g. ``mov,mp4,m4a,3gp,3g2,mj2``), ``pix_fmt``, ``width``, ``height``,
    ``colorspace``, ``color_range`` and ``rotation`` (degrees, counter-clockwise) of the frames, as PyAV's decoded
    frames report them."""

    counted: str = "demux"
    """How :attr:`num_frames` was found: ``demux`` (every packet counted) or ``index`` (the MP4/MOV sample table,
    its end checked to be in the file)."""

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
        reader = decord.VideoReader(as_file(path), ctx=decord.cpu(0), num_threads=1)
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


#: Containers whose index (MP4/MOV ``stsz``: one entry per sample) gives the frame count without demuxing.
INDEXED_CONTAINERS = ("mov", "mp4")
#: Codecs whose frames are rotated only by a container's display matrix (PyAV also turns JPEG frames by their EXIF
#: orientation, which no container header shows).
VIDEO_CODECS = ("h264", "hevc", "vp9", "av1")


def pyav_open(path: str | bytes, describe: bool = False, counting: str = "demux") -> VideoSource:
    """Open with PyAV (a path, or the file's bytes) and count frames by demuxing; ``describe``: also fill
    :attr:`VideoSource.description`.

    ``counting="index"``: take the count from the container's index where it has one (MP4/MOV: the sample table lists
    every frame) and demux no further than the first frame that ``describe`` may need - the NVDEC reader's probe,
    whose decoder demuxes the file once more anyway. The index's end is checked to be in the file (demuxing from
    the last keyframe); a file cut off after its index, or one whose end cannot be checked, is demuxed in full, so
    the count and the ``truncated`` failure are the demux count's. Other containers are demuxed."""
    try:
        import av
    except ImportError as err:
        raise ImportError(f"the pyav backend needs PyAV: {INSTALL_HINT}") from err
    try:
        container = av.open(as_file(path))
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
        if (description is not None and "rotation" not in description and description["codec"] in VIDEO_CODECS
                and any(name in INDEXED_CONTAINERS for name in container.format.name.split(","))
                and mp4.unrotated(path)):
            description["rotation"] = 0  # no display matrix in the file: no frame to decode for it (see .mp4)
        need_frame = description is not None and "rotation" not in description  # see _describe_stream
        first = None
        from_index = (counting == "index" and promised > 0
                      and any(name in INDEXED_CONTAINERS for name in container.format.name.split(",")))
        try:
            # Demuxing counts frames without decoding them (MKV/WebM headers carry no count).
            count = 0
            for packet in container.demux(stream):
                if packet.size:
                    count += 1
                    if need_frame and first is None:
                        first = next(iter(stream.decode(packet)), None)
                    if from_index and (first is not None or not need_frame):
                        break  # the index has the count; nothing more to learn from the packets
            if need_frame and first is None and count:
                first = next(iter(stream.decode(None)), None)  # flush: frames the decoder held back
        except Exception as err:
            raise MediaError("unreadable", f"cannot demux: {describe_av_error(err)}") from err
        if from_index and count:
            if _tail_present(container, stream):
                count = promised
            else:  # the index lists frames the file does not hold (cut off), or cannot be checked: demux them all
                from_index = False
                count = _demux_count(path, index)
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
    return VideoSource("pyav", count, fps, (path, index), description, "index" if from_index else "demux")


def _tail_present(container, stream) -> bool:
    """Whether the frames at the end of the index are in the file: demuxing from the last keyframe must reach the
    stream's end time without a corrupt packet (a file cut off after its index does not)."""
    if not stream.duration or stream.time_base is None:
        return False
    end = (stream.start_time or 0) + stream.duration
    try:
        container.seek(end, stream=stream, backward=True, any_frame=False)
        reached = max((p.pts + (p.duration or 0) for p in container.demux(stream)
                       if p.size and p.pts is not None and not p.is_corrupt), default=None)
    except Exception:  # noqa: BLE001 - any demux error: not verified
        return False
    return reached is not None and reached >= end


def _demux_count(path: str | bytes, stream_index: int) -> int:
    import av

    with av.open(as_file(path)) as container:
        return sum(1 for packet in container.demux(container.streams[stream_index]) if packet.size)


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
    if (isinstance(side_data, dict) and description["codec"] in VIDEO_CODECS
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
        with av.open(as_file(path)) as container:
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
        return pyav_open(path)
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
            raise MediaError(reason, f"decord: {last_line(err)}") from err
    return pyav_open(path)


def last_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return plain_av_message((lines[-1] if lines else type(err).__name__)[:300])
