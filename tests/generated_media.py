"""Small generated stand-ins for the files of ``../shared/media`` that the tests read without needing a real camera
clip: the same names, containers, codecs, pixel formats, sizes, frame rates and frame counts (see
``../shared/media/README.md``), with synthetic moving content. The shared folder holds real-world footage that
may not be redistributed, so a clone carries none of it; ``media_dir`` (tests/conftest.py) falls back to these.

What is *not* generated is what only a real file has (display-matrix rotation, two video streams, a VFR phone
clip, a bitstream whose seek points are broken, 10-bit or 4:4:4 sources, EXIF/ICC images): the tests of those
properties take ``shared_media_dir`` and skip without it.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np

# name -> (container format, video codec, (width, height), fps, frames, audio codec or None, pixel format)
VIDEOS: dict[str, tuple[str, str, tuple[int, int], Fraction, int, str | None, str]] = {
    "plant_tiny_64x48.mp4": ("mp4", "libx264", (64, 48), Fraction(45000, 1499), 36, None, "yuv420p"),
    "keyboard_rot0_3frames.mov": ("mov", "libx264", (568, 320), Fraction(30), 3, None, "yuv420p"),
    "nasa_single_frame.mp4": ("mp4", "libx264", (480, 270), Fraction(30000, 1001), 1, None, "yuv420p"),
    "windowsill_plant_aac.mp4": ("mp4", "libx264", (320, 240), Fraction(45000, 1499), 36, "aac", "yuv420p"),
    "cockatoo_portrait_360x640.mp4": ("mp4", "libx264", (360, 640), Fraction(20), 40, None, "yuv420p"),
    "cockatoo_hevc.mp4": ("mp4", "libx265", (640, 360), Fraction(20), 40, None, "yuv420p"),
    "pancake_vp9_opus.webm": ("webm", "libvpx-vp9", (426, 240), Fraction(30), 90, "libopus", "yuv420p"),
    "archive_shelves_sar16x11.mp4": ("mp4", "libx264", (704, 576), Fraction(25), 131, "aac", "yuv420p"),
    "cockatoo_av1.mp4": ("mp4", "libsvtav1", (480, 270), Fraction(20), 40, None, "yuv420p"),
    "cockatoo_1080p_1.5s.mp4": ("mp4", "libx264", (1920, 1080), Fraction(20), 30, None, "yuv420p"),
    "dog_odd_638x359.webm": ("webm", "libvpx-vp9", (638, 359), Fraction(10), 24, None, "yuv420p"),
    "pancake_h264_opus.mkv": ("matroska", "libx264", (426, 240), Fraction(30), 310, "libopus", "yuv420p"),
    "pancake_hevc_main10.mp4": ("mp4", "libx265", (426, 240), Fraction(30), 60, None, "yuv420p10le"),
    "pancake_gray_h264.mp4": ("mp4", "libx264", (426, 240), Fraction(30), 60, None, "gray"),
    "pancake_mjpeg_pcm.avi": ("avi", "mjpeg", (426, 240), Fraction(30), 60, None, "yuvj420p"),
}
#: Stored pixel aspect ratios that differ from 1:1 (the anamorphic PAL clip displays at 16:9).
SAMPLE_ASPECT = {"archive_shelves_sar16x11.mp4": Fraction(16, 11)}

#: Files of ../shared/media with a property that only the real file has, and so no stand-in: the tests that read
#: them take ``shared_media_dir`` or call :func:`need_media`, and skip without ../shared/media.
REAL_ONLY = {
    "keyboard_rot90_3frames.mov": "display-matrix rotation metadata of a real phone clip",
    "dog_fireplace_vfr_aac.mp4": "a real variable-frame-rate clip with 180-degree display rotation",
    "nasa_jwst_multistream.mp4": "two video streams (different sizes and rates) with audio and subtitle tracks",
    "cockatoo_yuv444_mp3.mp4": "a 4:4:4 H.264 bitstream whose sync samples are not clean random-access points",
    "street_photo_phone.jpg": "a real phone photo with its camera EXIF",
    "wood_texture_icc.jpg": "a real JPEG with an embedded ICC profile",
}
# name -> caption (the captions of the generated content, not of the real clips)
CAPTIONS = {
    "plant_tiny_64x48.mp4": "A tiny clip of a green blob drifting over a warm gradient.",
    "keyboard_rot0_3frames.mov": "Three frames of grey stripes sliding to the right.",
    "nasa_single_frame.mp4": "A single frame of a blue and orange gradient.",
    "windowsill_plant_aac.mp4": "A green blob drifting over a warm gradient, with a tone.",
    "cockatoo_portrait_360x640.mp4": "A tall clip of a white disc moving down a teal background.",
    "cockatoo_hevc.mp4": "A wide clip of a white disc moving across a teal background.",
    "pancake_vp9_opus.webm": "A yellow disc rising and falling over a brown gradient, with a tone.",
    "cat_chelsea.png": "A still image of orange and grey bands.",
    "cat_tiny_17x13.png": "A very small image of a red square on grey.",
    "broken_truncated.mp4": "A clip cut off in the middle of the file.",
    "broken_empty.mp4": "An empty file.",
    "broken_text.mp4": "A text file with a video name.",
    "audio_only.m4a": "A tone with no picture.",
    "archive_shelves_sar16x11.mp4": "Anamorphic frames of a gradient with a disc, with a tone.",
    "cockatoo_av1.mp4": "An AV1 clip of a disc crossing a gradient.",
    "cockatoo_1080p_1.5s.mp4": "A full HD clip of a disc crossing a gradient.",
    "dog_odd_638x359.webm": "An odd-sized clip of a disc crossing a gradient.",
    "pancake_h264_opus.mkv": "A ten second Matroska clip of a disc, with a tone.",
    "pancake_hevc_main10.mp4": "A ten-bit HEVC clip of a disc crossing a gradient.",
    "pancake_gray_h264.mp4": "A grey clip of a disc crossing a gradient.",
    "pancake_mjpeg_pcm.avi": "A motion JPEG clip of a disc crossing a gradient.",
    "cameraman_gray.png": "A grey still image of a gradient with a disc.",
    "astronaut_rgba.png": "A still image whose corners fade to transparent.",
    "astronaut_cmyk.jpg": "A still image stored in CMYK.",
    "cat_chelsea_16bit.png": "A sixteen-bit still image of a gradient.",
    "cat_exif_orientation6.jpg": "A still image stored sideways with an EXIF orientation.",
    "missing_clip.mp4": "A file that does not exist.",
}


def _frame(width: int, height: int, t: int, seed: int) -> np.ndarray:
    """An RGB uint8 frame: a smooth gradient (differs per file) with a disc that moves with ``t``."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    rng = np.random.default_rng(seed)
    base = rng.uniform(40, 200, size=3)
    slope = rng.uniform(-60, 60, size=(3, 2))
    img = base + slope[:, 0] * (xx[..., None] / width) + slope[:, 1] * (yy[..., None] / height)
    cx = width * (0.2 + 0.6 * ((t * 0.07) % 1.0))
    cy = height * (0.5 + 0.3 * np.sin(t / 5))
    radius = max(2.0, min(width, height) / 6)
    img[(xx - cx) ** 2 + (yy - cy) ** 2 < radius**2] = (235, 235, 235)
    return np.clip(img, 0, 255).astype(np.uint8)


