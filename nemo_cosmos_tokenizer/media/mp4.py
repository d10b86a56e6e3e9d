"""Whether an MP4/MOV file shows its frames unrotated, read from its box headers: the NVDEC reader's probe then needs
no decoded frame.

Why: PyAV 18 does not expose a stream's display matrix (``coded_side_data`` came in PyAV 19), so the probe decoded
the first frame just to read ``frame.rotation`` - on the CPU, after ``av.open`` had already decoded several frames
of an H.264 stream to guess its reordering delay. Without that frame a probe of the benchmark's sources takes
64 ms instead of 138 (1080p H.264), 258 instead of 544 (4K H.264) and 1.5 instead of 96 (1080p HEVC), on one core
of this project's 2-core CI machine; probing was the largest share of the reader's time (BENCHMARKS.md, issue 22).

FFmpeg's mov demuxer gives a stream a display matrix only when its track header (``tkhd``) matrix multiplied by the
movie header (``mvhd``) matrix is not the identity. So when every ``trak``'s ``tkhd`` matrix and the ``mvhd``
matrix are the identity, no stream of the file is rotated. Anything else - another matrix, a box this reader does
not follow, a damaged file - answers ``False``, and the caller decodes a frame as before.
"""

from __future__ import annotations

import io
import struct
from typing import BinaryIO

#: The identity transform of ISO/IEC 14496-12 (16.16 fixed point, the last column 2.30).
IDENTITY = (0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000)
#: A moov box larger than this is not read (an hours-long file's index; the caller decodes a frame instead).
MAX_MOOV_BYTES = 64 << 20


def _boxes(data: bytes, start: int = 0, end: int | None = None):
    """``(type, payload_start, payload_end)`` of the boxes in ``data[start:end]``."""
    end = len(data) if end is None else end
    at = start
    while at + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, at)
        header = 8
        if size == 1:
            if at + 16 > end:
                return
            size, header = struct.unpack_from(">Q", data, at + 8)[0], 16
        elif size == 0:
            size = end - at
        if size < header or at + size > end:
            raise ValueError(f"box {kind!r} at {at} runs past its parent")
        yield kind, at + header, at + size
        at += size


def _read_moov(f: BinaryIO) -> bytes | None:
    """The payload of the top-level ``moov`` box, reading only box headers on the way."""
    while True:
        header = f.read(8)
        if len(header) < 8:
            return None
        size, kind = struct.unpack(">I4s", header)
        skip = size - 8
        if size == 1:
            large = f.read(8)
            if len(large) < 8:
                return None
            skip = struct.unpack(">Q", large)[0] - 16
        elif size == 0:
            return f.read(MAX_MOOV_BYTES + 1) if kind == b"moov" else None
        if skip < 0:
            return None
        if kind == b"moov":
            return f.read(skip) if skip <= MAX_MOOV_BYTES else None
        f.seek(skip, io.SEEK_CUR)


def _matrix(payload: bytes, start: int, kind: bytes) -> tuple[int, ...]:
    """The 3x3 matrix of an ``mvhd`` or ``tkhd`` box (version 0 or 1 layouts)."""
    version = payload[start]
    if kind == b"mvhd":  # times and timescale, duration; rate, volume, reserved
        offset = start + 4 + (28 if version == 1 else 16) + 4 + 2 + 10
    else:  # times, track id, reserved, duration; reserved, layer, group, volume, reserved
        offset = start + 4 + (32 if version == 1 else 20) + 8 + 8
    return struct.unpack_from(">9i", payload, offset)


def unrotated(media: str | bytes) -> bool:
    """``True`` when the MP4/MOV file ``media`` (a path or its bytes) has identity ``mvhd`` and ``tkhd`` matrices,
    i.e. FFmpeg gives none of its streams a display matrix; ``False`` when it may, or cannot be read this way."""
    try:
        if isinstance(media, (bytes, bytearray, memoryview)):
            moov = _read_moov(io.BytesIO(media))
        else:
            with open(media, "rb") as f:
                moov = _read_moov(f)
        if moov is None:
            return False
        tracks = 0
        for kind, start, end in _boxes(moov):
            if kind == b"mvhd" and _matrix(moov, start, kind) != IDENTITY:
                return False
            if kind == b"trak":
                headers = [(s, e) for k, s, e in _boxes(moov, start, end) if k == b"tkhd"]
                if len(headers) != 1 or _matrix(moov, headers[0][0], b"tkhd") != IDENTITY:
                    return False
                tracks += 1
        return tracks > 0
    except (OSError, ValueError, struct.error, IndexError):
        return False
