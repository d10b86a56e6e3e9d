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
    import av

    width, height = size
    seed = sum(path.name.encode())
    with av.open(str(path), "w", format=fmt, options=options or {}) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
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
    Image.fromarray(_frame(451, 300, 0, 1)).save(folder / "cat_chelsea.png")  # odd width, as the real one
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
