"""Every user mistake ends in one or two plain lines and exit status 2; --debug / NCT_DEBUG shows the traceback.

In-process (``main(argv)``) wherever the exit status is a return value; subprocesses only where the test is about a
fresh process (which modules an argument error imports).
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nemo_cosmos_tokenizer.cli import _errors, build_dataset, inspect_dataset
from nemo_cosmos_tokenizer.cli.main import main
from nemo_cosmos_tokenizer.hub.sources import UnknownTokenizerError, resolve_tokenizer_source

REPO = Path(__file__).resolve().parents[2]
CPU = ["--device", "cpu", "--no-progress"]
BUILTIN = "tiny-random-dv8x16x16"


def _plain(err: str, max_lines: int = 2) -> list[str]:
    """The error output, checked to be a short plain message (no traceback)."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and 1 <= len(lines) <= max_lines, err
    assert lines[0].startswith("error: "), err
    return lines


@pytest.fixture
def video(media_dir):
    return str(media_dir / "plant_tiny_64x48.mp4")


# --------------------------------------------------------------------------------------------- unknown names
@pytest.mark.parametrize("command", ["encode", "reconstruct-videos", "reconstruct-images", "build-dataset", "inspect"])
@pytest.mark.parametrize("name,suggestion", [("tiny-random-dv8x16", BUILTIN),
                                             ("Cosmos-1.0-Tokenizer-DV8x16x1", "Cosmos-1.0-Tokenizer-DV8x16x16")])
def test_unknown_tokenizer_is_one_line_with_a_suggestion_in_every_command(command, name, suggestion, video, tmp_path,
                                                                          capsys):
    if command == "build-dataset":
        rc = build_dataset.main(["--demo", "--output-prefix", str(tmp_path / "d"), "--tokenizer", name])
    elif command == "inspect":
        rc = inspect_dataset.main([str(tmp_path / "d"), "--decoder", name])
    else:
        rc = main([command, video, "--tokenizer", name, *CPU])
    assert rc == 2
    (line,) = _plain(capsys.readouterr().err, max_lines=1)
    assert f"Did you mean: {suggestion}" in line and BUILTIN in line  # the built-ins are named as accepted
    assert not (tmp_path / "d.demo-inputs").exists()  # refused before anything was written


def test_one_resolver_accepts_every_kind(tmp_path, jit_case_dir):
    assert resolve_tokenizer_source(" Tiny-Random-DV8x16x16 ").kind == "builtin"
    released = resolve_tokenizer_source("nvidia/cosmos-tokenizer-dv4x8x8")
    assert (released.kind, released.value, released.family) == ("released", "Cosmos-0.1-Tokenizer-DV4x8x8", "DV")
    folder = jit_case_dir("DV8x16x16")
    assert resolve_tokenizer_source(str(folder)).kind == "directory"
    jit = resolve_tokenizer_source(str(folder / "encoder.jit"))
    assert (jit.kind, jit.part) == ("jit-file", "encoder")
    assert resolve_tokenizer_source("someone/my-finetune").kind == "hub-repo"
    (tmp_path / "weights.bin").write_bytes(b"x")
    for bad in ("", "./nope", str(tmp_path / "weights.bin"), "nvidia/Cosmos-9-Tokenizer"):
        with pytest.raises(UnknownTokenizerError):
            resolve_tokenizer_source(bad)


