"""The scripts: the README's offline quickstart in a fresh process, the inspector, YAML/flag precedence, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nemo_cosmos_tokenizer.cli import build_dataset, inspect_dataset

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "scripts"


def _run(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the script finds the checkout itself
    env["HF_HUB_OFFLINE"] = "1"  # the quickstart must not need the network
    return subprocess.run(
        [sys.executable, str(SCRIPTS / script), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_offline_quickstart_and_inspector(tmp_path):
    # The README's one command (smaller frames to keep the test fast).
    done = _run("build_video_token_dataset.py", "--demo", "--output-prefix", "demo/tokens", "--resolution", "32",
                "--num-frames", "9", "--no-progress", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "wrote 6 documents" in done.stdout and "--vocab-size" in done.stdout
    assert "carry no visual meaning" in done.stderr
    prefix = tmp_path / "demo" / "tokens"
    for suffix in (".bin", ".idx", ".json", ".failures.jsonl"):
        assert Path(f"{prefix}{suffix}").is_file()
    sidecar = json.loads(Path(f"{prefix}.json").read_text())
    assert sidecar["video_tokenizer"]["name"] == "tiny-random-dv8x16x16" and sidecar["counts"]["failed_samples"] == 0

    shown = _run("inspect_video_token_dataset.py", str(prefix), "--index", "0", "--decoder", "tiny-random-dv8x16x16",
                 "--output", "doc0.mp4", "--json", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr[-3000:]
    info = json.loads(shown.stdout)
    manifest = (tmp_path / "demo" / "tokens.demo-inputs" / "captions.jsonl").read_text().splitlines()
    assert info["text"] == json.loads(manifest[0])["text"] and info["grid_shape"] == [2, 2, 2]
    import av

    with av.open(str(tmp_path / "doc0.mp4")) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 9 and frames[0].shape == (32, 32, 3)


def test_help_has_examples():
    text = build_dataset.build_parser().format_help()
    assert "examples:" in text and "--demo --output-prefix demo/tokens" in text and "--text-tokenizer" in text
    assert "examples:" in inspect_dataset.build_parser().format_help()


def test_yaml_then_flags_override(tmp_path):
    (tmp_path / "c.yaml").write_text("input: a.jsonl\noutput_prefix: out/x\nnum_frames: 33\nfps: 12\nlayout: emu3\n")
    args = build_dataset.build_parser().parse_args(["--config", str(tmp_path / "c.yaml"), "--num-frames", "9",
                                                    "--resolution", "64", "96", "--no-progress"])
    config = build_dataset.config_from_args(args)
    assert (config.input, config.output_prefix, config.layout, config.fps) == ("a.jsonl", "out/x", "emu3", 12.0)
    assert (config.num_frames, config.resolution, config.progress, config.batch_size) == (9, [64, 96], False, 8)
    assert config.deterministic is True and config.fast is False
    flags = build_dataset.config_from_args(build_dataset.build_parser().parse_args(
        ["--config", str(tmp_path / "c.yaml"), "--fast", "--no-deterministic"]))
    assert flags.fast is True and flags.deterministic is False
    (tmp_path / "d.yaml").write_text("input: a.jsonl\noutput_prefix: out/x\ndeterministic: false\n")
    yaml_off = build_dataset.config_from_args(build_dataset.build_parser().parse_args(["--config", str(tmp_path / "d.yaml")]))
    back_on = build_dataset.config_from_args(build_dataset.build_parser().parse_args(
        ["--config", str(tmp_path / "d.yaml"), "--deterministic"]))
    assert (yaml_off.deterministic, back_on.deterministic) == (False, True)
    with pytest.raises(Exception, match="chunk_size must be >= 1"):
        build_dataset.config_from_args(build_dataset.build_parser().parse_args(["--config", str(tmp_path / "c.yaml"),
                                                                                "--template", "both", "--chunk-size", "0"]))


def test_errors_are_reported_not_raised(tmp_path, capsys):
    assert build_dataset.main(["--output-prefix", str(tmp_path / "x"), "--no-progress"]) == 2
    assert "missing --input" in capsys.readouterr().err
    assert build_dataset.main(["--input", str(tmp_path / "nope.jsonl"), "--output-prefix", str(tmp_path / "x"),
                               "--text-tokenizer", str(tmp_path / "t.model")]) == 2
    assert "not found" in capsys.readouterr().err
