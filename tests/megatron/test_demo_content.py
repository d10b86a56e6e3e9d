"""The demo-content analyser reads colour and direction off the generator's own clips (ground truth), is not
fooled by a static clip or an empty one, and survives a lossy stand-in for a tokenizer (blur, noise, H.264)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from nemo_cosmos_tokenizer.megatron.demo import BACKGROUNDS, COLOURS, DIRECTIONS, SHAPES, DemoClip, clip_specs, render_clip
from nemo_cosmos_tokenizer.megatron.demo_content import analyse_clip, caption_content, compare, match_rate

FRAMES, SIZE = 17, 128


def _every_kind() -> list[DemoClip]:
    """Every colour, direction, background and shape at least once (and the hardest pairs: white on cream, purple
    on grey, blue on dark blue), with starts near the edges so the object wraps around."""
    colours, directions, backgrounds = list(COLOURS), list(DIRECTIONS), list(BACKGROUNDS)
    specs = []
    for i in range(24):
        start = ((7 + 37 * i) % SIZE, (100 + 53 * i) % SIZE)
        specs.append(DemoClip(f"c{i}.mp4", colours[i % 6], SHAPES[i % 3], directions[i % 4], backgrounds[(i // 6) % 4],
                              start, 2 + i % 3))
    specs.append(DemoClip("hard1.mp4", "white", "bar", "up", "cream", (10, 60), 2))
    specs.append(DemoClip("hard2.mp4", "purple", "ball", "to the left", "grey", (64, 5), 4))
    specs.append(DemoClip("hard3.mp4", "blue", "square", "down", "dark blue", (120, 64), 3))
    return specs


def _blur(frames: np.ndarray) -> np.ndarray:
    """Two passes of a 3x3 box filter (wrapping at the edges): soft edges like a small tokenizer's."""
    x = frames.astype(np.float32)
    for _ in range(2):
        for axis in (1, 2):
            x = (np.roll(x, 1, axis) + x + np.roll(x, -1, axis)) / 3
    return x


def test_caption_parses_back_to_the_spec():
    spec = DemoClip("a.mp4", "yellow", "ball", "to the left", "dark blue", (30, 40), 3)
    got = caption_content(spec.caption)
    assert (got.colour, got.shape, got.direction, got.background) == ("yellow", "ball", "to the left", "dark blue")
    with pytest.raises(ValueError, match="not a demo caption"):
        caption_content("A pink ball moves up on a grey background.")


def test_recovers_colour_direction_and_background_of_every_clean_clip():
    specs = _every_kind() + clip_specs(12, seed=5, size=SIZE)
    contents = [analyse_clip(render_clip(s, FRAMES, SIZE)) for s in specs]
    for spec, content in zip(specs, contents):
        assert all(compare(content, spec.caption).values()), (spec, content)
        # The measured velocity lies along the caption's axis, at the generator's speed, or at half of it when the
        # object is clipped by an edge for half of the clip (the visible part's centroid then moves half as fast).
        dy, dx = DIRECTIONS[spec.direction]
        along = content.velocity[0] * dy + content.velocity[1] * dx
        across = content.velocity[0] * dx + content.velocity[1] * dy
        assert spec.speed / 2 - 0.5 <= along <= spec.speed + 0.5 and abs(across) <= 0.5, (spec, content)
    assert match_rate(contents, [s.caption for s in specs]) == {"colour": 1.0, "direction": 1.0, "background": 1.0,
                                                                 "match": 1.0}


def test_a_static_clip_has_no_direction_and_an_empty_one_no_object():
    spec = DemoClip("s.mp4", "red", "square", "to the right", "grey", (64, 64), 0)  # speed 0: it never moves
    still = analyse_clip(render_clip(spec, FRAMES, SIZE))
    assert (still.colour, still.direction, still.background) == ("red", "none", "grey")
    assert not compare(still, spec.caption)["match"]
    empty = analyse_clip(np.broadcast_to(np.uint8(BACKGROUNDS["cream"]), (FRAMES, SIZE, SIZE, 3)).copy())
    assert (empty.colour, empty.direction, empty.background, empty.object_rgb) == ("none", "none", "cream", None)
    # Noise alone on a still background is not an object either (the 3x3 majority removes lone pixels).
    rng = np.random.default_rng(0)
    noisy = np.clip(np.float32(BACKGROUNDS["grey"]) + rng.normal(0, 12, (FRAMES, SIZE, SIZE, 3)), 0, 255)
    assert analyse_clip(noisy.astype(np.uint8)).colour == "none"


def test_survives_blur_and_noise():
    # Noise of sigma 15 on top of the blur is ~23 dB PSNR, worse than the demo's 28 dB target for its tokenizer.
    sigma = 15.0
    rng = np.random.default_rng(1)
    specs = _every_kind()
    contents = []
    for spec in specs:
        lossy = _blur(render_clip(spec, FRAMES, SIZE)) + rng.normal(0, sigma, (FRAMES, SIZE, SIZE, 3))
        contents.append(analyse_clip(np.clip(np.rint(lossy), 0, 255).astype(np.uint8)))
    assert match_rate(contents, [s.caption for s in specs])["match"] == 1.0


def test_survives_h264_round_trip(tmp_path):
    pytest.importorskip("av")
    from nemo_cosmos_tokenizer.data.samples import write_video
    from nemo_cosmos_tokenizer.media.decode import open_video

    specs = _every_kind()[:8]
    contents = []
    for spec in specs:
        write_video(render_clip(spec, FRAMES, SIZE), tmp_path / spec.name, 12.0)
        source = open_video(str(tmp_path / spec.name), backend="pyav")
        contents.append(analyse_clip(source.get_frames(range(source.num_frames))))
    assert match_rate(contents, [s.caption for s in specs])["match"] == 1.0


def test_a_wrong_sample_is_caught():
    # A clip that shows another colour and the opposite direction must not count as a match.
    spec = DemoClip("w.mp4", "green", "ball", "up", "black", (64, 64), 3)
    shown = dataclasses.replace(spec, colour="red", direction="down")
    verdict = compare(analyse_clip(render_clip(shown, FRAMES, SIZE)), spec.caption)
    assert verdict == {"colour": False, "direction": False, "background": True, "match": False}


def test_rejects_frames_of_the_wrong_type():
    with pytest.raises(ValueError, match="uint8 frames"):
        analyse_clip(np.zeros((4, 8, 8, 3), np.float32))