def write_video(path: Path, fmt: str, codec: str, size: tuple[int, int], fps: Fraction, frames: int,
                audio: str | None, pix_fmt: str, options: dict[str, str] | None = None) -> None:
    import os

    import av

    os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1: errors only (it prints its configuration otherwise)
    width, height = size
    seed = sum(path.name.encode())
    with av.open(str(path), "w", format=fmt, options=options or {}) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if path.name in SAMPLE_ASPECT:
            stream.codec_context.sample_aspect_ratio = SAMPLE_ASPECT[path.name]
        if codec == "libx265":
            stream.codec_tag = "hvc1"  # as the shared file: the tag Apple players need
            stream.options = {"x265-params": "log-level=error"}
        astream = None
        if audio:
            astream = container.add_stream(audio, rate=48000)
            astream.layout = "mono"
        for t in range(frames):
            frame = av.VideoFrame.from_ndarray(_frame(width, height, t, seed), format="rgb24")
            container.mux(stream.encode(frame.reformat(format=pix_fmt)))
        container.mux(stream.encode())
        if astream is not None:
            samples = int(48000 * frames / fps)
            tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(samples) / 48000)).astype(np.float32)
            chunk = 960 if audio == "libopus" else 1024
            for start in range(0, samples, chunk):
                part = tone[start : start + chunk]
                part = np.pad(part, (0, chunk - len(part)))[None]  # [1 channel, samples]
                aframe = av.AudioFrame.from_ndarray(part, format="fltp", layout="mono")
                aframe.sample_rate = 48000
                container.mux(astream.encode(aframe))
            container.mux(astream.encode())


