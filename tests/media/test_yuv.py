"""YUV 4:2:0 -> RGB in torch (nemo_cosmos_tokenizer.media.yuv) against FFmpeg's own conversion through PyAV, pixel
for pixel: the arithmetic the nvdec backend applies to NVDEC's planes."""

from __future__ import annotations

import platform
from fractions import Fraction

import numpy as np
import pytest
import torch

from nemo_cosmos_tokenizer.media.yuv import COLOURSPACES, nv12_to_rgb, swscale_coefficients, yuv420_to_rgb

av = pytest.importorskip("av")
pytestmark = pytest.mark.skipif(
    platform.machine() not in ("x86_64", "AMD64"), reason="swscale's x86-64 SIMD arithmetic is the reference"
)


def _planes(frame) -> list[torch.Tensor]:
    """Y, U, V of a decoded 8-bit 4:2:0 frame, without line padding."""
    return [
        torch.from_numpy(np.ascontiguousarray(np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width]))
        for p in frame.planes
    ]


def _full_range(frame) -> bool:
    return frame.format.name == "yuvj420p" or int(frame.color_range) == 2


def _compare(path, max_frames: int = 6) -> int:
    """Frames of ``path`` compared (all must be equal); 0 if the video is not 8-bit even-sized 4:2:0."""
    compared = 0
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            if (frame.format.name not in ("yuv420p", "yuvj420p") or frame.width % 2 or frame.height % 2
                    or int(frame.colorspace) not in COLOURSPACES):
                return 0
            ours = yuv420_to_rgb(*_planes(frame), int(frame.colorspace), _full_range(frame)).numpy()
            theirs = frame.to_ndarray(format="rgb24")
            assert ours.shape == theirs.shape
            diff = np.abs(ours.astype(int) - theirs)
            assert diff.max() == 0, f"{path.name} frame {compared}: {int((diff > 0).sum())} values differ, max {diff.max()}"
            compared += 1
            if compared == max_frames:
                break
    return compared


def test_equals_pyav_on_the_shared_media(shared_media_dir):
    checked = {}
    for path in sorted(shared_media_dir.iterdir()):  # the real files: which of them are 4:2:0 is part of the check
        if path.suffix.lower() not in (".mp4", ".mov", ".mkv", ".webm", ".avi"):
            continue
        try:
            checked[path.name] = _compare(path)
        except av.error.FFmpegError:
            continue  # the broken files
    converted = [name for name, n in checked.items() if n]
    # H.264 / HEVC / VP9 / AV1, BT.601 and BT.709, limited and full range, rotated, 1080p, tiny, portrait
    assert {"cockatoo_1080p_1.5s.mp4", "cockatoo_hevc.mp4", "cockatoo_av1.mp4", "pancake_vp9_opus.webm",
            "keyboard_rot90_3frames.mov", "pancake_gray_h264.mp4", "plant_tiny_64x48.mp4"} <= set(converted)
    assert checked["cockatoo_yuv444_mp3.mp4"] == 0 and checked["dog_odd_638x359.webm"] == 0  # not 4:2:0 / odd


def _write_random_clip(path, pix_fmt: str, matrix: str | None, frames: int = 3) -> None:
    """Random RGB content (every corner of the YUV cube, values below 16 and above 235 included)."""
    rng = np.random.default_rng(len(str(path)))
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(24))
        stream.width, stream.height, stream.pix_fmt = 96, 64, pix_fmt
        if matrix:
            stream.options = {"x264-params": f"colormatrix={matrix}"}
        for _ in range(frames):
            image = rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.mark.parametrize("matrix", [None, "bt709", "smpte170m", "bt470bg", "bt2020nc"])
@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuvj420p"])
def test_equals_pyav_for_each_matrix_and_range(tmp_path, matrix, pix_fmt):
    path = tmp_path / f"{matrix}-{pix_fmt}.mp4"
    _write_random_clip(path, pix_fmt, matrix)
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        expected = {None: 2, "bt709": 1, "smpte170m": 6, "bt470bg": 5, "bt2020nc": 9}[matrix]
        assert int(frame.colorspace) == expected and _full_range(frame) == (pix_fmt == "yuvj420p")
    assert _compare(path) == 3


def test_nv12_layout_and_errors():
    rng = np.random.default_rng(0)
    y = torch.from_numpy(rng.integers(0, 256, (2, 8, 12), dtype=np.uint8))
    u = torch.from_numpy(rng.integers(0, 256, (2, 4, 6), dtype=np.uint8))
    v = torch.from_numpy(rng.integers(0, 256, (2, 4, 6), dtype=np.uint8))
    nv12 = torch.cat([y, torch.stack([u, v], -1).reshape(2, 4, 12)], dim=1)  # [2, 12, 12]: Y rows, then U/V pairs
    assert torch.equal(nv12_to_rgb(nv12, 1, False), yuv420_to_rgb(y, u, v, 1, False))
    with pytest.raises(ValueError, match="even-sized"):
        yuv420_to_rgb(y[:, :7], u, v)
    with pytest.raises(ValueError, match="not supported"):
        swscale_coefficients(7, False)
    # limited range: black and white luma at neutral chroma map to 0 and 255
    grey = yuv420_to_rgb(torch.tensor([[16, 235]] * 2, dtype=torch.uint8), torch.tensor([[128]], dtype=torch.uint8),
                         torch.tensor([[128]], dtype=torch.uint8))
    assert grey[0, 0].tolist() == [0, 0, 0] and grey[0, 1].tolist() == [255, 255, 255]
