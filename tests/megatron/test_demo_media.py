"""The tokenizer demo's clip sets, contact sheet and report: written and read back, targets judged from the numbers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nemo_cosmos_tokenizer.megatron.demo import clip_specs, render_clip
from nemo_cosmos_tokenizer.megatron.demo_media import contact_sheet, other_look, read_clip_set, write_clip_set
from nemo_cosmos_tokenizer.megatron.demo_report import MATCH_TARGET, missed_targets, report_markdown, sample_rates


def test_other_look_is_a_fixed_change_of_every_frame():
    frames = render_clip(clip_specs(1, seed=3, size=64)[0], 9, 64)
    looked = other_look(frames)
    assert looked.dtype == np.uint8 and looked.shape == frames.shape
    # The same stripes and light in every frame: where two frames show the background, they stay equal.
    same = (frames[0] == frames[-1]).all(-1)
    assert (looked[0][same] == looked[-1][same]).all()
    # ... and the look moves pixels well beyond codec noise: the left edge darker than the right.
    diff = np.abs(looked.astype(int) - frames.astype(int))
    assert diff.mean() > 5
    assert looked[:, :, :8].mean() < frames[:, :, :8].mean() and looked[:, :, -8:].mean() > frames[:, :, -8:].mean() - 1


def test_clip_set_round_trip(tmp_path):
    pytest.importorskip("av")
    written = write_clip_set(tmp_path / "set", 3, seed=7, frames=9, size=64, workers=1)
    clips, captions = read_clip_set(written["manifest"])
    assert clips.shape == (3, 9, 64, 64, 3) and clips.dtype == np.uint8
    assert captions == [s.caption for s in clip_specs(3, seed=7, size=64)] == written["captions"]
    # H.264 at crf 18 keeps a flat synthetic clip close to what was rendered (mean error of a few levels).
    rendered = render_clip(written["specs"][0], 9, 64)
    assert np.abs(clips[0].astype(int) - rendered.astype(int)).mean() < 4
    assert [json.loads(line)["path"] for line in open(written["manifest"])] == [s.name for s in written["specs"]]


def test_contact_sheet_has_a_row_per_clip(tmp_path):
    from PIL import Image

    clips = [render_clip(s, 9, 64) for s in clip_specs(3, seed=1, size=64)]
    path = contact_sheet(clips, ["a", "b", "c"], tmp_path / "sheet.png", frames_per_row=5, labels=["x", "y", "z"])
    image = np.asarray(Image.open(path).convert("RGB"))
    gap, text_h = 4, 16
    assert image.shape == (3 * (64 + text_h + gap) + gap, 5 * (64 + gap) + gap, 3)
    # The first frame of the first clip sits at the top-left corner, unscaled.
    assert (image[gap:gap + 64, gap:gap + 64] == clips[0][0]).all()
    with pytest.raises(ValueError):
        contact_sheet([], [], tmp_path / "empty.png")


def _report(psnr=30.0, before=25.0, after=27.0, matches=(True,) * 9 + (False,), ids=True):
    sample = {"caption": "A red ball moves up on a grey background.", "colour": True, "direction": True,
              "background": True, "measured": {"colour": "red", "direction": "up"}}
    samples = [dict(sample, match=m, direction=m) for m in matches]
    scored = {"psnr": psnr, "ssim": 0.9, "codes_used": 1234, "codebook_size": 64000, "clips": 64}
    return {
        "command": "python scripts/train_tokenizer_demo.py --work-dir w", "device": "GPU",
        "sizes": {"frames": 17, "size": 128, "train_clips": 2048, "heldout_clips": 64, "other_clips": 512,
                  "other_heldout_clips": 32},
        "tokenizer_steps": 4000, "tokenizer_stopped_by": "the 5-minute budget", "tokenizer": scored,
        "finetune": {"steps": 300, "other_before": dict(scored, psnr=before), "other_after": dict(scored, psnr=after),
                     "heldout_after": scored, "ids": {"heldout": ids, "other_heldout": True,
                                                       "frozen_weights_equal": True}},
        "gpt": {"steps": 600, "final_val_loss": 1.5, "unigram_entropy": 5.0, "tokens_per_second": 1e5},
        "samples": samples, "seconds": {"tokenizer": 300.0, "total": 540.0}, "temperature": 0.8, "top_k": 50,
    }


def test_targets_are_judged_from_the_numbers():
    assert missed_targets(_report()) == []
    assert sample_rates(_report()["samples"])["match"] == 0.9 >= MATCH_TARGET
    missed = missed_targets(_report(psnr=27.9, before=26.0, after=26.0, matches=(True, False)))
    assert len(missed) == 3 and "27.90 dB" in missed[0] and "did not raise" in missed[1] and "50 %" in missed[2]
    # Changed ids fail even the smoke form, which judges nothing else.
    assert missed_targets(_report(psnr=5.0, ids=False), smoke=True) == [
        "ids of the held-out clips changed in the decoder-only fine-tune"]


def test_report_section_carries_the_numbers():
    text = report_markdown(_report())
    assert text.startswith("## Run N")
    assert "| 4000 | 5.0 | **30.00** (target >= 28) | 0.9000 | 1,234 of 64,000 (64 clips) |" in text
    assert "| + decoder fine-tune | **27.00** |" in text and "held-out clips **identical**" in text
    assert "| 10 | 100 % | 90 % | **90 %** | 100 % |" in text
    assert text.count("| A red ball moves up on a grey background. |") == 10
