"""Image commands offline: the built-in image tokenizer (tiny-random-di8x8) in list-models, --help,
reconstruct-images, encode and the builder; reconstruct-images --mode jit on bfloat16 files from our own export_jit;
a --device this machine lacks in every tokenizer command; where outputs go by default."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from nemo_cosmos_tokenizer.cli import build_dataset, inspect_dataset
from nemo_cosmos_tokenizer.cli.main import main

IMAGE_BUILTIN = "tiny-random-di8x8"
CPU = ["--device", "cpu", "--no-progress"]


@pytest.fixture
def image(media_dir):
    return media_dir / "cat_tiny_17x13.png"


def _pixels(path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def test_list_models_and_help_name_the_image_builtin(capsys):
    assert main(["list-models", "--json"]) == 0
    (row,) = [r for r in json.loads(capsys.readouterr().out) if r["name"] == IMAGE_BUILTIN]
    assert (row["kind"], row["family"], row["compression"], row["hub_repo"]) == ("builtin", "DI", "8x8", None)
    assert main(["list-models"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert [line.split()[:4] for line in table if line.startswith(IMAGE_BUILTIN)] == [
        [IMAGE_BUILTIN, "built-in", "DI", "8x8"]]
    for command in ("encode", "reconstruct-images", "reconstruct-videos"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert IMAGE_BUILTIN in capsys.readouterr().out.replace("\n", " ")
    assert IMAGE_BUILTIN in build_dataset.build_parser().format_help()


def test_reconstruct_images_and_encode_with_the_image_builtin(image, tmp_path, capsys):
    assert main(["reconstruct-images", str(image), "--tokenizer", IMAGE_BUILTIN, *CPU,
                 "--output-dir", str(tmp_path / "r")]) == 0
    err = capsys.readouterr().err
    assert f"ImageTokenizer({IMAGE_BUILTIN}, mode=torch, device=cpu, dtype=torch.float32)" in err
    assert _pixels(tmp_path / "r" / image.name).shape == _pixels(image).shape  # 13 x 17, padded and cropped back
    assert main(["encode", str(image), "--tokenizer", IMAGE_BUILTIN, *CPU, "--output-dir", str(tmp_path / "t")]) == 0
    from safetensors import safe_open

    with safe_open(str(tmp_path / "t" / f"{image.stem}.safetensors"), "pt") as f:
        assert f.metadata()["tokenizer"] == IMAGE_BUILTIN
        assert f.get_tensor("indices").shape == (1, 2, 3)  # one frame, 13 x 17 padded to 16 x 24, over 8
    # the image built-in in a video command: a usage error that names the fix
    assert main(["reconstruct-videos", str(image), "--tokenizer", IMAGE_BUILTIN, *CPU]) == 2
    assert "use reconstruct-images for it" in capsys.readouterr().err


def test_the_builder_takes_the_image_builtin(tmp_path, capsys):
    pytest.importorskip("megatron.core")
    prefix = tmp_path / "demo" / "tokens"
    assert build_dataset.main(["--demo", "--output-prefix", str(prefix), "--tokenizer", IMAGE_BUILTIN,
                               "--resolution", "32", "--num-frames", "9", "--no-progress", "--log-level",
                               "WARNING"]) == 0
    sidecar = json.loads(prefix.with_suffix(".json").read_text())
    assert sidecar["video_tokenizer"]["name"] == IMAGE_BUILTIN and sidecar["video_tokenizer"]["family"] == "DI"
    assert sidecar["counts"]["failed_samples"] == 0
    from nemo_cosmos_tokenizer.data.reader import VideoTokenDataset

    doc = VideoTokenDataset(str(prefix)).decode(0)
    assert doc.grid.shape[1:] == (4, 4)  # every frame on its own: 32 x 32 over 8


def test_reconstruct_images_jit_mode_on_bfloat16_export(tmp_path, image, capsys):
    """bf16 .jit files of our own export_jit at the CPU's default float32 (the failure: "Input type
    (CPUBFloat16Type) and weight type")."""
    from nemo_cosmos_tokenizer.hub.jit_export import export_jit
    from nemo_cosmos_tokenizer.hub.sources import build_builtin_network

    export_jit(build_builtin_network(IMAGE_BUILTIN), tmp_path / "bf16", dtype=torch.bfloat16)
    for tokenizer in (tmp_path / "bf16", tmp_path / "bf16" / "autoencoder.jit"):
        out = tmp_path / "out" / tokenizer.name
        assert main(["reconstruct-images", str(image), "--tokenizer", str(tokenizer), "--mode", "jit", *CPU,
                     "--output-dir", str(out)]) == 0, capsys.readouterr().err
        err = capsys.readouterr().err
        assert "mode=jit" in err and "dtype=torch.bfloat16" in err  # the files' own dtype
        assert _pixels(out / image.name).shape == _pixels(image).shape


@pytest.mark.parametrize("command", ["encode", "reconstruct-videos", "reconstruct-images", "build-dataset", "inspect",
                                     "evaluate"])
def test_a_device_this_machine_lacks_is_one_line_and_a_hint(command, media_dir, image, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the same answer on a machine with a GPU
    monkeypatch.setattr(torch.version, "cuda", None)
    video = str(media_dir / "plant_tiny_64x48.mp4")
    if command == "build-dataset":
        rc = build_dataset.main(["--demo", "--output-prefix", str(tmp_path / "d"), "--resolution", "32",
                                 "--num-frames", "9", "--device", "cuda", "--no-progress"])
    elif command == "inspect":
        assert build_dataset.main(["--demo", "--output-prefix", str(tmp_path / "d"), "--resolution", "32",
                                   "--num-frames", "9", *CPU, "--log-level", "WARNING"]) == 0
        capsys.readouterr()
        rc = inspect_dataset.main([str(tmp_path / "d"), "--index", "0", "--decoder", "tiny-random-dv8x16x16",
                                   "--output", str(tmp_path / "doc.mp4"), "--device", "cuda"])
    elif command == "evaluate":
        rc = main(["evaluate", video, "--tokenizer", "tiny-random-dv8x16x16", "--device", "cuda",
                   "--output-dir", str(tmp_path / "e")])
    else:
        name = IMAGE_BUILTIN if command == "reconstruct-images" else "tiny-random-dv8x16x16"
        rc = main([command, str(image) if command == "reconstruct-images" else video, "--tokenizer", name,
                   "--device", "cuda", "--output-dir", str(tmp_path / "o")])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith(("error:", "hint:"))]
    assert rc == 2 and "Traceback" not in err and "AssertionError" not in err, err
    assert lines == ["error: device cuda was asked for, but this torch was built without CUDA",
                     "hint: use --device cpu, or install a CUDA build of torch on a machine with a GPU"], err


def test_default_output_folder_is_next_to_the_inputs_and_said(image, tmp_path, capsys, monkeypatch):
    """The default: a 'reconstructions' folder next to each input (the working folder's own when the inputs are
    there, as README and --help say; .gitignore holds /reconstructions/); the first line says where."""
    import shutil

    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(image, work / image.name)
    monkeypatch.chdir(work)
    assert main(["reconstruct-images", image.name, "--tokenizer", IMAGE_BUILTIN, *CPU]) == 0
    err = capsys.readouterr().err
    assert f"-> {work / 'reconstructions'} (next to the input; --output-dir to choose)" in err
    assert (work / "reconstructions" / image.name).is_file()
    gitignore = Path(__file__).resolve().parents[2] / ".gitignore"
    assert "/reconstructions/" in gitignore.read_text(encoding="utf-8").split()
