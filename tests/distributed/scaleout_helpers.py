"""Helpers for the scale-out tests: tiny inputs, the DV8x16x16 conformance model saved in our format, a reference
build made in this process, and launchers for ``torchrun`` (CPU, gloo) in a clean environment.

Inputs: the generated demo clips and image (``data/samples.py``) plus three more entries (two later ranges of
the same clips and a missing file), 9 samples in chunks of 2, so 5 chunks exist and two ranks share them
unevenly. Clips are 32x32, 9 frames: one chunk takes well under a second to encode.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path


REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "build_video_token_dataset.py"

#: Environment variables of an enclosing launcher that must not leak into the launched test jobs.
_LAUNCHER_PREFIXES = ("SLURM_", "TORCHELASTIC_", "PMI_", "OMPI_")
_LAUNCHER_NAMES = {"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "GROUP_WORLD_SIZE",
                   "ROLE_RANK", "ROLE_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "NODE_RANK"}


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _LAUNCHER_NAMES and not k.startswith(_LAUNCHER_PREFIXES)}
    env.update(OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun_command(nproc: int, script: Path, args: list[str], *, nnodes: int = 1, node_rank: int = 0,
                     endpoint: str | None = None, rdzv_id: str = "nct-test") -> list[str]:
    """``python -m torch.distributed.run`` (the interpreter running the tests) for one "node"."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc), "--max-restarts", "0"]
    if nnodes == 1:
        cmd += ["--standalone"]
    else:
        cmd += ["--nnodes", str(nnodes), "--node-rank", str(node_rank), "--rdzv-backend", "c10d",
                "--rdzv-endpoint", endpoint, "--rdzv-id", rdzv_id,
                # node 0 hosts the rendezvous store; node 1 only connects (no race for the port)
                "--rdzv-conf", f"is_host={1 if node_rank == 0 else 0}"]
    return cmd + [str(script), *args]


def run_command(cmd: list[str], cwd: Path, timeout: float = 240, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=clean_env(**env), capture_output=True, text=True, timeout=timeout)


SETTINGS = dict(resolution=[32, 32], num_frames=9, batch_size=2, chunk_size=2, device="cpu", progress=False)


def build_config(work, prefix, **changes):
    from nemo_cosmos_tokenizer.data import BuildConfig

    fields = dict(input=str(work["manifest"]), output_prefix=str(prefix), text_tokenizer=str(work["spm"]),
                  tokenizer=str(work["model_dir"]), **SETTINGS)
    fields.update(changes)
    return BuildConfig(**fields)


def cli_args(work, prefix, *, manifest=None, tokenizer=None) -> list[str]:
    """The command-line equivalent of :func:`build_config`."""
    return [
        "--input", str(manifest or work["manifest"]), "--output-prefix", str(prefix),
        "--text-tokenizer", str(work["spm"]), "--tokenizer", str(tokenizer or work["model_dir"]),
        "--resolution", "32", "32", "--num-frames", "9", "--batch-size", "2", "--chunk-size", "2",
        "--device", "cpu", "--no-progress",
    ]


def dataset_bytes(prefix) -> tuple[bytes, bytes]:
    return Path(f"{prefix}.bin").read_bytes(), Path(f"{prefix}.idx").read_bytes()