def make_generated_media(folder: Path) -> Path:
    """Write the stand-ins and a ``captions.jsonl`` listing them (plus the broken and missing entries) into
    ``folder``; returns ``folder``."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for name, spec in VIDEOS.items():
        write_video(folder / name, *spec)
    _write_images(folder)
    tiny = np.full((13, 17, 3), 128, np.uint8)
    tiny[3:10, 4:12] = (200, 30, 30)
    Image.fromarray(tiny).save(folder / "cat_tiny_17x13.png")
    # Broken inputs as in the shared README: an H.264 + AAC MP4 with the moov atom in front, cut at 55 % (its
    # header promises 90 frames; a decodable head remains), an empty file, plain text, and audio without video.
    whole = folder / "broken_whole.mp4"
    write_video(whole, "mp4", "libx264", (426, 240), Fraction(30), 90, "aac", "yuv420p",
                options={"movflags": "faststart"})
    data = whole.read_bytes()
    (folder / "broken_truncated.mp4").write_bytes(data[: int(len(data) * 0.55)])
    whole.unlink()
    (folder / "broken_empty.mp4").write_bytes(b"")
    (folder / "broken_text.mp4").write_text("This is not a video file. It is plain text with a video file name.\n")
    _write_audio_only(folder / "audio_only.m4a")
    (folder / "captions.jsonl").write_text(
        "".join(json.dumps({"path": name, "text": text}) + "\n" for name, text in CAPTIONS.items()))
    return folder


def _write_images(folder: Path) -> None:
    """The image stand-ins, with the properties of the shared ones (see its README): odd width, EXIF Orientation=6
    (stored sideways), RGBA with transparent corners, CMYK JPEG, 8-bit grey, 16 bits per channel."""
    from PIL import Image

    cat = _frame(451, 300, 0, 1)  # [300, 451, 3]
    Image.fromarray(cat).save(folder / "cat_chelsea.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    Image.fromarray(np.ascontiguousarray(np.rot90(cat))).save(folder / "cat_exif_orientation6.jpg", quality=95,
                                                               exif=exif.tobytes())  # stored 300 wide, 451 high
    astronaut = _frame(512, 512, 3, 2)
    yy, xx = np.mgrid[0:512, 0:512] / 511.0 - 0.5
    alpha = np.clip((0.5 - np.hypot(yy, xx)) / 0.2, 0, 1)  # opaque centre, fully transparent corners
    Image.fromarray(np.dstack([astronaut, (alpha * 255).astype(np.uint8)]), "RGBA").save(folder / "astronaut_rgba.png")
    Image.fromarray(astronaut).convert("CMYK").save(folder / "astronaut_cmyk.jpg", quality=90)
    Image.fromarray(_frame(512, 512, 5, 3)[..., 1]).save(folder / "cameraman_gray.png")  # mode L
    deep = _frame(300, 200, 7, 4).astype(np.uint16) * 257 + np.arange(300, dtype=np.uint16)[None, :, None] % 200
    _write_png16(folder / "cat_chelsea_16bit.png", deep)


def _write_png16(path: Path, rgb: np.ndarray) -> None:
    """A 16-bit-per-channel RGB PNG (Pillow writes 16 bits only for one channel): ``rgb`` ``[H, W, 3]`` uint16."""
    import struct
    import zlib

    h, w, _ = rgb.shape
    rows = b"".join(b"\x00" + rgb[y].astype(">u2").tobytes() for y in range(h))  # filter type 0 per row

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)  # 16 bits, colour type 2 (RGB)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def _write_audio_only(path: Path) -> None:
    """AAC-LC stereo, 8 kHz, 4.0 s, no video stream (as the shared ``audio_only.m4a``)."""
    import av

    rate, seconds = 8000, 4.0
    t = np.arange(int(rate * seconds)) / rate
    tone = np.stack([np.sin(2 * np.pi * 300 * t), np.sin(2 * np.pi * 500 * t)]).astype(np.float32) * 0.2
    with av.open(str(path), "w", format="ipod") as container:
        stream = container.add_stream("aac", rate=rate)
        stream.layout = "stereo"
        for start in range(0, tone.shape[1], 1024):
            part = tone[:, start : start + 1024]
            part = np.pad(part, ((0, 0), (0, 1024 - part.shape[1])))  # [2 channels, 1024 samples]
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(part), format="fltp", layout="stereo")
            frame.sample_rate = rate
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