def test_help_lists_the_builtins_everywhere(capsys):
    for command in ("encode", "reconstruct-videos", "reconstruct-images"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert BUILTIN in capsys.readouterr().out.replace("\n", " ")
    assert BUILTIN in build_dataset.build_parser().format_help()
    assert BUILTIN in inspect_dataset.build_parser().format_help()
    help_text = build_dataset.build_parser().format_help()
    # the torchrun example keeps its line break (a shell continuation), as printed in the README
    assert "--config recipes/dv8x16x16_720p.yaml \\\n      --input captions.jsonl" in help_text


# ------------------------------------------------------------------------------------ the built-in everywhere
def test_builtin_tokenizer_in_encode_and_reconstruct(video, tmp_path, capsys):
    old = os.umask(0o022)
    try:
        assert main(["encode", video, "--tokenizer", BUILTIN, *CPU, "--output-dir", str(tmp_path / "tok")]) == 0
        err = capsys.readouterr().err
        assert "dtype=torch.float32" in err  # CPU default: float32, as build-dataset
        out = tmp_path / "tok" / "plant_tiny_64x48.safetensors"
        assert out.stat().st_mode & 0o777 == 0o644  # the umask, not safetensors' 0600

        from safetensors import safe_open

        with safe_open(str(out), "pt") as f:
            meta = f.metadata()
            assert meta["tokenizer"] == BUILTIN and f.get_tensor("indices").shape == (8, 3, 4)  # 36 frames: windows 17+17+2 -> 3+3+2
        assert main(["reconstruct-videos", video, "--tokenizer", BUILTIN, *CPU, "--output-dir", str(tmp_path / "r"),
                     "--temporal-window", "9"]) == 0
        assert (tmp_path / "r" / "plant_tiny_64x48.mp4").stat().st_mode & 0o777 == 0o644
    finally:
        os.umask(old)
    # an image command with the (video) built-in: a clean usage error naming the fix
    capsys.readouterr()
    assert main(["reconstruct-images", video, "--tokenizer", BUILTIN, *CPU]) == 2
    lines = _plain(capsys.readouterr().err)
    assert "DV" in lines[0] and "reconstruct-videos" in lines[1]


# ---------------------------------------------------------------------------- missing inputs, bad flags
def test_missing_inputs_and_bad_values(tmp_path, capsys):
    assert main(["encode", str(tmp_path / "nope.mp4"), "--tokenizer", BUILTIN, *CPU]) == 2
    assert "none of the 1 input(s) exist" in _plain(capsys.readouterr().err)[0]
    (tmp_path / "a.png").write_bytes(b"")
    for flags, words in ((["--dtype", "bf17"], "unknown --dtype"), (["--short-size", "0"], "--short-size"),
                         (["--batch-windows", "0"], "--batch-windows")):
        assert main(["encode", str(tmp_path / "a.png"), "--tokenizer", BUILTIN, *CPU, *flags]) == 2
        assert words in _plain(capsys.readouterr().err)[0]
    with pytest.raises(SystemExit) as info:  # argparse's own errors: usage + one line, status 2
        main(["encode", str(tmp_path / "a.png"), "--tokenizer", BUILTIN, "--temporal-window", "many"])
    assert info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith("invalid int value: 'many'")
    assert build_dataset.main(["--input", str(tmp_path / "nope.jsonl"), "--output-prefix", str(tmp_path / "x"),
                               "--text-tokenizer", str(tmp_path / "t.model")]) == 2
    assert "input not found" in _plain(capsys.readouterr().err)[0]
    assert build_dataset.main(["--demo"]) == 2
    assert "output prefix" in _plain(capsys.readouterr().err)[0]
    assert inspect_dataset.main([str(tmp_path / "nothing")]) == 2
    assert "no dataset at" in _plain(capsys.readouterr().err)[0]


# --------------------------------------------------------------------------------------- unwritable outputs
@pytest.mark.parametrize("value", ["{bad", "[1]"])
def test_storage_options_must_be_a_json_object(value, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["build-dataset", "--demo", "--output-prefix", str(tmp_path / "d"), "--storage-options", value])
    assert exit_info.value.code == 2
    assert f"--storage-options: invalid JSON object value: '{value}'" in capsys.readouterr().err


def test_read_only_output_is_refused_before_any_work(tmp_path, monkeypatch, video, capsys):
    # Simulated (tests run as root, who may write anywhere else): the folder reports a read-only file system.
    monkeypatch.setattr(_errors.os, "access", lambda *args, **kwargs: False)
    monkeypatch.setattr(_errors, "_read_only", lambda path: True)
    assert main(["encode", video, "--tokenizer", BUILTIN, *CPU, "--output-dir", str(tmp_path / "out")]) == 2
    lines = _plain(capsys.readouterr().err)
    assert "read-only" in lines[0] and "writable" in lines[1]
    assert build_dataset.main(["--demo", "--output-prefix", str(tmp_path / "ro" / "tokens")]) == 2
    assert "read-only" in _plain(capsys.readouterr().err)[0]
    assert not (tmp_path / "ro").exists()


def test_os_errors_while_writing_become_plain_lines(tmp_path, monkeypatch, video, capsys):
    import safetensors.torch

    def read_only(tensors, filename, metadata=None):
        raise OSError(errno.EROFS, "Read-only file system", filename)

    monkeypatch.setattr(safetensors.torch, "save_file", read_only)
    assert main(["encode", video, "--tokenizer", BUILTIN, *CPU, "--output-dir", str(tmp_path)]) == 2
    lines = _plain(capsys.readouterr().err.split("input(s)\n", 1)[-1])  # after the one-line banner
    assert lines[0].endswith("plant_tiny_64x48.safetensors: the file system is read-only")
    assert "Errno" not in lines[0]


# ------------------------------------------------------------------------------------------- --debug, env
def test_debug_flag_and_env_show_the_traceback(video, monkeypatch):
    with pytest.raises(UnknownTokenizerError):
        main(["--debug", "encode", video, "--tokenizer", "nope"])
    with pytest.raises(UnknownTokenizerError):
        main(["encode", video, "--tokenizer", "nope", "--debug"])
    monkeypatch.setenv("NCT_DEBUG", "1")
    with pytest.raises(UnknownTokenizerError):
        build_dataset.main(["--demo", "--output-prefix", "x", "--tokenizer", "nope"])


def test_unexpected_errors_say_how_to_see_more(capsys):
    def broken():
        raise RuntimeError("first line\nthe last line says it")

    assert _errors.guarded(broken) == 1
    lines = _plain(capsys.readouterr().err)
    assert lines == ["error: RuntimeError: the last line says it", f"hint: {_errors.DEBUG_HINT}"]


def test_argument_errors_answer_before_heavy_imports(tmp_path):
    """A mistake is refused before torch / megatron-core load (they take seconds): checked by what a fresh
    process has imported when it answers, not by timing."""
    code = (
        "import sys\n"
        "from nemo_cosmos_tokenizer.cli import build_dataset, main\n"
        f"rcs = [build_dataset.main(['--demo', '--output-prefix', {str(tmp_path / 'd')!r}, '--tokenizer', 'nope']),\n"
        f"       main.main(['encode', {str(tmp_path / 'x.mp4')!r}, '--tokenizer', 'tiny-random']),\n"
        f"       main.main(['reconstruct-videos', {str(REPO)!r}, '--tokenizer', 'tiny-random-dv8x16x16', '--dtype', 'x'])]\n"
        "print(rcs, sorted(m for m in ('torch', 'megatron', 'av', 'decord') if m in sys.modules))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.stdout.strip() == "[2, 2, 2] []", done.stdout + done.stderr


# ------------------------------------------------------------------------------------ list-models, json
def test_list_models_json_has_the_builtins(capsys):
    assert main(["list-models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    (row,) = [r for r in rows if r["name"] == BUILTIN]
    assert row["kind"] == "builtin" and row["family"] == "DV" and row["compression"] == "8x16x16"
