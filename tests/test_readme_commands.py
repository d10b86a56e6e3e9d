"""The README's commands are tests: every ```bash block is run or parsed as a user types it, read at test time.

Each bash block carries a marker on the line before its fence, ``<!-- readme-test: ACTIONS (reason) -->``, where
ACTIONS is one of ``run`` / ``parse`` / ``skip`` for the whole block or one per command, in order (a command is a
logical line: backslash continuations joined, comments dropped). An unmarked block fails the test, so new docs
cannot escape it.

* ``run``: in a shell, in a work folder of small fixtures (64x64 clips, two tar shards, a Parquet table, a
  sentencepiece model, a moto S3 server), with :data:`SUBSTITUTIONS` (placeholder inputs -> fixtures) and, for run
  only, :data:`RUN_SUBSTITUTIONS` (released tokenizers -> the built-in ``tiny-random-dv8x16x16``, GPU-sized
  resolutions -> 64x64); the exit status must be 0. Blocks run in README order (the quickstart's dataset is then
  inspected).
* ``parse``: commands needing a GPU, SLURM, several nodes, NeMo-Run executors or a download: the command's own
  argparse parser reads the argv (in this process, stopped right after parsing; ``torchrun`` / ``sbatch`` options
  are parsed too and the script they start is parsed in turn); then the command's early checks run where it has
  them (the builder: inputs as its planner reads them, tokenizer name, frame count, resolution, output folder;
  encode / reconstruct-*: tokenizer name and family, inputs; no torch). ``nemo`` (NeMo-Run's CLI) resolves the
  task with ``--dryrun`` instead of ``--yes``.
* ``skip``: installs and the test suite itself; the reason is required.

```python blocks are compiled; those marked ``<!-- readme-test: run -->`` are executed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import runpy
import shlex
import shutil
import subprocess
import sys
import tarfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
MARKER = re.compile(r"^\s*<!--\s*readme-test:\s*(?P<actions>[a-z ,]+?)\s*(?:\((?P<reason>[^)]*)\))?\s*-->\s*$")
FENCE = re.compile(r"^(?P<indent>\s*)```(?P<lang>\S*)\s*$")
ACTIONS = ("run", "parse", "skip")

#: Documented placeholder inputs -> the fixtures (every mode).
SUBSTITUTIONS = {
    "'shards/{000000..000099}.tar'": "'shards/{000000..000001}.tar'",  # two shards in the fixture
    "http://minio:9000": "{endpoint}",  # the moto S3 server
    "/data/captions.jsonl": "data/captions.jsonl",
    "/data/tokenizer.model": "tokenizer.model",
    "/data/tokens/clips": "data/tokens/clips",
}
#: Only where a command runs: no download, CPU-sized work.
RUN_SUBSTITUTIONS = {
    "Cosmos-1.0-Tokenizer-DV8x16x16": "tiny-random-dv8x16x16",
    "--resolution 256 448": "--resolution 64 64",
}
#: Batch scripts: what they start (checked against the script's text, so this table cannot silently rot).
LAUNCHERS = {
    "recipes/slurm/build_video_tokens.sbatch": ["scripts/build_video_token_dataset.py", "--config",
                                                "recipes/dv8x16x16_720p.yaml", "--no-progress"],
}
BUILD_PROGS = ("scripts/build_video_token_dataset.py", "build-dataset")
#: nemo-cosmos-tokenizer commands with an early tokenizer check -> the family they take.
TOKENIZER_COMMANDS = {"encode": None, "reconstruct-videos": "video", "reconstruct-images": "image"}


@dataclass(frozen=True)
class Block:
    lang: str
    line: int  # 1-based line of the opening fence
    text: str
    actions: tuple[str, ...] | None  # None: no marker
    reason: str | None

    def commands(self) -> list[str]:
        joined = re.sub(r"\\\n\s*", " ", self.text)
        found = []
        for line in joined.splitlines():
            words = shlex.split(line, comments=True)
            if words:
                found.append(shlex.join(words))
        return found

    def plan(self) -> list[tuple[str, str]]:
        """``(action, command)`` per command (one action for all, or one each)."""
        commands = self.commands()
        actions = self.actions * len(commands) if len(self.actions) == 1 else self.actions
        assert len(actions) == len(commands), f"README.md:{self.line}: {len(actions)} actions, {len(commands)} commands"
        return list(zip(actions, commands))


def readme_blocks(text: str) -> list[Block]:
    lines = text.splitlines()
    blocks, i = [], 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
        before = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        marker = MARKER.match(before)
        actions = tuple(re.split(r"[ ,]+", marker["actions"])) if marker else None
        body = textwrap.dedent("\n".join(lines[i + 1 : end]))
        blocks.append(Block(fence["lang"], i + 1, body, actions, marker["reason"] if marker else None))
        i = end + 1
    return blocks


BLOCKS = readme_blocks(README.read_text(encoding="utf-8"))
SHELL = ("bash", "sh", "shell", "console")


def _substitute(command: str, table: dict[str, str], endpoint: str = "") -> str:
    for old, new in table.items():
        command = command.replace(old, new.replace("{endpoint}", endpoint))
    return command


# ------------------------------------------------------------------------------------------------ markers
def test_every_bash_block_is_marked_with_one_action_per_command():
    bash = [b for b in BLOCKS if b.lang in SHELL]
    assert len(bash) >= 10, "the README's shell blocks were not found"
    for block in bash:
        assert block.actions is not None, (f"README.md:{block.line}: mark this block with <!-- readme-test: run|parse|"
                                           "skip (reason) --> (tests/test_readme_commands.py)")
        assert set(block.actions) <= set(ACTIONS), f"README.md:{block.line}: unknown action in {block.actions}"
        assert "skip" not in block.actions or block.reason, f"README.md:{block.line}: say why it is skipped"
        for action, command in block.plan():
            assert action == "skip" or not command.startswith("pip "), f"README.md:{block.line}: {command}"


def test_python_blocks_compile_and_the_marked_ones_run():
    python = [b for b in BLOCKS if b.lang == "python"]
    assert python
    for block in python:
        code = compile(block.text, f"README.md:{block.line}", "exec")
        if block.actions == ("run",):
            exec(code, {"__name__": "readme"})  # noqa: S102  (the README's own example)


# -------------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A folder where the README's placeholders exist: clips, a manifest, tar shards, a table, text tokenizers."""
    import numpy as np

    from nemo_cosmos_tokenizer.data.samples import train_sentencepiece, write_video

    root = tmp_path_factory.mktemp("readme")
    for name in ("scripts", "recipes"):
        (root / name).symlink_to(REPO / name)
    bin_dir = root / "bin"
    bin_dir.mkdir()
    wrappers = {"python": "", "python3": "", "nemo-cosmos-tokenizer": " -m nemo_cosmos_tokenizer.cli"}
    for name, module in wrappers.items():  # this checkout's code, this interpreter
        (bin_dir / name).write_text(f'#!/bin/sh\nexec "{sys.executable}"{module} "$@"\n')
        (bin_dir / name).chmod(0o755)
    captions = ["A red square slides to the right.", "Stripes scroll to the left.", "A grey gradient brightens."]
    (root / "clips").mkdir()
    yy, xx = np.mgrid[0:64, 0:64]
    for k, caption in enumerate(captions):  # 72 frames at 24 fps: a 33-frame clip at --fps 12 fits
        frames = [np.stack([(xx * 4 + t * (k + 1) * 3) % 256, (yy * 4) % 256, np.full_like(xx, 80 * k)], -1)
                  .astype(np.uint8) for t in range(72)]
        write_video(frames, root / "clips" / f"clip{k}.mp4", fps=24)
    shutil.copy(root / "clips" / "clip0.mp4", root / "in.mov")
    # What train-tokenizer leaves in <output-dir>/final: our safetensors format (here the built-in's weights)
    from nemo_cosmos_tokenizer.data.video_tokenizer import build_builtin_network
    from nemo_cosmos_tokenizer.hub.convert import save_pretrained

    save_pretrained(build_builtin_network("tiny-random-dv8x16x16"), root / "runs" / "dv" / "final")
    (root / "photos").mkdir()
    from PIL import Image

    Image.fromarray(frames[0]).save(root / "photos" / "p.jpg")
    Image.fromarray(frames[0]).save(root / "photo.png")
    shutil.copytree(root / "clips", root / "videos")
    (root / "data").mkdir()
    (root / "data" / "captions.jsonl").write_text("".join(
        json.dumps({"path": f"../clips/clip{k}.mp4", "text": c}) + "\n" for k, c in enumerate(captions)))
    model = train_sentencepiece(captions * 20, root / "spm")
    for name in ("tokenizer.model", "my_text_tokenizer.model", "tok.model"):
        shutil.copy(model, root / name)
    (root / "shards").mkdir()
    for s in range(2):  # WebDataset: <key>.mp4 + <key>.txt
        with tarfile.open(root / "shards" / f"{s:06d}.tar", "w") as tar:
            for k in range(s, 3, 2):
                tar.add(root / "clips" / f"clip{k}.mp4", f"sample{k}.mp4")
                data = captions[k].encode()
                info = tarfile.TarInfo(f"sample{k}.txt")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    with contextlib.suppress(ImportError):  # Panda-70M's shape: a list of segments and a caption per segment
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist([
            {"path": f"clips/clip{k}.mp4", "caption": [c, c + " Again."],
             "timestamp": [["0:00:00.000", "0:00:01.400"], ["0:00:01.500", "0:00:02.900"]]}
            for k, c in enumerate(captions)]), root / "panda70m_part0.parquet")
    # Over os.environ as it is when a command starts (the S3 server sets its credentials then).
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "PYTHONPATH": str(REPO),
           "HF_HUB_OFFLINE": "1", "NCT_DEBUG": ""}
    return root, env


