"""The one early input check (``cli._errors.check_inputs_exist``) answers as the input planner does, before torch.

Brace patterns, folders, shard lists and tables are resolved by the planner's own ``resolve_input``; URLs are
only checked for a file-system driver (the planner reaches the store, with retries: tested here against a real
S3 server); ``--num-frames`` is checked against the registry's temporal factor in a process that never loads torch.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from nemo_cosmos_tokenizer.cli import build_dataset
from nemo_cosmos_tokenizer.cli._errors import UsageError, check_inputs_exist
from nemo_cosmos_tokenizer.cli.main import main
from nemo_cosmos_tokenizer.data.manifest import ManifestError
from nemo_cosmos_tokenizer.data.sources import InputSpec, Storage, resolve_input

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))  # corpus_inputs

REPO = Path(__file__).resolve().parents[2]


def _shards(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        with tarfile.open(folder / f"{i:06d}.tar", "w"):
            pass
        paths.append(folder / f"{i:06d}.tar")
    return paths


def _error(capsys) -> list[str]:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and 1 <= len(lines) <= 2 and lines[0].startswith("error: "), err
    return lines


def _build(tmp_path: Path, *flags: str) -> int:
    (tmp_path / "t.model").touch()
    return build_dataset.main(["--output-prefix", str(tmp_path / "out" / "ds"), "--text-tokenizer",
                               str(tmp_path / "t.model"), *flags])


def test_brace_pattern_passes_when_every_shard_exists_and_names_the_missing_ones(tmp_path, monkeypatch, capsys):
    _shards(tmp_path / "shards", 2)
    monkeypatch.chdir(tmp_path)
    check_inputs_exist(["shards/{000000..000001}.tar"], corpus=True)  # relative, as a user types it
    assert _build(tmp_path, "--input", "shards/{000000..000004}.tar") == 2
    line = _error(capsys)[0]
    assert "3 of the 5 files of shards/{000000..000004}.tar are missing" in line
    assert line.endswith(f"{tmp_path}/shards/000002.tar, {tmp_path}/shards/000003.tar, {tmp_path}/shards/000004.tar")
    # The planner itself refuses it the same way (one rule, not two).
    with pytest.raises(ManifestError, match="3 of the 5 files"):
        resolve_input(InputSpec(str(tmp_path / "shards" / "{000000..000004}.tar")))
    assert _build(tmp_path, "--input", "shards/{000000..000001}.mp4") == 2  # not a kind the planner reads
    assert "must name files of one kind" in _error(capsys)[0]


def test_folders_shard_lists_and_tables_pass_and_a_bad_list_is_refused(tmp_path, capsys):
    shards = _shards(tmp_path / "shards", 2)
    (tmp_path / "list.txt").write_text("".join(f"shards/{p.name}\n" for p in shards))
    (tmp_path / "rows.parquet").write_bytes(b"PAR1")  # only its existence is asked early
    (tmp_path / "media").mkdir()
    for path in ("shards", "list.txt", "rows.parquet", "media"):
        check_inputs_exist([str(tmp_path / path)], corpus=True)
    (tmp_path / "empty.txt").write_text("# nothing\n")
    assert _build(tmp_path, "--input", str(tmp_path / "empty.txt")) == 2
    assert "a shard list holds one .tar path or URL per line (it is empty)" in _error(capsys)[0]


def test_a_missing_input_or_text_tokenizer_is_one_usage_error(tmp_path, capsys):
    assert _build(tmp_path, "--input", str(tmp_path / "nope.jsonl")) == 2
    lines = _error(capsys)
    assert lines[0].startswith(f"error: input not found: {tmp_path}/nope.jsonl") and lines[1].startswith("hint: check")
    _shards(tmp_path / "shards", 1)
    assert build_dataset.main(["--input", str(tmp_path / "shards"), "--output-prefix", str(tmp_path / "o"),
                               "--text-tokenizer", str(tmp_path / "none.model")]) == 2
    assert _error(capsys)[0] == f"error: text tokenizer not found: {tmp_path}/none.model"


def test_media_commands_use_the_same_check_for_files_and_globs(tmp_path, capsys):
    with pytest.raises(UsageError, match="none of the 2 input"):
        check_inputs_exist([str(tmp_path / "*.mp4"), str(tmp_path / "a.mp4")], any_of=True)
    (tmp_path / "b.mp4").touch()
    check_inputs_exist([str(tmp_path / "*.mp4"), str(tmp_path / "a.mp4")], any_of=True)  # one is enough
    with pytest.raises(UsageError, match="input not found: .*a.mp4"):
        check_inputs_exist([str(tmp_path / "*.mp4"), str(tmp_path / "a.mp4")])
    assert main(["encode", str(tmp_path / "clips" / "*.mp4"), "--tokenizer", "tiny-random-dv8x16x16"]) == 2
    assert "none of the 1 input(s) exist" in _error(capsys)[0]


def test_urls_pass_early_and_the_planner_reaches_them(tmp_path, monkeypatch):
    pytest.importorskip("s3fs")
    pytest.importorskip("moto.server")
    from corpus_inputs import s3_server, upload

    shard = _shards(tmp_path / "shards", 1)[0]
    with s3_server() as endpoint:
        upload(endpoint, "corpus", {"shards/000000.tar": shard.read_bytes(), "shards.txt": b"shards/000000.tar\n"})
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)  # as the README's command sets it
        # Early: no request (the planner retries; a multi-node job would otherwise ask once per rank).
        check_inputs_exist(["s3://corpus/shards.txt", "s3://corpus/missing.txt"], corpus=True)
        storage = Storage(options={"skip_instance_cache": True}, retries=1)
        assert resolve_input(InputSpec("s3://corpus/shards.txt", storage=storage)) == (
            "tar", ["s3://corpus/shards/000000.tar"])
        assert resolve_input(InputSpec("s3://corpus/shards/{000000..000000}.tar", storage=storage))[1] == [
            "s3://corpus/shards/000000.tar"]
        with pytest.raises(ManifestError, match="no such object: s3://corpus/missing.txt"):
            resolve_input(InputSpec("s3://corpus/missing.txt", storage=storage))


def test_a_url_without_its_driver_is_refused_early(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gcsfs" else real(name, *a))
    with pytest.raises(UsageError, match="reading gs:// URLs needs gcsfs"):
        check_inputs_exist(["gs://bucket/shards.txt"], corpus=True)
    with pytest.raises(UsageError, match="no fsspec file system for nope:// URLs"):
        check_inputs_exist(["nope://bucket/shards.txt"], corpus=True)


def test_clip_shape_and_inputs_are_refused_before_torch_loads(tmp_path):
    """In a fresh process: the answers come (frames, shards, resolution), and torch / megatron-core / PyAV were
    never imported."""
    _shards(tmp_path / "shards", 2)
    (tmp_path / "t.model").touch()
    common = f"'--output-prefix', {str(tmp_path / 'o')!r}, '--text-tokenizer', {str(tmp_path / 't.model')!r}"
    good = str(tmp_path / "shards" / "{000000..000001}.tar")
    code = (
        "import sys\n"
        "from nemo_cosmos_tokenizer.cli import build_dataset, main\n"
        f"rcs = [build_dataset.main(['--demo', '--output-prefix', {str(tmp_path / 'd')!r}, '--num-frames', '18']),\n"
        f"       build_dataset.main(['--input', {good!r}, {common}, '--num-frames', '18',\n"
        "                           '--tokenizer', 'Cosmos-0.1-Tokenizer-DV4x8x8']),\n"
        f"       build_dataset.main(['--input', {str(tmp_path / 'shards' / '{000000..000002}.tar')!r}, {common}]),\n"
        f"       build_dataset.main(['--input', 's3://corpus/none.txt', {common}, '--num-frames', '16']),\n"
        f"       build_dataset.main(['--input', {good!r}, {common}, '--resolution', '256', '440']),\n"
        f"       main.main(['evaluate', {str(tmp_path / 'clips' / '*.mp4')!r}, '--tokenizer', 'tiny-random-dv8x16x16',\n"
        f"                  '--output-dir', {str(tmp_path / 'eval')!r}])]\n"
        "print(rcs, sorted(m for m in ('torch', 'megatron', 'av', 'decord', 's3fs') if m in sys.modules))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.stdout.strip() == "[2, 2, 2, 2, 2, 2] []", done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert errors[0] == "error: --num-frames must be 1 + k*8 for this tokenizer (1, 9, 17, ...), got 18; use 17 or 25"
    assert "k*4" in errors[1] and "use 17 or 21" in errors[1]
    assert "000002.tar" in errors[2] and "k*8" in errors[3]
    assert errors[4].startswith("error: --resolution 256x440 must be made of multiples of the tokenizer's spatial "
                                "compression 16; use e.g. 256x448")
    assert "hint: tiny-random-dv8x16x16 compresses 8x16x16 (time x height x width)" in done.stderr
    assert errors[5].startswith("error: none of the 1 input(s) exist: ")  # evaluate: the same check
    assert not (tmp_path / "d.demo-inputs").exists()  # refused before the demo wrote its sample inputs
