"""Training clips from the dataset builder's inputs, read by the builder's readers; the one place this room
imports them from (so a move of the media readers changes one import block).

* **Inputs**: anything ``build-dataset --input`` takes (a folder, a .jsonl/.csv/.parquet manifest, .tar shards,
  object storage), indexed once by the builder's planner into ``<output_dir>/inputs/<name>/``. Captions are not
  needed.
* **Batches are a pure function of the step**: global slot ``g = step * batch_size + j`` takes sample
  ``perm_e[g mod N]`` of epoch ``e = g div N`` (``perm_e`` a permutation seeded by ``(seed, e)``), and its random
  clip start and crop come from a generator seeded by ``(seed, step, j)``. Process ``r`` of ``W`` reads slots
  ``j = r * b .. (r + 1) * b - 1`` (``b = batch_size / W``). So a resumed run reads exactly what the uninterrupted
  run would have, and ``W`` processes together read the batch one process would, whatever the number of
  data-loading workers.
* **Clips**: ``num_frames`` frames at ``fps`` (or every frame) starting at a random frame of the sample's usable
  range; scaled so the frame covers ``resolution`` (aspect kept, as the builder's ``crop`` resize) and cropped at a
  random position. Image batches (``image_every``) take one random frame of any sample, images included.
* A sample that cannot be read (too short, undecodable, missing) is skipped for the next one of the permutation,
  with a warning the first time: skipping is deterministic too.
* **Cache** (``cache_mb`` > 0): each data-loading process keeps whole decoded videos (every frame, uint8) up to that
  many MiB, so a small set is decoded once per process instead of once per epoch; clips are cut from the cached
  frames exactly as from the decoder (the same frames: a test compares the batches).
* **Held-out clips** are read exactly as the builder reads them (``read_sample``: the first clip, centre crop).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

# The builder's inputs and readers: the same code reads what a build reads.
from ..data.manifest import ManifestError, Sample
from ..data.sources.media import load_media
from ..data.sources.plan import InputPlan, InputSpec, plan_inputs
from ..data.video import read_sample
from ..media.clips import ClipSpec, frame_range, plan_clips
from ..media.decode import open_video
from ..media.failures import MediaError
from ..media.images import load_image
from ..media.resize import resize_clip

log = logging.getLogger(__name__)

__all__ = ["ClipBatches", "ManifestError", "MediaError", "index_samples", "load_indexed", "read_eval_clips"]

_MAX_SKIPS = 64


def index_samples(input: str, directory: str | os.PathLike) -> list[Sample]:
    """Every sample of ``input`` (the builder's planner, reused while the inputs are unchanged)."""
    plan = plan_inputs(InputSpec(input), directory, chunk_size=4096, threads=4)
    return _with_text(plan.iter_samples())


def load_indexed(directory: str | os.PathLike) -> list[Sample]:
    """The samples :func:`index_samples` indexed into ``directory`` (other processes read rank 0's index)."""
    return _with_text(InputPlan.load(directory).iter_samples())


def _with_text(samples) -> list[Sample]:
    # The builder refuses samples without a caption; a tokenizer needs none.
    return [s if s.text is not None else dataclasses.replace(s, text="") for s in samples]


def _crop(frames: torch.Tensor, height: int, width: int, rng: np.random.Generator) -> torch.Tensor:
    """uint8 ``[T, H, W, 3]`` -> ``[T, height, width, 3]``: scale to cover (aspect kept), crop at a random spot."""
    t, h, w, _ = frames.shape
    scale = max(height / h, width / w)
    new_h, new_w = max(height, round(h * scale)), max(width, round(w * scale))
    if (new_h, new_w) != (h, w):
        frames = resize_clip(frames, new_h, new_w, "crop")  # same aspect: a pure resize
    top = int(rng.integers(0, new_h - height + 1))
    left = int(rng.integers(0, new_w - width + 1))
    return frames[:, top : top + height, left : left + width]


class ClipBatches(torch.utils.data.Dataset):
    """``batches[step]`` -> ``(uint8 [b, T, H, W, 3], images: bool)``: this process's share of step ``step``."""

    def __init__(self, samples: Sequence[Sample], *, batch_size: int, rank: int, world_size: int, num_frames: int,
                 resolution: tuple[int, int], temporal_compression: int, spatial_compression: int,
                 fps: float | None, image_every: int, is_video_model: bool, seed: int,
                 cache_mb: int = 0) -> None:
        if batch_size % world_size:
            raise ValueError(f"batch_size {batch_size} must be a multiple of the {world_size} processes")
        self.samples = list(samples)
        self.videos = [i for i, s in enumerate(self.samples) if not s.is_image]
        if is_video_model and num_frames > 1 and not self.videos:
            raise ManifestError("the input holds no videos, and a video model trains on clips of "
                                f"{num_frames} frames (use num_frames=1 for images only)")
        self.batch_size, self.rank, self.local = batch_size, rank, batch_size // world_size
        self.num_frames, self.resolution, self.fps = num_frames, tuple(resolution), fps
        self.image_every, self.is_video_model, self.seed = image_every, is_video_model, seed
        self.spec = ClipSpec(num_frames=num_frames, fps=fps, height=resolution[0], width=resolution[1],
                             temporal_compression=temporal_compression, spatial_compression=spatial_compression)
        self._failed: set[int] = set()
        self.cache_bytes = cache_mb * 2**20
        self._cache: dict[str, _DecodedVideo] = {}  # per data-loading process (each has its own copy)
        self._cached_bytes = 0
        self._too_large: set[str] = set()  # videos that did not fit the room left: read frame by frame
        self._permutations: dict[tuple[int, bool], np.ndarray] = {}

    def is_image_step(self, step: int) -> bool:
        """Image models always; video models every ``image_every``-th step (or all steps for 1-frame clips)."""
        if not self.is_video_model or self.num_frames == 1:
            return True
        return self.image_every > 0 and step % self.image_every == self.image_every - 1

    def __len__(self) -> int:  # steps are unbounded; the loop asks for the ones it needs
        return 2**62

    def _pool(self, images: bool) -> list[int]:
        return list(range(len(self.samples))) if images else self.videos

    def _permutation(self, epoch: int, images: bool) -> np.ndarray:
        key = (epoch, images)
        if key not in self._permutations:
            if len(self._permutations) > 4:  # a batch spans at most two epochs of a pool
                self._permutations.clear()
            rng = np.random.default_rng([self.seed, epoch, int(images)])
            self._permutations[key] = rng.permutation(len(self._pool(images)))
        return self._permutations[key]

    def __getitem__(self, step: int) -> tuple[torch.Tensor, bool]:
        images = self.is_image_step(step)
        pool = self._pool(images)
        clips = []
        for j in range(self.rank * self.local, (self.rank + 1) * self.local):
            rng = np.random.default_rng([self.seed, step, j])
            g = step * self.batch_size + j
            for skip in range(_MAX_SKIPS):
                at = g + skip
                index = pool[int(self._permutation(at // len(pool), images)[at % len(pool)])]
                try:
                    clips.append(self._read(self.samples[index], rng, images))
                    break
                except MediaError as err:
                    if index not in self._failed:
                        self._failed.add(index)
                        log.warning("skipping %s: %s (%s)", self.samples[index].id, err.message, err.reason)
            else:
                raise RuntimeError(f"{_MAX_SKIPS} samples in a row could not be read; check the input "
                                   "(train-tokenizer logs why each was skipped)")
        return torch.stack(clips), images

    def _read(self, sample: Sample, rng: np.random.Generator, images: bool) -> torch.Tensor:
        height, width = self.resolution
        media = load_media(sample)
        if sample.is_image:
            frames = torch.from_numpy(load_image(media)[None])  # [1, H, W, 3]
            return _crop(frames, height, width, rng)
        source = self._cached(sample) or open_video(media)
        begin, end = frame_range(sample, source.num_frames, source.fps)
        if images:
            indices = [int(rng.integers(begin, end))]
        else:
            first = plan_clips(begin, end, source.fps, dataclasses.replace(self.spec, clips_per_video=1))[0]
            span = int(first[-1] - first[0]) + 1
            start = int(rng.integers(begin, end - span + 1))
            indices = (first - first[0] + start).tolist()
        frames = torch.from_numpy(np.ascontiguousarray(source.get_frames(indices)))  # [T, H, W, 3]
        return _crop(frames, height, width, rng)

    def _cached(self, sample: Sample):
        """The whole decoded video of ``sample`` from this process's cache (decoded and kept while the cache has
        room for it), the opened video where it has none, or ``None`` without a cache or once it is full."""
        if self.cache_bytes <= 0:
            return None
        video = self._cache.get(sample.id)
        if video is not None or self._cached_bytes >= self.cache_bytes or sample.id in self._too_large:
            return video
        source = open_video(load_media(sample))
        frame_bytes = source.get_frames([0]).nbytes  # the source has no size of its own; one frame tells it
        if self._cached_bytes + source.num_frames * frame_bytes > self.cache_bytes:
            self._too_large.add(sample.id)  # the room only shrinks: never measured again
            return source  # decode only the frames this clip needs
        frames = np.ascontiguousarray(source.get_frames(list(range(source.num_frames))))  # [N, H, W, 3] uint8
        video = _DecodedVideo(frames, source.fps)
        self._cache[sample.id] = video
        self._cached_bytes += frames.nbytes
        return video


@dataclasses.dataclass(frozen=True)
class _DecodedVideo:
    """Every frame of a video (uint8 ``[N, H, W, 3]``), read like the decoder it came from."""

    frames: np.ndarray
    fps: float

    @property
    def num_frames(self) -> int:
        return len(self.frames)

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        return self.frames[np.asarray(indices, dtype=np.int64)]  # a copy: the cache is never handed out


def read_eval_clips(samples: Sequence[Sample], *, num_frames: int, resolution: tuple[int, int],
                    temporal_compression: int, spatial_compression: int, fps: float | None,
                    images: bool) -> tuple[list[np.ndarray], list[str]]:
    """The first clip of each held-out sample as the builder reads it (uint8 ``[T, H, W, 3]``; one frame for
    image models), and the ids of the samples that failed (skipped)."""
    spec = ClipSpec(num_frames=1 if images else num_frames, fps=fps, height=resolution[0], width=resolution[1],
                    temporal_compression=1 if images else temporal_compression,
                    spatial_compression=spatial_compression)
    clips, failed = [], []
    for sample in samples:
        if not images and sample.is_image:
            continue
        result = read_sample(sample, spec)
        if result.failure is not None or not result.clips:
            failed.append(sample.id)
            continue
        clips.append(result.clips[0])
    return clips, failed


def plan_directory(output_dir: str | os.PathLike, name: str) -> Path:
    return Path(output_dir) / "inputs" / name
