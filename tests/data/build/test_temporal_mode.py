"""Dataset builder ``temporal_mode="whole"``: clips streamed through the exact StreamingEncoder give the bytes of the
default one-call encoding (float32, CPU), one clip per encoder call."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nemo_cosmos_tokenizer.data import BuildConfig, load_video_tokenizer
from nemo_cosmos_tokenizer.data.build import run_build
from nemo_cosmos_tokenizer.distributed import DistEnv

VIDEOS = ("archive_shelves_sar16x11.mp4", "cockatoo_hevc.mp4", "plant_tiny_64x48.mp4")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, media_dir):
    from media_build_inputs import make_build_inputs

    pytest.importorskip("sentencepiece")
    return make_build_inputs(tmp_path_factory.mktemp("temporal_mode"), media_dir, VIDEOS)


def _build(inputs, name: str, **changes) -> tuple[bytes, bytes, list[int]]:
    root, manifest, spm, model_dir = inputs
    tokenizer = load_video_tokenizer(model_dir, "cpu", "float32")
    calls: list[int] = []
    for method in ("encode", "encode_on_device", "encode_streaming"):
        original = getattr(tokenizer, method)

        def spy(clips, *args, _original=original, **kwargs):
            calls.append(len(clips))
            return _original(clips, *args, **kwargs)

        setattr(tokenizer, method, spy)
    prefix = root / name / "ds"
    config = BuildConfig(input=str(manifest), output_prefix=str(prefix), text_tokenizer=str(spm),
                         tokenizer=str(model_dir), resolution=[32, 32], num_frames=25, short_videos="shorten",
                         batch_size=2, progress=False, device="cpu", **changes)
    summary = run_build(config, video_tokenizer=tokenizer, env=DistEnv())
    assert summary.written_samples == len(VIDEOS)
    return Path(f"{prefix}.bin").read_bytes(), Path(f"{prefix}.idx").read_bytes(), calls


def test_whole_mode_streams_each_clip_and_matches_windows(inputs):
    windows_bin, windows_idx, windows_calls = _build(inputs, "windows")
    whole_bin, whole_idx, whole_calls = _build(inputs, "whole", temporal_mode="whole")
    assert whole_calls == [1] * len(VIDEOS)  # one streamed clip per call, no padded batches
    assert windows_calls and all(n == 2 for n in windows_calls)
    assert whole_bin == windows_bin and whole_idx == windows_idx
    assert np.frombuffer(whole_bin, dtype=np.uint8).size > 0
