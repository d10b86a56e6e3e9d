"""One policy for partly decodable videos (data/video.py's docstring) in build-dataset, encode and reconstruct-*:
a video whose data turns corrupt part-way is used up to its last decodable frame, with a warning; FFmpeg's and
decord's messages reach the user in words, without decord's own stderr lines."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from nemo_cosmos_tokenizer.cli.main import main
from nemo_cosmos_tokenizer.data.manifest import Sample
from nemo_cosmos_tokenizer.data.video import read_sample
from nemo_cosmos_tokenizer.media.clips import ClipSpec
from nemo_cosmos_tokenizer.media.decode import open_video, plain_av_message

av = pytest.importorskip("av")
BUILTIN = "tiny-random-dv8x16x16"


@pytest.fixture(scope="module")
def corrupt_tail(tmp_path_factory, media_dir) -> Path:
    """plant_tiny_64x48.mp4 (36 frames) with the last 40% of its media data overwritten by noise: every packet is
    there (so no 'truncated' header check fires), but decoding fails part-way (frame 13 with this seed)."""
    data = bytearray((media_dir / "plant_tiny_64x48.mp4").read_bytes())
    at = data.find(b"mdat")
    size = int.from_bytes(data[at - 4:at], "big")
    start, end = at + 4, at - 4 + size
    cut = start + (end - start) * 6 // 10
    data[cut:end] = np.random.default_rng(0).integers(0, 256, end - cut, dtype=np.uint8).tobytes()
    path = tmp_path_factory.mktemp("media") / "broken_corrupt_tail.mp4"
    path.write_bytes(bytes(data))
    return path


def _decodable(path: Path) -> int:
    count = 0
    with av.open(str(path)) as container:
        try:
            for _ in container.decode(video=0):
                count += 1
        except av.error.FFmpegError:
            pass
    return count


def test_builder_uses_the_decodable_head(corrupt_tail, caplog):
    good = _decodable(corrupt_tail)
    assert 9 <= good < 36  # the fixture's premise: a decodable head, then corrupt data
    sample = Sample(index=0, id="plant", path=str(corrupt_tail), text="a plant")
    with caplog.at_level(logging.WARNING):
        fits = read_sample(sample, ClipSpec(num_frames=9, height=48, width=64), backend="auto")
    assert fits.failure is None and fits.frame_indices == [list(range(9))]
    # a clip that needs frames past the corrupt point: planned again on the head (shortened), or skipped as too short
    shortened = read_sample(sample, ClipSpec(num_frames=33, height=48, width=64, short_videos="shorten", temporal_compression=8), "auto")
    assert shortened.failure is None and max(shortened.frame_indices[0]) < good
    assert f"corrupt from frame {good} on" in caplog.text
    skipped = read_sample(sample, ClipSpec(num_frames=33, height=48, width=64), backend="auto")
    assert skipped.failure is not None and skipped.failure.reason == "too_short"


def test_encode_and_reconstruct_use_the_decodable_head(corrupt_tail, tmp_path, capsys):
    good = _decodable(corrupt_tail)
    cpu = ["--tokenizer", BUILTIN, "--device", "cpu", "--no-progress"]
    assert main(["encode", str(corrupt_tail), *cpu, "--output-dir", str(tmp_path), "--format", "npy"]) == 0
    err = capsys.readouterr().err
    assert f"corrupt from frame {good} on" in err and f"using those {good} of 36 frames" in err
    assert "Errno" not in err
    import json

    meta = json.loads((tmp_path / "broken_corrupt_tail.json").read_text())
    assert (meta["frames"], meta["frames_in_file"]) == (str(good), "36")
    assert main(["reconstruct-videos", str(corrupt_tail), *cpu, "--output-dir", str(tmp_path)]) == 0
    with av.open(str(tmp_path / "broken_corrupt_tail.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == good


def test_errors_in_words_and_no_decord_stderr(media_dir, capfd):
    from nemo_cosmos_tokenizer.media.failures import MediaError

    messages = []
    for backend in ("auto", "decord"):
        try:
            open_video(str(media_dir / "broken_text.mp4"), backend)
        except MediaError as err:
            messages.append(err.message)
        except ImportError:
            pytest.skip("decord is not installed")
    assert len(messages) == 2 and not any("Errno" in m for m in messages)
    assert "ERROR opening" not in capfd.readouterr().err  # decord's native logger is kept quiet
    assert plain_av_message("x >= 0 (-1094995529 vs. 0)") == "x >= 0 ('invalid data found when processing input' vs. 0)"