@contextlib.contextmanager
def _s3(root: Path):
    """The moto S3 server with ``s3://corpus/shards.txt`` and its shards; yields the endpoint (or None)."""
    try:
        import moto.server  # noqa: F401
        import s3fs  # noqa: F401
    except ImportError:
        yield None
        return
    sys.path.insert(0, str(REPO / "tests" / "data"))
    from corpus_inputs import s3_server, upload

    with s3_server() as endpoint:
        shards = sorted((root / "shards").glob("*.tar"))
        files = {f"shards/{p.name}": p.read_bytes() for p in shards}
        files["shards.txt"] = "".join(f"shards/{p.name}\n" for p in shards).encode()
        upload(endpoint, "corpus", files)
        yield endpoint


# -------------------------------------------------------------------------------------------------- parse
class _Parsed(Exception):
    def __init__(self, namespace: argparse.Namespace) -> None:
        super().__init__("parsed")
        self.namespace = namespace


def _parse_python(argv: list[str], root: Path) -> argparse.Namespace:
    """Run ``python <script|-m module> args`` in this process up to its parser's answer (argparse errors raise
    SystemExit). Scripts and modules in this package parse before any work (DESIGN: nothing runs at import)."""
    original = argparse.ArgumentParser.parse_args

    def parse_and_stop(self, args=None, namespace=None):
        raise _Parsed(original(self, args, namespace))

    module = argv[1] if argv[0] == "-m" else None
    target = module or str(root / argv[0])
    saved = sys.argv
    sys.argv = [target, *argv[2 if module else 1 :]]
    argparse.ArgumentParser.parse_args = parse_and_stop
    try:
        if module:
            runpy.run_module(module, run_name="__main__", alter_sys=True)
        else:
            runpy.run_path(target, run_name="__main__")
    except _Parsed as parsed:
        return parsed.namespace
    finally:
        argparse.ArgumentParser.parse_args = original
        sys.argv = saved
    raise AssertionError(f"{shlex.join(argv)} ran to the end without parsing arguments")


