"""The MP4/MOV box reader that spares the NVDEC probe a decoded frame (nemo_cosmos_tokenizer.media.mp4): it may
answer "unrotated" only where FFmpeg gives no stream a display matrix, checked against PyAV's decoded frames."""

from __future__ import annotations

import struct
from fractions import Fraction

import numpy as np
import pytest

from nemo_cosmos_tokenizer.media import mp4
from nemo_cosmos_tokenizer.media.decode import pyav_open

av = pytest.importorskip("av")


def _write(path, rotation: int | None, audio: bool = False, faststart: bool = False) -> None:
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), mode="w", options=options) as container:
        stream = container.add_stream("mpeg4", rate=Fraction(8))
        stream.width, stream.height, stream.pix_fmt = 32, 16, "yuv420p"
        if rotation is not None:
            stream.set_display_rotation(rotation)
        if audio:
            container.add_stream("aac", rate=8000)
        for k in range(3):
            frame = av.VideoFrame.from_ndarray(np.full((16, 32, 3), 40 * k, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _first_frame_rotation(path) -> int:
    with av.open(str(path)) as container:
        return int(next(container.decode(video=0)).rotation or 0)


@pytest.mark.parametrize("rotation", [None, 0, 90, 180, -90])
@pytest.mark.parametrize("faststart", [False, True])
def test_unrotated_only_where_frames_are_not_rotated(tmp_path, rotation, faststart):
    path = tmp_path / f"clip-{rotation}-{faststart}.mp4"
    _write(path, rotation, audio=rotation == 180, faststart=faststart)  # moov after or before the media data
    decoded = _first_frame_rotation(path)
    assert mp4.unrotated(str(path)) == (decoded == 0), (rotation, decoded)
    assert mp4.unrotated(path.read_bytes()) == mp4.unrotated(str(path))  # a tar member's bytes read the same way


def test_probe_without_a_decoded_frame_describes_what_decoding_shows(tmp_path):
    """The shortcut changes where the description comes from (the stream's parameters instead of the first frame)
    but not what it says."""
    for rotation in (None, 90):
        path = tmp_path / f"r{rotation}.mp4"
        _write(path, rotation)
        source = pyav_open(str(path), describe=True, counting="index")
        with av.open(str(path)) as container:
            frame = next(container.decode(video=0))
        want = {"pix_fmt": frame.format.name, "width": frame.width, "height": frame.height,
                "colorspace": int(frame.colorspace), "color_range": int(frame.color_range),
                "rotation": int(frame.rotation or 0)}
        assert {k: source.description[k] for k in want} == want


def _box(kind: bytes, payload: bytes, large: bool = False) -> bytes:
    if large:
        return struct.pack(">I4sQ", 1, kind, len(payload) + 16) + payload
    return struct.pack(">I4s", len(payload) + 8, kind) + payload


def _tkhd(matrix) -> bytes:
    return _box(b"tkhd", bytes(4) + bytes(20) + bytes(8) + bytes(8) + struct.pack(">9i", *matrix) + bytes(8))


def _mvhd(matrix) -> bytes:
    return _box(b"mvhd", bytes(4) + bytes(16) + bytes(4 + 2 + 10) + struct.pack(">9i", *matrix) + bytes(24 + 4))


def test_box_layouts_and_damage():
    turned = (0, 65536, 0, -65536, 0, 0, 0, 0, 1 << 30)
    good = _box(b"ftyp", b"isom" + bytes(4)) + _box(b"moov", _mvhd(mp4.IDENTITY) + _box(b"trak", _tkhd(mp4.IDENTITY)))
    assert mp4.unrotated(good)
    # a 64-bit sized media box before the index is skipped by its header
    assert mp4.unrotated(_box(b"mdat", bytes(100), large=True) + good)
    assert not mp4.unrotated(_box(b"moov", _mvhd(turned) + _box(b"trak", _tkhd(mp4.IDENTITY))))  # the movie turned
    assert not mp4.unrotated(_box(b"moov", _mvhd(mp4.IDENTITY) + _box(b"trak", _tkhd(turned))))
    assert not mp4.unrotated(_box(b"moov", _mvhd(mp4.IDENTITY)))  # no track: nothing known
    assert not mp4.unrotated(good[:-10])  # cut off inside the index
    assert not mp4.unrotated(b"not an mp4 at all")
    assert not mp4.unrotated("/no/such/file.mp4")
