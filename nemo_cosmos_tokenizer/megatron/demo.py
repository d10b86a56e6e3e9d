"""Generated training clips for the end-to-end demo (build -> train -> sample), and the demo's report.

:func:`make_training_clips` writes ``count`` small mp4 clips of one shape moving across a plain background, each
with a caption that says exactly what it shows ("A red ball moves to the left on a grey background."), plus
``captions.jsonl`` and a sentencepiece model trained on the captions. Colour, shape, direction and background are
drawn from small sets, the start position and speed vary per clip: a caption-conditioned model has something to
learn, and nothing is downloaded. The library behind ``scripts/train_gpt_demo.py``.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

COLOURS = {"red": (220, 40, 40), "green": (40, 180, 60), "blue": (40, 70, 220), "yellow": (235, 210, 40),
           "white": (245, 245, 245), "purple": (140, 50, 160)}
BACKGROUNDS = {"black": (10, 10, 10), "grey": (120, 120, 120), "dark blue": (15, 25, 80), "cream": (240, 230, 200)}
SHAPES = ("square", "ball", "bar")
DIRECTIONS = {"to the right": (0, 1), "to the left": (0, -1), "down": (1, 0), "up": (-1, 0)}


@dataclass(frozen=True)
class DemoClip:
    name: str
    colour: str
    shape: str
    direction: str
    background: str
    start: tuple[int, int]
    speed: int

    @property
    def caption(self) -> str:
        return f"A {self.colour} {self.shape} moves {self.direction} on a {self.background} background."


def clip_specs(count: int, seed: int = 0, size: int = 128) -> list[DemoClip]:
    """``count`` clip descriptions, the same for the same ``seed``."""
    rng = np.random.default_rng(seed)
    specs = []
    for i in range(count):
        colour = list(COLOURS)[rng.integers(len(COLOURS))]
        background = list(BACKGROUNDS)[rng.integers(len(BACKGROUNDS))]
        shape = SHAPES[rng.integers(len(SHAPES))]
        direction = list(DIRECTIONS)[rng.integers(len(DIRECTIONS))]
        start = (int(rng.integers(size // 4, 3 * size // 4)), int(rng.integers(size // 4, 3 * size // 4)))
        specs.append(DemoClip(f"clip_{i:05d}.mp4", colour, shape, direction, background, start, int(rng.integers(2, 5))))
    return specs


def render_clip(spec: DemoClip, frames: int, size: int) -> np.ndarray:
    """uint8 ``[T, H, W, 3]`` frames of ``spec``."""
    yy, xx = np.mgrid[0:size, 0:size]
    dy, dx = DIRECTIONS[spec.direction]
    out = np.empty((frames, size, size, 3), np.uint8)
    r = size // 8
    for t in range(frames):
        cy = (spec.start[0] + dy * spec.speed * t) % size
        cx = (spec.start[1] + dx * spec.speed * t) % size
        out[t] = BACKGROUNDS[spec.background]
        if spec.shape == "square":
            mask = (np.abs(yy - cy) <= r) & (np.abs(xx - cx) <= r)
        elif spec.shape == "ball":
            mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        else:  # a bar across the motion
            mask = (np.abs(yy - cy) <= r // 3) & (np.abs(xx - cx) <= 2 * r) if dy else \
                (np.abs(xx - cx) <= r // 3) & (np.abs(yy - cy) <= 2 * r)
        out[t][mask] = COLOURS[spec.colour]
    return out


def _write(job: tuple[DemoClip, str, int, int, float, Optional[Callable[[np.ndarray], np.ndarray]]]) -> None:
    from ..data.samples import write_video

    spec, directory, frames, size, fps, look = job
    pixels = render_clip(spec, frames, size)
    write_video(look(pixels) if look is not None else pixels, Path(directory) / spec.name, fps)


def write_clip_set(
    directory: str | os.PathLike, count: int, *, seed: int = 0, frames: int = 17, size: int = 128, fps: float = 12.0,
    look: Optional[Callable[[np.ndarray], np.ndarray]] = None, workers: int | None = None,
) -> dict[str, Any]:
    """Write ``count`` clips of ``clip_specs(count, seed)`` (each ``[T, H, W, 3]`` uint8 passed through ``look``, a
    module-level function so worker processes can take it, when given) and ``captions.jsonl`` into ``directory``;
    returns ``{"manifest", "captions", "specs"}``."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    specs = clip_specs(count, seed, size)
    jobs = [(s, str(out), frames, size, fps, look) for s in specs]
    workers = min(workers or os.cpu_count() or 1, 16, max(count, 1))
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            list(pool.map(_write, jobs, chunksize=8))
    else:
        for job in jobs:
            _write(job)
    manifest = out / "captions.jsonl"
    tmp = manifest.with_name(manifest.name + ".tmp")
    tmp.write_text("".join(json.dumps({"path": s.name, "text": s.caption}) + "\n" for s in specs), encoding="utf-8")
    tmp.replace(manifest)
    return {"manifest": str(manifest), "captions": [s.caption for s in specs], "specs": specs}