def _parse(command: str, root: Path, env: dict[str, str]) -> None:
    words = shlex.split(command)
    while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):
        words = words[1:]  # VAR=value: the environment matters to running, not to parsing
    program, argv = words[0], words[1:]
    if program == "nemo":  # NeMo-Run's own parser resolves factory, config fields and executor
        argv = ["--dryrun" if a == "--yes" else a for a in argv]
        done = subprocess.run(["nemo", *argv], cwd=root, env={**os.environ, **env}, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0 and "Dry run for task" in done.stdout, done.stdout[-2000:] + done.stderr[-2000:]
        return
    if program == "torchrun":
        from torch.distributed.run import get_args_parser

        args = get_args_parser().parse_args(argv)
        script = ["-m", args.training_script] if args.module else [args.training_script]
        return _parse(shlex.join(["python", *script, *args.training_script_args]), root, env)
    if program == "sbatch":
        at = next(i for i, a in enumerate(argv) if a.endswith(".sbatch"))
        script = argv[at]
        started = LAUNCHERS[script]
        text = (root / script).read_text()
        assert all(part.split("/")[-1] in text for part in started), f"{script} no longer starts {started}"
        return _parse(shlex.join(["python", *started, *argv[at + 1 :]]), root, env)
    if program == "nemo-cosmos-tokenizer":
        program, argv = "python", ["-m", "nemo_cosmos_tokenizer.cli", *argv]
    assert program in ("python", "python3"), f"no parser known for {program!r}: run, parse or skip it"
    namespace = _parse_python(argv, root)
    # The commands' own early checks (no torch): inputs, tokenizer name and family, frame count, output folder.
    if argv[0] in BUILD_PROGS or argv[2:3] == ["build-dataset"]:
        from nemo_cosmos_tokenizer.cli.build_dataset import check_args

        check_args(namespace)
    elif argv[2:3] and argv[2] in TOKENIZER_COMMANDS:
        from nemo_cosmos_tokenizer.cli._tokenizer_args import check_tokenizer_args

        check_tokenizer_args(namespace, TOKENIZER_COMMANDS[argv[2]])


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(command: str, root: Path, env: dict[str, str]) -> None:
    started, cpu = time.perf_counter(), _children_cpu()
    done = subprocess.run(["bash", "-c", command], cwd=root, env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=300)
    # shown with -s: what each command costs (wall time depends on the machine's load, CPU time much less)
    print(f"{time.perf_counter() - started:6.1f} s, {_children_cpu() - cpu:5.1f} s CPU  {command}")
    assert done.returncode == 0, f"exit status {done.returncode}\n{done.stdout[-1500:]}\n{done.stderr[-3000:]}"


def _failures(blocks: list[Block], mode: str, work) -> list[str]:
    root, env = work
    failed = []
    with _s3(root) if mode == "run" else contextlib.nullcontext(None) as endpoint, contextlib.chdir(root):
        for block in blocks:
            if block.lang not in SHELL or block.actions is None:
                continue  # an unmarked block fails test_every_bash_block_is_marked_with_one_action_per_command
            for action, command in block.plan():
                if action != mode:
                    continue
                if mode == "run" and endpoint is None and "s3://" in command:
                    continue  # no moto/s3fs here: the S3 command cannot run
                typed = _substitute(command, SUBSTITUTIONS, endpoint or "http://127.0.0.1:9")
                if mode == "run":
                    typed = _substitute(typed, RUN_SUBSTITUTIONS)
                err = io.StringIO()
                try:
                    with contextlib.redirect_stderr(err):
                        (_run if mode == "run" else _parse)(typed, root, env)
                except (AssertionError, SystemExit, Exception) as exc:  # noqa: BLE001  (report every command)
                    failed.append(f"README.md:{block.line}: {mode} `{typed}` failed: {type(exc).__name__}: {exc}\n"
                                  f"{err.getvalue()[-1500:]}")
    return failed


def test_parse_commands(work):
    """Commands that need a GPU, SLURM, several nodes, NeMo-Run executors or a download: their flags still exist
    and the builder's early checks accept them."""
    failed = _failures(BLOCKS, "parse", work)
    assert not failed, "\n".join(failed)


def test_run_commands(work):
    """The commands a user can run on a CPU, on the fixtures, in README order."""
    failed = _failures(BLOCKS, "run", work)
    assert not failed, "\n".join(failed)
