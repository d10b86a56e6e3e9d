"""Synthetic demo inputs for the offline quickstart: small generated clips, captions, a text tokenizer.

:func:`make_sample_inputs` writes into a folder:

* a few short H.264 ``.mp4`` clips of moving shapes and colour ramps (PyAV), one PNG image;
* ``captions.jsonl`` (the manifest format of :mod:`.manifest`) describing each file;
* ``text_tokenizer.model``: a small sentencepiece model trained on those captions (byte fallback, no
  normalisation, so every caption round-trips exactly).

Everything is generated from fixed numbers; nothing is downloaded.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

INSTALL_HINT = 'pip install "nemo-cosmos-tokenizer[data]"'

WIDTH, HEIGHT, FPS, FRAMES = 128, 96, 12, 24


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    return np.mgrid[0:h, 0:w].astype(np.float32)


def _moving_square(t: int) -> np.ndarray:
    frame = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    frame[:] = (30, 60, 160)
    x = 8 + t * 4
    frame[32:64, x : x + 32] = (220, 40, 40)
    return frame


def _bouncing_ball(t: int) -> np.ndarray:
    yy, xx = _grid(HEIGHT, WIDTH)
    cy = 20 + abs((t * 6) % 112 - 56)
    cx = 64 + 30 * np.sin(t / 4)
    frame = np.full((HEIGHT, WIDTH, 3), 20, np.uint8)
    frame[(yy - cy) ** 2 + (xx - cx) ** 2 < 14**2] = 240
    return frame


def _scrolling_stripes(t: int) -> np.ndarray:
    _, xx = _grid(HEIGHT, WIDTH)
    band = ((xx + 3 * t) // 12 % 2).astype(bool)
    frame = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    frame[band] = (40, 170, 60)
    frame[~band] = (230, 210, 40)
    return frame


def _brightening_gradient(t: int) -> np.ndarray:
    yy, xx = _grid(HEIGHT, WIDTH)
    level = (xx / WIDTH) * (60 + 8 * t)
    return np.repeat(np.clip(level, 0, 255).astype(np.uint8)[:, :, None], 3, axis=2)


def _rotating_bar(t: int) -> np.ndarray:
    yy, xx = _grid(HEIGHT, WIDTH)
    angle = t * np.pi / 24
    dist = np.abs((xx - WIDTH / 2) * np.sin(angle) - (yy - HEIGHT / 2) * np.cos(angle))
    frame = np.full((HEIGHT, WIDTH, 3), (250, 245, 230), np.uint8)
    frame[(dist < 5) & ((xx - WIDTH / 2) ** 2 + (yy - HEIGHT / 2) ** 2 < 40**2)] = (120, 40, 140)
    return frame


CLIPS: dict[str, tuple[Callable[[int], np.ndarray], str]] = {
    "red_square.mp4": (_moving_square, "A red square slides from left to right across a blue background."),
    "bouncing_ball.mp4": (_bouncing_ball, "A white ball bounces up and down and sways sideways on a dark background."),
    "stripes.mp4": (_scrolling_stripes, "Green and yellow vertical stripes scroll slowly to the left."),
    "gradient.mp4": (_brightening_gradient, "A grey gradient from black on the left to white on the right brightens."),
    "rotating_bar.mp4": (_rotating_bar, "A purple bar turns like a clock hand in a circle on a cream background."),
}
IMAGE = ("checkerboard.png", "A black and white checkerboard with eight squares in each row.")


@dataclass(frozen=True)
class SampleInputs:
    """Paths of generated demo inputs."""

    directory: Path
    manifest: Path
    text_tokenizer: Path


def write_video(frames: Iterable[np.ndarray], path: str | os.PathLike, fps: float) -> None:
    """Write uint8 ``[H, W, 3]`` RGB frames to an H.264 ``.mp4`` (even sizes) with PyAV, reproducibly (one encoder
    thread); :func:`nemo_cosmos_tokenizer.media_writing.write_video` does the writing."""
    from ..media_writing import write_video as write

    write(path, frames, fps, threads=1)


def train_sentencepiece(texts: Iterable[str], model_prefix: str | os.PathLike, vocab_size: int = 400) -> Path:
    """Train a small BPE sentencepiece model that round-trips any text exactly (byte fallback, no
    normalisation); returns the ``.model`` path. ``vocab_size`` is an upper bound for tiny corpora."""
    try:
        import sentencepiece as spm
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(f"training a text tokenizer needs sentencepiece: {INSTALL_HINT}") from err
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(list(texts)),
        model_prefix=str(model_prefix),
        model_type="bpe",
        vocab_size=vocab_size,
        hard_vocab_limit=False,
        byte_fallback=True,
        character_coverage=1.0,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        split_digits=True,
        num_threads=1,
        minloglevel=2,
    )
    return Path(f"{model_prefix}.model")


def make_sample_inputs(directory: str | os.PathLike) -> SampleInputs:
    """Generate the demo clips, image, ``captions.jsonl`` and ``text_tokenizer.model`` into ``directory``."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, (draw, caption) in CLIPS.items():
        write_video((draw(t) for t in range(FRAMES)), out / name, FPS)
        rows.append({"path": name, "text": caption})
    from PIL import Image

    yy, xx = _grid(96, 96)
    board = ((yy // 12 + xx // 12) % 2 * 255).astype(np.uint8)
    Image.fromarray(board).convert("RGB").save(out / IMAGE[0])
    rows.append({"path": IMAGE[0], "text": IMAGE[1]})
    manifest = out / "captions.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    model = train_sentencepiece([r["text"] for r in rows], out / "text_tokenizer")
    return SampleInputs(out, manifest, model)
