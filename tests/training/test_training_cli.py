"""``train-tokenizer``: settings from defaults, YAML, flags and key=value; every bad setting ends in
``error:`` + ``hint:`` and exit status 2 (in-process, ``main(argv)``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from training_helpers import TINY, cli_flags, tiny_network

from nemo_cosmos_tokenizer.cli.main import main
from nemo_cosmos_tokenizer.cli.train_tokenizer import build_parser, load_config

REPO = Path(__file__).resolve().parents[2]


def _args(clips, out, **changes) -> list[str]:
    return ["train-tokenizer", "--input", str(clips), "--output-dir", str(out), *cli_flags(dict(TINY, **changes))]


def _error(capsys, argv, hint: bool = True) -> tuple[str, str]:
    """The ``error:`` and ``hint:`` lines of a run that must exit with status 2 (log lines left out); with
    ``hint=False`` the hint line may be missing."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith(("20", "INFO", "WARNING"))]
    assert "Traceback" not in err and len(lines) in ((2,) if hint else (1, 2)), err
    assert lines[0].startswith("error: ") and (not hint or lines[1].startswith("hint: ")), err
    return lines[0], lines[-1]


def test_settings_defaults_yaml_flags_then_overrides(tmp_path):
    recipe = REPO / "recipes" / "train_tokenizer_demo.yaml"
    args = build_parser().parse_args(["--config", str(recipe), "--input", str(tmp_path), "--output-dir",
                                      str(tmp_path / "out"), "--lr", "3e-4", "--resolution", "64,64",
                                      "lr=5e-4", "levels=[8,5,5,5]"])
    config = load_config(args)
    assert config.channels == 32 and config.channels_mult == (1, 2, 2)  # from the YAML
    assert config.resolution == (64, 64)  # a flag over the YAML
    assert config.lr == 5e-4 and config.levels == (8, 5, 5, 5)  # key=value last
    assert config.weight_decay == 0.01 and config.seed == 0  # defaults


def test_levels_that_overflow_the_vocabulary(capsys, clips_dir, tmp_path):
    error, hint = _error(capsys, _args(clips_dir, tmp_path, levels=[16, 16, 16, 16, 16]))
    assert "1,048,576 codes" in error and "--max-codebook-size" in hint


def test_unknown_override(capsys, clips_dir, tmp_path):
    error, hint = _error(capsys, _args(clips_dir, tmp_path) + ["levls=[8,8]"])
    assert "levls" in error and "levels" in hint


def test_missing_input(capsys, tmp_path):
    error, _ = _error(capsys, _args(tmp_path / "nowhere", tmp_path / "out"))
    assert "nowhere" in error


def test_missing_perceptual_weights(capsys, clips_dir, tmp_path):
    argv = _args(clips_dir, tmp_path / "out", perceptual_weight=0.1, vgg16_weights=str(tmp_path / "no-vgg16.pth"))
    error, hint = _error(capsys, argv)
    assert "perceptual" in error and "no-vgg16.pth" in error and "--vgg16-weights" in hint


def test_frozen_encoder_with_a_changed_architecture(capsys, clips_dir, tmp_path):
    from nemo_cosmos_tokenizer.hub.convert import save_pretrained

    save_pretrained(tiny_network(), tmp_path / "init")
    argv = _args(clips_dir, tmp_path / "out", init=str(tmp_path / "init"), mode="decoder", channels=16)
    error, hint = _error(capsys, argv)
    assert "channels" in error and "decoder mode" in error and "drop those fields" in hint


def test_decoder_mode_needs_weights_to_keep(capsys, clips_dir, tmp_path):
    error, hint = _error(capsys, _args(clips_dir, tmp_path / "out", mode="decoder"))
    assert "decoder mode" in error and "--init" in hint


def test_clip_that_does_not_fit_the_architecture(capsys, clips_dir, tmp_path):
    error, hint = _error(capsys, _args(clips_dir, tmp_path / "out", num_frames=6))
    assert "1 + k*4" in error and "--num-frames" in hint


@pytest.mark.parametrize("argv", [["--batch-size", "0"], ["--mode", "encoder"], ["--ema-decay", "1.5"]])
def test_out_of_range_values(capsys, clips_dir, tmp_path, argv):
    error, _ = _error(capsys, _args(clips_dir, tmp_path / "out") + argv, hint=False)
    assert argv[0].removeprefix("--").replace("-", "_") in error