def make_training_clips(
    directory: str | os.PathLike, count: int = 512, *, frames: int = 17, size: int = 128, fps: float = 12.0,
    seed: int = 0, workers: int | None = None,
) -> dict[str, Any]:
    """Write the clips, ``captions.jsonl`` and ``text_tokenizer.model`` into ``directory``; returns their paths."""
    from ..data.samples import train_sentencepiece

    clips = write_clip_set(directory, count, seed=seed, frames=frames, size=size, fps=fps, workers=workers)
    model = train_sentencepiece(clips["captions"], Path(directory) / "text_tokenizer")
    return {"manifest": clips["manifest"], "text_tokenizer": str(model), "clips": count, "captions": clips["captions"]}


@dataclass(frozen=True)
class DemoPreset:
    """The sizes of one demo run: the generated data, the build and the training flags (after the recipe's)."""

    name: str
    """``"gpu"`` or ``"cpu"``."""

    clips: int
    """Generated clips (documents)."""

    size: int
    """Clip width and height (a multiple of 16: the built-in tokenizer's spatial compression)."""

    frames: int
    """Frames per clip (``1 + 8k``: the built-in's temporal compression)."""

    build_batch_size: int
    """Clips per tokenizer call in the build."""

    build_workers: int
    """Decoding workers of the build."""

    train_flags: tuple[str, ...] = ()
    """``train_gpt.py`` flags that override the recipe (``--max-steps`` of the command line comes after them)."""


#: One GPU: the recipe as it is (512 clips of 128x128; ~3 minutes on an H100, README).
GPU_PRESET = DemoPreset("gpu", clips=512, size=128, frames=17, build_batch_size=32, build_workers=8)

#: A CPU: the recipe's 6 x 384 model makes a step of 8,192 tokens take minutes on a few cores (the 64k-entry output
#: layer dominates), so a 2 x 64 model on 64 clips of 64x64 (grids of 3 x 4 x 4) with 8 x 128-token steps; its
#: validation loss still goes below the unigram entropy of the shards (measured: README).
CPU_PRESET = DemoPreset(
    "cpu", clips=64, size=64, frames=17, build_batch_size=8, build_workers=2,
    train_flags=("--device", "cpu", "--position-embedding", "learned_absolute", "--num-layers", "2",
                 "--hidden-size", "64", "--num-attention-heads", "2", "--micro-batch-size", "8", "--max-steps", "200",
                 "--warmup-steps", "20", "--eval-interval", "50", "--eval-batches", "2", "--log-interval", "20",
                 "--save-interval", "200", "--num-workers", "0"),
)


def pick_preset(name: str, device: str, cuda_available: bool) -> DemoPreset:
    """``name`` ``"gpu"``/``"cpu"``, or ``"auto"``: the CPU preset for ``--device cpu`` or where CUDA is missing."""
    if name == "auto":
        name = "cpu" if device == "cpu" or (device == "auto" and not cuda_available) else "gpu"
    presets = {"gpu": GPU_PRESET, "cpu": CPU_PRESET}
    if name not in presets:
        raise ValueError(f"unknown preset {name!r}; use auto, gpu or cpu")
    return presets[name]


def loss_table(summary: dict[str, Any]) -> str:
    """Markdown table of the validation curve of a ``summary.json``."""
    rows = ["| step | train loss | validation loss |", "|---:|---:|---:|"]
    for point in summary["val_curve"]:
        train = point.get("train_loss")
        rows.append(f"| {point['step']} | {'-' if train is None else f'{train:.3f}'} | {point['val_loss']:.3f} |")
    return "\n".join(rows)
