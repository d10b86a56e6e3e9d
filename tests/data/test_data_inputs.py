"""Manifest parsing, video/image reading (decord vs PyAV), frame sampling and resizing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conformance_helpers import need_media

from nemo_cosmos_tokenizer.data.manifest import ManifestError, read_manifest
from nemo_cosmos_tokenizer.data.video import read_sample
from nemo_cosmos_tokenizer.media.clips import ClipSpec, plan_clips
from nemo_cosmos_tokenizer.media.decode import open_video
from nemo_cosmos_tokenizer.media.failures import MediaError
from nemo_cosmos_tokenizer.media.images import load_image
from nemo_cosmos_tokenizer.media.resize import resize_frames

BROKEN = {
    "broken_truncated.mp4": "truncated",
    "broken_empty.mp4": "empty_file",
    "broken_text.mp4": "unreadable",
    "audio_only.m4a": "no_video_stream",
    "missing_clip.mp4": "missing",
}


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# ------------------------------------------------------------------------------------------------ manifest
def test_shared_manifest_reads_in_line_order(shared_media_dir):
    media_dir = shared_media_dir  # the 33 entries of the real captions.jsonl
    manifest = read_manifest(media_dir / "captions.jsonl")
    assert len(manifest) == 33
    assert [s.index for s in manifest.samples] == list(range(33))
    assert manifest.samples[0].id == "archive_shelves_sar16x11.mp4"
    # The manifest resolves its folder (a shared/ reached through a symbolic link gives the link's target).
    assert Path(manifest.samples[0].path) == (media_dir / "archive_shelves_sar16x11.mp4").resolve()
    assert manifest.samples[-1].id == "missing_clip.mp4"
    assert read_manifest(media_dir / "captions.jsonl").checksum == manifest.checksum


def test_manifest_fields_ranges_ids_and_checksum(tmp_path):
    rows = [
        {"path": "a.mp4", "text": "A"},
        {"path": "a.mp4", "caption": "B", "start": 1.5, "end": 3},
        {"path": "/abs/c.mp4", "text": "C", "id": 7, "start_frame": 4, "extra": "ignored"},
    ]
    manifest = read_manifest(_write_jsonl(tmp_path / "m.jsonl", rows))
    a, b, c = manifest.samples
    assert (a.id, a.path, a.text) == ("a.mp4", str(tmp_path / "a.mp4"), "A")
    assert (b.id, b.text, b.start, b.end) == ("a.mp4@1.5-3.0", "B", 1.5, 3.0)
    assert (c.id, c.path, c.start_frame, c.end_frame) == ("7", "/abs/c.mp4", 4, None)
    rows[0]["text"] = "changed"
    assert read_manifest(_write_jsonl(tmp_path / "m2.jsonl", rows)).checksum != manifest.checksum


@pytest.mark.parametrize(
    "row, match",
    [
        ({"text": "no path"}, "missing 'path'"),
        ({"path": "a.mp4"}, "missing 'text'"),
        ({"path": "a.mp4", "text": "x", "start": 3, "end": 1}, "must be after start"),
        ({"path": "a.mp4", "text": "x", "start": 1, "start_frame": 3}, "not both"),
        ({"path": "a.mp4", "text": "x", "start_frame": 1.5}, "whole frame number"),
    ],
)
def test_bad_manifest_lines_are_refused_with_their_line(tmp_path, row, match):
    path = _write_jsonl(tmp_path / "m.jsonl", [{"path": "ok.mp4", "text": "fine"}, row])
    with pytest.raises(ManifestError, match=match) as info:
        read_manifest(path)
    assert "m.jsonl:2" in str(info.value)


def test_duplicate_ids_are_refused(tmp_path):
    path = _write_jsonl(tmp_path / "m.jsonl", [{"path": "a.mp4", "text": "1"}, {"path": "a.mp4", "text": "2"}])
    with pytest.raises(ManifestError, match="duplicate sample ids"):
        read_manifest(path)


def test_folder_input_uses_sidecar_captions_in_sorted_order(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("b.mp4", "a.png", "sub/c.webm", "notes.md"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "b.txt").write_text("caption b\n")
    (tmp_path / "sub" / "c.txt").write_text("caption c")
    manifest = read_manifest(tmp_path)
    assert [(s.id, s.text) for s in manifest.samples] == [("a.png", None), ("b.mp4", "caption b"), ("sub/c.webm", "caption c")]
    assert read_sample(manifest.samples[0], ClipSpec(num_frames=1, height=16, width=16)).failure.reason == "no_caption"


# ------------------------------------------------------------------------------------------------ sampling
def test_clip_plans():
    spec = ClipSpec(num_frames=9, temporal_compression=8, clips_per_video=3)
    # 30 frames, 3 non-overlapping 9-frame clips spread evenly.
    plans = plan_clips(0, 30, 30.0, spec)
    assert [p.tolist() for p in plans] == [list(range(0, 9)), list(range(10, 19)), list(range(21, 30))]
    # Target fps halves the rate: every other frame; only one 17-span clip fits in 20 frames.
    plans = plan_clips(0, 20, 30.0, ClipSpec(num_frames=9, temporal_compression=8, fps=15, clips_per_video=3))
    assert [p.tolist() for p in plans] == [list(range(0, 17, 2))]
    # A target rate above the source never repeats frames.
    assert plan_clips(5, 14, 10.0, ClipSpec(num_frames=9, temporal_compression=8, fps=30))[0].tolist() == list(range(5, 14))
    assert plan_clips(0, 40, 25.0, ClipSpec(num_frames=5, temporal_compression=4, stride=3))[0].tolist() == [0, 3, 6, 9, 12]
    with pytest.raises(MediaError, match="spans 17 source frames") as info:
        plan_clips(0, 10, 30.0, ClipSpec(num_frames=17, temporal_compression=8))
    assert info.value.reason == "too_short"
    shorter = plan_clips(0, 10, 30.0, ClipSpec(num_frames=17, temporal_compression=8, short_videos="shorten"))
    assert [p.tolist() for p in shorter] == [list(range(9))]


def test_clip_spec_validation():
    with pytest.raises(ValueError, match="use 17 or 25"):
        ClipSpec(num_frames=20, temporal_compression=8)
    with pytest.raises(ValueError, match="multiples of the tokenizer's spatial compression 16"):
        ClipSpec(height=100, width=64, spatial_compression=16)
    with pytest.raises(ValueError, match="not both"):
        ClipSpec(fps=10, stride=2)


def test_manifest_range_selects_frames(media_dir, tmp_path):
    rows = [
        {"path": str(media_dir / "pancake_vp9_opus.webm"), "text": "t", "start": 1.0, "end": 2.0},
        {"path": str(media_dir / "pancake_vp9_opus.webm"), "text": "t", "id": "f", "start_frame": 80},
    ]
    samples = read_manifest(_write_jsonl(tmp_path / "m.jsonl", rows)).samples
    spec = ClipSpec(num_frames=9, temporal_compression=8, clips_per_video=9, height=16, width=16)
    out = read_sample(samples[0], spec, "pyav")
    assert [p[0] for p in out.frame_indices] == [30, 40, 51] and out.frame_indices[-1][-1] == 59
    assert read_sample(samples[1], spec, "pyav").frame_indices == [list(range(80, 89))]


# ------------------------------------------------------------------------------------------------ decoding
@pytest.mark.parametrize(
    "name",
    [
        "keyboard_rot90_3frames.mov",  # display rotation: decord applies it, our PyAV path too
        "dog_fireplace_vfr_aac.mp4",  # 180 degree rotation, variable frame rate
        "nasa_jwst_multistream.mp4",  # two video streams: the larger one
        "pancake_h264_opus.mkv",  # no frame count in the header
        "cockatoo_portrait_360x640.mp4",
    ],
)
def test_decord_and_pyav_give_the_same_frames(media_dir, name):
    need_media(media_dir, name)
    path = str(media_dir / name)
    decord_src, pyav_src = open_video(path, "decord"), open_video(path, "pyav")
    assert (decord_src.num_frames, round(decord_src.fps, 3)) == (pyav_src.num_frames, round(pyav_src.fps, 3))
    indices = sorted({0, decord_src.num_frames // 2, decord_src.num_frames - 1})
    a, b = decord_src.get_frames(indices), pyav_src.get_frames(indices)
    assert a.shape == b.shape and a.dtype == b.dtype == np.uint8
    np.testing.assert_array_equal(a, b)


def test_auto_backend_falls_back_to_pyav_for_av1(media_dir):
    spec = ClipSpec(num_frames=9, temporal_compression=8, height=32, width=32)
    sample = next(s for s in read_manifest(media_dir / "captions.jsonl").samples if s.id == "cockatoo_av1.mp4")
    assert read_sample(sample, spec, "decord").failure is not None
    out = read_sample(sample, spec, "auto")
    assert out.failure is None and out.backend == "pyav" and out.clips[0].shape == (9, 32, 32, 3)


@pytest.mark.parametrize("backend", ["auto", "pyav"])
def test_broken_inputs_become_failures_with_reasons(media_dir, backend):
    spec = ClipSpec(num_frames=9, temporal_compression=8, height=32, width=32)
    samples = {s.id: s for s in read_manifest(media_dir / "captions.jsonl").samples}
    for name, reason in BROKEN.items():
        out = read_sample(samples[name], spec, backend)
        assert out.failure is not None and out.failure.reason == reason, (name, out.failure)
        assert out.clips == []


def test_images_are_upright_srgb_rgb(media_dir):
    cat = load_image(str(media_dir / "cat_chelsea.png"))
    rotated = load_image(str(media_dir / "cat_exif_orientation6.jpg"))  # EXIF Orientation=6, stored sideways
    assert cat.shape == rotated.shape == (300, 451, 3)
    assert np.abs(cat.astype(int) - rotated).mean() < 5  # JPEG noise only
    rgba, cmyk = load_image(str(media_dir / "astronaut_rgba.png")), load_image(str(media_dir / "astronaut_cmyk.jpg"))
    assert rgba.shape == cmyk.shape == (512, 512, 3)
    assert np.abs(rgba[200:300, 200:300].astype(int) - cmyk[200:300, 200:300]).mean() < 5  # CMYK converted right
    assert (rgba[0, 0] == 255).all()  # transparent corner composited on white
    grey = load_image(str(media_dir / "cameraman_gray.png"))
    assert grey.shape == (512, 512, 3) and (grey[..., 0] == grey[..., 2]).all()
    deep = load_image(str(media_dir / "cat_chelsea_16bit.png"))
    assert deep.shape == (200, 300, 3) and deep.dtype == np.uint8 and 60 < deep.mean() < 200


def test_sixteen_bit_grey_is_scaled_not_clipped(tmp_path):
    from PIL import Image

    ramp = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1040).astype(np.uint16)  # 0 .. 65520
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    pixels = load_image(str(tmp_path / "deep.png"))
    assert pixels.shape == (8, 8, 3)
    np.testing.assert_array_equal(pixels[..., 0], np.floor(ramp / 257.0 + 0.5).astype(np.uint8))


def test_resize_crop_and_pad():
    frames = np.zeros((2, 40, 80, 3), np.uint8)
    frames[:, :, 30:50] = 255  # a white band in the middle
    cropped = resize_frames(frames, 16, 16, "crop")  # 40x80 -> 16x32 -> centre 16x16
    assert cropped.shape == (2, 16, 16, 3)
    assert cropped[0, 8, 8, 0] == 255 and cropped[0, 8, 0, 0] == 0
    padded = resize_frames(frames, 32, 32, "pad")  # 40x80 -> 16x32, black bars top and bottom
    assert padded.shape == (2, 32, 32, 3)
    assert padded[0, :8].max() == 0 and padded[0, 24:].max() == 0 and padded[0, 16, 16, 0] == 255
    np.testing.assert_array_equal(resize_frames(frames, 40, 80), frames)
