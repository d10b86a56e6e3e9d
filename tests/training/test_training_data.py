"""Training batches are a function of the step: reproducible, split across processes without overlap, and a sample
that cannot be read is skipped (the same way every time)."""

from __future__ import annotations

import logging
import shutil

import torch

from nemo_cosmos_tokenizer.training.data import ClipBatches, index_samples

SETTINGS = dict(num_frames=5, resolution=(32, 32), temporal_compression=4, spatial_compression=8, fps=None,
                is_video_model=True, seed=7)


def _batches(samples, rank=0, world_size=1, batch_size=4, image_every=0):
    return ClipBatches(samples, batch_size=batch_size, rank=rank, world_size=world_size, image_every=image_every,
                       **SETTINGS)


def test_batches_are_a_function_of_the_step_and_split_over_processes(clips_dir, tmp_path):
    samples = index_samples(str(clips_dir), tmp_path / "plan")
    one = _batches(samples)
    x, images = one[3]
    assert x.shape == (4, 5, 32, 32, 3) and x.dtype == torch.uint8 and not images
    assert torch.equal(_batches(samples)[3][0], x)  # a fresh reader (a resumed run): the same clips
    assert not torch.equal(one[4][0], x)  # another step: other clips or crops
    halves = [_batches(samples, rank=r, world_size=2)[3][0] for r in range(2)]
    assert torch.equal(torch.cat(halves), x)  # two processes read the one-process batch, in rank order

    alternating = _batches(samples, image_every=2)
    assert alternating[0][0].shape[1] == 5 and not alternating[0][1]
    frames, images = alternating[1]
    assert images and frames.shape == (4, 1, 32, 32, 3)


def test_unreadable_sample_is_skipped(clips_dir, tmp_path, caplog):
    folder = tmp_path / "clips"
    shutil.copytree(clips_dir, folder)
    (folder / "a_broken.mp4").write_bytes(b"")  # 12 slots over 6 videos: every sample is read in 3 steps
    samples = index_samples(str(folder), tmp_path / "plan")
    assert samples[0].id == "a_broken.mp4"
    with caplog.at_level(logging.WARNING, logger="nemo_cosmos_tokenizer.training.data"):
        batches = _batches(samples)
        for step in range(3):
            assert batches[step][0].shape == (4, 5, 32, 32, 3)
    assert "skipping a_broken.mp4" in caplog.text
    assert caplog.text.count("skipping a_broken.mp4") == 1  # recorded once


def test_cached_videos_give_the_same_batches(clips_dir, tmp_path):
    """Clips cut from a cache of whole decoded videos equal the decoder's, step for step (image steps too), and the
    cache stops growing at its size."""
    samples = index_samples(str(clips_dir), tmp_path / "plan")
    plain = _batches(samples, image_every=3)
    cached = ClipBatches(samples, batch_size=4, rank=0, world_size=1, image_every=3, cache_mb=64, **SETTINGS)
    for step in range(6):  # 24 slots over the set's videos: each is read from the cache at least once
        a, b = plain[step], cached[step]
        assert a[1] == b[1] and torch.equal(a[0], b[0]), step
    assert 0 < len(cached._cache) and cached._cached_bytes <= 64 * 2**20
    one = max(v.frames.nbytes for v in cached._cache.values())
    small = ClipBatches(samples, batch_size=4, rank=0, world_size=1, image_every=0, cache_mb=1, **SETTINGS)
    small.cache_bytes = one  # room for one video: the others are decoded each time
    videos = _batches(samples)
    for step in range(3):
        assert torch.equal(small[step][0], videos[step][0]), step
    assert len(small._cache) == 1
    tiny = ClipBatches(samples, batch_size=4, rank=0, world_size=1, image_every=0, cache_mb=1, **SETTINGS)
    tiny.cache_bytes = 1  # room for no video: each is measured once, then read frame by frame
    for step in range(3):
        assert torch.equal(tiny[step][0], videos[step][0]), step
    assert tiny._cache == {} and tiny._too_large == {s.id for s in samples if not s.is_image}  # 12 slots read every video
