"""Rank/world/device from the launcher's environment (no process group needed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nemo_cosmos_tokenizer.distributed import (
    DistEnv,
    all_gather_object,
    default_backend,
    broadcast_object,
    expand_slurm_nodelist,
    get_dist_env,
    init_distributed,
    select_device,
)


def test_no_launcher_is_one_process():
    env = get_dist_env({"PATH": "/bin"})
    assert env == DistEnv() and not env.is_distributed and env.is_main


def test_torchrun_variables():
    env = get_dist_env({
        "RANK": "5", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "4", "GROUP_RANK": "1",
        "GROUP_WORLD_SIZE": "2", "MASTER_ADDR": "node0", "MASTER_PORT": "29500",
        "SLURM_PROCID": "1", "SLURM_STEP_ID": "0",  # srun + torchrun: torchrun's ranks win
    })
    assert (env.rank, env.world_size, env.local_rank, env.local_world_size) == (5, 8, 1, 4)
    assert (env.node_rank, env.num_nodes, env.launcher, env.master_addr, env.master_port) == (1, 2, "torchrun", "node0", 29500)


def test_srun_without_torchrun():
    env = get_dist_env({
        "SLURM_PROCID": "6", "SLURM_STEP_ID": "0", "SLURM_STEP_NUM_TASKS": "8", "SLURM_LOCALID": "2",
        "SLURM_NODEID": "1", "SLURM_STEP_NUM_NODES": "2", "SLURM_STEP_TASKS_PER_NODE": "4(x2)",
        "SLURM_STEP_NODELIST": "gpu[007-008]", "SLURM_JOB_ID": "123456",
    })
    assert (env.rank, env.world_size, env.local_rank, env.local_world_size) == (6, 8, 2, 4)
    assert (env.node_rank, env.num_nodes, env.launcher) == (1, 2, "slurm")
    assert env.master_addr == "gpu007" and env.master_port == 20000 + 123456 % 20000


def test_salloc_shell_is_one_process():
    # Inside an allocation but outside a job step (python started by hand): not a distributed job.
    assert get_dist_env({"SLURM_PROCID": "0", "SLURM_NTASKS": "8", "SLURM_JOB_ID": "1"}) == DistEnv()


def test_inconsistent_ranks_are_rejected():
    with pytest.raises(ValueError, match="rank 4 outside a world of 4"):
        get_dist_env({"RANK": "4", "WORLD_SIZE": "4"})
    with pytest.raises(ValueError, match="not an integer"):
        get_dist_env({"RANK": "x", "WORLD_SIZE": "4"})


@pytest.mark.parametrize(
    "nodelist, hosts",
    [
        ("node1", ["node1"]),
        ("gpu[001-003,007],login1", ["gpu001", "gpu002", "gpu003", "gpu007", "login1"]),
        ("a[8-10]-ib", ["a8-ib", "a9-ib", "a10-ib"]),
        ("x1,y[2,4]", ["x1", "y2", "y4"]),
    ],
)
def test_slurm_nodelist(nodelist, hosts):
    assert expand_slurm_nodelist(nodelist) == hosts


def test_device_selection_on_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert select_device("auto", DistEnv()) == torch.device("cpu")
    assert select_device(None, DistEnv()) == torch.device("cpu")
    from nemo_cosmos_tokenizer.devices import DeviceUnavailableError

    with pytest.raises(DeviceUnavailableError, match="device cuda was asked for, but") as info:
        select_device("cuda", DistEnv())
    assert "--device cpu" in info.value.hint  # the CLIs print it as the hint line


def test_device_per_local_rank(monkeypatch):
    chosen = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    env = DistEnv(rank=3, world_size=4, local_rank=3, local_world_size=4)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert select_device("auto", env) == torch.device("cuda", 3) and chosen[-1] == torch.device("cuda", 3)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)  # srun --gpus-per-task=1: one GPU visible per task
    assert select_device("cuda", env) == torch.device("cuda", 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(RuntimeError, match="only 2 GPUs are visible"):
        select_device("auto", env)
    assert select_device("cuda:1", env) == torch.device("cuda", 1)  # explicit wins


def test_backend_is_nccl_only_with_a_gpu_per_local_rank():
    two_local = DistEnv(rank=1, world_size=2, local_rank=1, local_world_size=2)
    assert default_backend("cuda", two_local, cuda_device_count=2) == "nccl"
    assert default_backend("cuda", two_local, cuda_device_count=1) == "gloo"  # NCCL refuses two ranks on one GPU
    assert default_backend("cpu", two_local, cuda_device_count=0) == "gloo"


def test_single_process_needs_no_group():
    assert init_distributed(DistEnv(), torch.device("cpu")) is False
    assert not torch.distributed.is_initialized()
    assert all_gather_object({"a": 1}) == [{"a": 1}] and broadcast_object([3]) == [3]


def test_import_starts_nothing():
    code = (
        "import sys, nemo_cosmos_tokenizer.distributed, nemo_cosmos_tokenizer.data.build;"
        "import torch.distributed as d; assert not d.is_initialized();"
        "assert 'megatron' not in ' '.join(sys.modules), 'megatron imported'"
    )
    repo = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=repo,
                   env={"RANK": "0", "WORLD_SIZE": "2", "PATH": "/usr/bin", "PYTHONPATH": str(repo)})
