"""reconstruct-images / reconstruct-videos / encode on real files from ../shared/media with tiny conformance models."""

import json

import numpy as np
import pytest

from nemo_cosmos_tokenizer.cli.main import main
from nemo_cosmos_tokenizer.media_files import expand_inputs, resize_short_side

av = pytest.importorskip("av")

CPU = ["--dtype", "float32", "--device", "cpu", "--no-progress"]
BROKEN = ["broken_empty.mp4", "broken_text.mp4", "broken_truncated.mp4", "audio_only.m4a"]


def _probe(path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        return stream.average_rate, len(frames), frames[0].shape


def test_reconstruct_videos_keeps_fps_and_frame_count(jit_case_dir, media_dir, tmp_path, capsys):
    inputs = [media_dir / "plant_tiny_64x48.mp4", media_dir / "keyboard_rot0_3frames.mov"]
    rc = main(["reconstruct-videos", *map(str, inputs), "--tokenizer", str(jit_case_dir("CV8x16x16")), *CPU,
               "--output-dir", str(tmp_path), "--save-input"])
    assert rc == 0, capsys.readouterr().err
    for source in inputs:
        out = tmp_path / (source.stem + ".mp4")
        rate, count, shape = _probe(out)
        src_rate, src_count, src_shape = _probe(source)
        assert (rate, count, shape) == (src_rate, src_count, src_shape)  # 45000/1499 fps and 36 frames for the plant
        assert (tmp_path / (source.stem + "_input.mp4")).is_file()
    assert "reconstructed 2 of 2" in capsys.readouterr().err


def test_broken_inputs_are_reported_and_skipped(jit_case_dir, media_dir, tmp_path, capsys):
    inputs = [str(media_dir / name) for name in BROKEN] + [str(media_dir / "plant_tiny_64x48.mp4"),
                                                            str(tmp_path / "missing_clip.mp4")]
    rc = main(["reconstruct-videos", *inputs, "--tokenizer", str(jit_case_dir("CV8x16x16")), *CPU,
               "--output-dir", str(tmp_path / "out"), "--temporal-window", "9", "--batch-windows", "2"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "reconstructed 1 of 6" in err and "5 input(s) failed" in err
    for name, reason in [("broken_empty.mp4", "empty_file"), ("broken_text.mp4", "unreadable"),
                         ("broken_truncated.mp4", "truncated"), ("audio_only.m4a", "no_video_stream"),
                         ("missing_clip.mp4", "missing")]:
        assert f"{name}: {reason}" in err
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["plant_tiny_64x48.mp4"]
    assert _probe(tmp_path / "out" / "plant_tiny_64x48.mp4")[1] == 36


def test_reconstruct_images_with_short_size(jit_case_dir, media_dir, tmp_path, capsys):
    from PIL import Image

    image = media_dir / "cat_tiny_17x13.png"
    rc = main(["reconstruct-images", str(image), str(media_dir / "plant_tiny_64x48.mp4"), "--tokenizer",
               str(jit_case_dir("DI16x16")), *CPU, "--output-dir", str(tmp_path), "--short-size", "24", "--save-input"])
    err = capsys.readouterr().err
    assert rc == 1 and "plant_tiny_64x48.mp4: unreadable: not an image file" in err  # a video is not an image
    with Image.open(tmp_path / "cat_tiny_17x13.png") as out:
        assert out.size == (32, 24)  # 13x17 -> short side 24, long side int(17 * 24 / 13 + 0.5) = 31 -> even 32
    assert (tmp_path / "cat_tiny_17x13_input.png").is_file()
    # Default output dir: 'reconstructions' next to the input.
    copy = tmp_path / "in" / "cat.png"
    copy.parent.mkdir()
    copy.write_bytes(image.read_bytes())
    assert main(["reconstruct-images", str(copy), "--tokenizer", str(jit_case_dir("DI16x16")), *CPU]) == 0
    with Image.open(tmp_path / "in" / "reconstructions" / "cat.png") as out:
        assert out.size == (17, 13)


@pytest.mark.parametrize("fmt", ["safetensors", "npy"])
def test_encode_saves_tokens_per_file(jit_case_dir, media_dir, tmp_path, capsys, fmt):
    from safetensors import safe_open

    inputs = [str(media_dir / "plant_tiny_64x48.mp4"), str(media_dir / "cat_tiny_17x13.png")]
    rc = main(["encode", *inputs, "--tokenizer", str(jit_case_dir("CV8x16x16")), *CPU, "--output-dir",
               str(tmp_path), "--format", fmt])
    assert rc == 0, capsys.readouterr().err
    if fmt == "safetensors":
        with safe_open(str(tmp_path / "plant_tiny_64x48.safetensors"), "pt") as f:
            latent, meta = f.get_tensor("latent"), f.metadata()
    else:
        latent = np.load(tmp_path / "plant_tiny_64x48.npy")
        meta = json.loads((tmp_path / "plant_tiny_64x48.json").read_text())
    # 36 frames in windows of 17, 17, 2 (padded to 9) -> 3 + 3 + 2 latent frames (t = 8); 48x64 / 16.
    assert tuple(latent.shape) == (16, 8, 3, 4)
    assert meta["frames"] == "36" and meta["layout"] == "c t h w" and meta["fps"].startswith("30.02")
    discrete = tmp_path / "di"
    assert main(["encode", inputs[1], "--tokenizer", str(jit_case_dir("DI16x16")), *CPU, "--output-dir",
                 str(discrete), "--format", fmt]) == 0
    name = "cat_tiny_17x13." + fmt
    if fmt == "safetensors":
        with safe_open(str(discrete / name), "pt") as f:
            indices = f.get_tensor("indices")
    else:
        indices = np.load(discrete / name)
    assert tuple(indices.shape) == (1, 1, 2) and str(indices.dtype).endswith("int32")  # 13x17 padded to 16x32


def test_bad_tokenizer_exits_2(jit_case_dir, media_dir, capsys):
    image = str(media_dir / "cat_tiny_17x13.png")
    assert main(["reconstruct-images", image, "--tokenizer", str(jit_case_dir("CV8x16x16")), *CPU]) == 2
    assert "use CausalVideoTokenizer" in capsys.readouterr().err
    assert main(["encode", image, "--tokenizer", "Cosmos-0.1-Tokenizer-CX8x8", *CPU]) == 2
    assert "Did you mean" in capsys.readouterr().err


def test_inputs_sorted_and_deduplicated(tmp_path):
    for name in ["b.mp4", "a.mp4", "c.png"]:
        (tmp_path / name).write_bytes(b"")
    pattern = str(tmp_path / "*.mp4")
    assert expand_inputs([pattern, str(tmp_path / "a.mp4"), str(tmp_path / "c.png"), str(tmp_path / "z*.mp4")]) == [
        str(tmp_path / "a.mp4"), str(tmp_path / "b.mp4"), str(tmp_path / "c.png"), str(tmp_path / "z*.mp4")]


def test_resize_short_side_rule():
    frames = np.zeros((2, 13, 17, 3), np.uint8)
    assert resize_short_side(frames, 24).shape == (2, 24, 32, 3)
    assert resize_short_side(np.zeros((1, 640, 360, 3), np.uint8), 256).shape == (1, 456, 256, 3)
