"""Invariants of the uint8 <-> [-1, 1] conversion, padding, cropping and temporal windows."""

import numpy as np
import pytest
import torch

from nemo_cosmos_tokenizer.inference import preprocess as pp


def test_unit_range_round_trip_is_exact_for_every_pixel_value():
    pixels = torch.arange(256, dtype=torch.uint8).reshape(1, 16, 16, 1).expand(1, 16, 16, 3).contiguous()
    for dtype in (torch.float32, torch.float64, torch.bfloat16):
        x = pp.to_unit_range(pixels, dtype)
        assert x.shape == (1, 3, 16, 16) and x.dtype == dtype
        if dtype != torch.bfloat16:  # bf16 has 8 mantissa bits: not every level survives
            assert torch.equal(pp.to_uint8(x), pixels)
    # The reference's values: 2 * (p / 255) - 1 in float64, then cast.
    x = pp.to_unit_range(pixels, torch.float32)
    expected = (torch.arange(256, dtype=torch.float64) / 255.0 * 2 - 1).float()
    assert torch.equal(x[0, 0].flatten(), expected)
    assert x.min() == -1 and x.max() == 1


def test_to_uint8_clamps_and_rounds_half_up():
    x = torch.tensor([-3.0, -1.0, 1.0, 5.0, 2 * (0.5 / 255) - 1]).reshape(1, 1, 1, 5).expand(1, 3, 1, 5)
    out = pp.to_uint8(x)
    assert out.shape == (1, 1, 5, 3)
    assert out[0, 0, :, 0].tolist() == [0, 0, 255, 255, 1]


def test_video_layout():
    video = torch.randint(0, 256, (2, 5, 4, 6, 3), dtype=torch.uint8)
    x = pp.to_unit_range(video)
    assert x.shape == (2, 3, 5, 4, 6)
    assert torch.equal(pp.to_uint8(x), video)


@pytest.mark.parametrize("shape", [(13, 17), (16, 16), (1, 31), (48, 64)])
@pytest.mark.parametrize("multiple", [8, 16])
def test_pad_spatial_then_crop(shape, multiple):
    h, w = shape
    pixels = torch.randint(1, 256, (2, 3, h, w, 3), dtype=torch.uint8)
    padded, window = pp.pad_spatial(pixels, multiple)
    assert padded.shape[-3] % multiple == 0 and padded.shape[-2] % multiple == 0
    assert padded.shape[-3] - h < multiple and padded.shape[-2] - w < multiple
    assert torch.equal(pp.crop(padded, window), pixels)
    # Black padding, top/left get floor(pad / 2) as in the reference.
    top, bottom, left, right = pp.spatial_padding(h, w, multiple)
    assert (top, left) == ((padded.shape[-3] - h) // 2, (padded.shape[-2] - w) // 2)
    assert int(padded.sum()) == int(pixels.sum())


def test_pad_frames_repeats_last_frame():
    video = torch.arange(6, dtype=torch.uint8).reshape(1, 6, 1, 1, 1).expand(1, 6, 2, 2, 3)
    padded = pp.pad_frames(video, 4)
    assert padded.shape[1] == 9
    assert padded[0, :, 0, 0, 0].tolist() == [0, 1, 2, 3, 4, 5, 5, 5, 5]
    assert pp.pad_frames(video[:, :1], 8).shape[1] == 1
    assert pp.pad_frames(video[:, :5], 4) is not None and pp.pad_frames(video[:, :5], 4).shape[1] == 5
    assert pp.pad_frames(video, 8).shape[1] == 9


@pytest.mark.parametrize("t", [4, 8])
def test_frames_to_encode(t):
    for n in range(1, 40):
        m = pp.frames_to_encode(n, t)
        assert m >= n and (m - 1) % t == 0 and m - n < t


def test_temporal_windows():
    assert pp.temporal_windows(36, 17) == [(0, 17), (17, 34), (34, 36)]
    assert pp.temporal_windows(17, 17) == [(0, 17)]
    assert pp.temporal_windows(18, 17) == [(0, 17), (17, 18)]
    assert pp.temporal_windows(5, None) == [(0, 5)]
    assert pp.temporal_windows(3, 17) == [(0, 3)]
    assert pp.group_by_length(pp.temporal_windows(36, 17), 8) == {17: [0, 1], 9: [2]}


def test_as_uint8_array_messages():
    with pytest.raises(TypeError, match="uint8"):
        pp.as_uint8_array(np.zeros((1, 4, 4, 3), np.float32), 4, "B x H x W x 3")
    with pytest.raises(ValueError, match="B x T x H x W x 3"):
        pp.as_uint8_array(np.zeros((1, 4, 4, 3), np.uint8), 5, "B x T x H x W x 3")
