"""Rank, world size and device of this process, read from the launcher's environment; the process group.

Nothing happens at import: :func:`get_dist_env` reads ``os.environ`` when called, and a process group exists only
between :func:`init_distributed` and :func:`destroy_distributed` (or inside :func:`distributed_session`), and only
when the world holds more than one process.

Launchers understood, first match wins:

* **torchrun** (``torch.distributed.run``, also what NeMo-Run's ``launcher="torchrun"`` starts): ``RANK``,
  ``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``, ``GROUP_RANK`` (node), ``GROUP_WORLD_SIZE`` (nodes); the
  rendezvous store is torchrun's.
* **SLURM** ``srun`` with one task per GPU and no torchrun: ``SLURM_PROCID``, ``SLURM_STEP_NUM_TASKS`` (or
  ``SLURM_NTASKS``), ``SLURM_LOCALID``, ``SLURM_NODEID``, ``SLURM_STEP_NUM_NODES``. Only inside a job step
  (``SLURM_STEP_ID`` set): a plain ``python`` in an ``salloc`` shell stays one process. The rendezvous address is
  ``MASTER_ADDR`` if set, else the first host of the step's node list; the port ``MASTER_PORT`` if set, else
  derived from the job id.
* otherwise a single process (rank 0 of 1).

Devices: ``auto`` picks ``cuda:<local rank>`` when CUDA is available (``cuda:0`` if each process sees exactly one
GPU, as with ``srun --gpus-per-task=1``), else the CPU. The backend follows the device: NCCL on CUDA with a GPU per
local rank, gloo on CPU or when ranks share a GPU.
"""

from __future__ import annotations

import logging
import os
import re
import socket
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Iterator, Mapping

log = logging.getLogger(__name__)

__all__ = [
    "DistEnv",
    "get_dist_env",
    "select_device",
    "default_backend",
    "init_distributed",
    "destroy_distributed",
    "distributed_session",
    "is_initialized",
    "barrier",
    "all_gather_object",
    "broadcast_object",
    "expand_slurm_nodelist",
    "collective_timeout",
    "DEFAULT_TIMEOUT",
]

#: Collective timeout: ranks wait for each other at the end of their share of chunks, so a straggler may be one
#: chunk behind; torch's default (10 to 30 minutes) is too short for large chunks. Override with
#: ``NCT_DIST_TIMEOUT_MINUTES``.
DEFAULT_TIMEOUT = timedelta(hours=2)


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    node_rank: int = 0
    num_nodes: int = 1
    launcher: str = "none"
    """``"torchrun"``, ``"slurm"`` or ``"none"``."""
    master_addr: str | None = None
    master_port: int | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank {self.rank} outside a world of {self.world_size} processes")
        if not 0 <= self.local_rank < max(self.local_world_size, 1):
            raise ValueError(f"local rank {self.local_rank} outside {self.local_world_size} local processes")

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def describe(self) -> str:
        return (
            f"rank {self.rank}/{self.world_size} (local {self.local_rank}/{self.local_world_size}, "
            f"node {self.node_rank}/{self.num_nodes}, {self.launcher}) on {socket.gethostname()}"
        )


def _int(environ: Mapping[str, str], *names: str, default: int | None = None) -> int | None:
    for name in names:
        value = environ.get(name)
        if value not in (None, ""):
            try:
                return int(value)
            except ValueError:
                raise ValueError(f"environment variable {name}={value!r} is not an integer") from None
    return default


def expand_slurm_nodelist(nodelist: str) -> list[str]:
    """``"gpu[001-003,007],login1"`` -> ``["gpu001", "gpu002", "gpu003", "gpu007", "login1"]`` (SLURM's compact
    host list, as ``scontrol show hostnames`` prints it; zero padding kept)."""
    hosts: list[str] = []
    for match in re.finditer(r"([^,\[]+)(?:\[([^\]]*)\])?([^,]*)", nodelist):
        stem, ranges, suffix = match.groups()
        if not stem and not ranges:
            continue
        if ranges is None:
            hosts.append(stem + suffix)
            continue
        for part in ranges.split(","):
            lo, _, hi = part.partition("-")
            if not hi:
                hosts.append(f"{stem}{lo}{suffix}")
                continue
            width = len(lo)
            for i in range(int(lo), int(hi) + 1):
                hosts.append(f"{stem}{i:0{width}d}{suffix}")
    return hosts


def _slurm_tasks_on_node(tasks_per_node: str | None, node_id: int) -> int | None:
    """Tasks on node ``node_id`` from SLURM's ``"4(x2),3"`` notation."""
    if not tasks_per_node:
        return None
    counts: list[int] = []
    for part in tasks_per_node.split(","):
        m = re.fullmatch(r"(\d+)(?:\(x(\d+)\))?", part.strip())
        if not m:
            return None
        counts += [int(m.group(1))] * int(m.group(2) or 1)
    return counts[node_id] if node_id < len(counts) else None


def get_dist_env(environ: Mapping[str, str] | None = None) -> DistEnv:
    """Read rank and world from ``environ`` (default ``os.environ``); see the module docstring for the sources."""
    env = os.environ if environ is None else environ
    if "RANK" in env and "WORLD_SIZE" in env:  # torchrun (or any launcher following its convention)
        world = _int(env, "WORLD_SIZE")
        local_world = _int(env, "LOCAL_WORLD_SIZE", default=world)
        return DistEnv(
            rank=_int(env, "RANK"),
            world_size=world,
            local_rank=_int(env, "LOCAL_RANK", default=0),
            local_world_size=local_world,
            node_rank=_int(env, "GROUP_RANK", "NODE_RANK", default=0),
            num_nodes=_int(env, "GROUP_WORLD_SIZE", "NNODES", default=max(1, world // max(local_world, 1))),
            launcher="torchrun",
            master_addr=env.get("MASTER_ADDR"),
            master_port=_int(env, "MASTER_PORT"),
        )
    if "SLURM_PROCID" in env and "SLURM_STEP_ID" in env:  # srun, one task per GPU, no torchrun
        world = _int(env, "SLURM_STEP_NUM_TASKS", "SLURM_NTASKS", default=1)
        node = _int(env, "SLURM_NODEID", default=0)
        nodes = _int(env, "SLURM_STEP_NUM_NODES", "SLURM_JOB_NUM_NODES", "SLURM_NNODES", default=1)
        local_world = _slurm_tasks_on_node(env.get("SLURM_STEP_TASKS_PER_NODE") or env.get("SLURM_TASKS_PER_NODE"), node)
        nodelist = env.get("SLURM_STEP_NODELIST") or env.get("SLURM_JOB_NODELIST") or ""
        hosts = expand_slurm_nodelist(nodelist) if nodelist else []
        job_id = _int(env, "SLURM_JOB_ID", default=0)
        return DistEnv(
            rank=_int(env, "SLURM_PROCID"),
            world_size=world,
            local_rank=_int(env, "SLURM_LOCALID", default=0),
            local_world_size=local_world or max(1, world // max(nodes, 1)),
            node_rank=node,
            num_nodes=nodes,
            launcher="slurm",
            master_addr=env.get("MASTER_ADDR") or (hosts[0] if hosts else None),
            master_port=_int(env, "MASTER_PORT", default=20000 + job_id % 20000),
        )
    return DistEnv()


def select_device(requested: str | None = "auto", env: DistEnv | None = None):
    """The ``torch.device`` this process encodes on; makes it the current CUDA device.

    ``auto``/``None``: ``cuda:<local rank>`` when CUDA is available, else ``cpu``. ``cuda``: the local rank's GPU.
    ``cuda:N``/``cpu``: as given (e.g. with one ``CUDA_VISIBLE_DEVICES`` per process).
    """
    import torch

    from .devices import check_device, resolve_device

    env = env or get_dist_env()
    requested = "auto" if requested in (None, "") else str(requested).strip().lower()
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda":
        count = torch.cuda.device_count()
        if count == 0:
            check_device(torch.device("cuda"))  # raises DeviceUnavailableError: one line and a hint in the CLIs
        if env.local_rank < count:
            index = env.local_rank
        elif count == 1:  # each process sees its own single GPU (srun --gpus-per-task=1, CUDA_VISIBLE_DEVICES)
            index = 0
        else:
            raise RuntimeError(
                f"local rank {env.local_rank} but only {count} GPUs are visible on {socket.gethostname()}: "
                f"start at most {count} processes per node (torchrun --nproc-per-node {count})"
            )
        device = torch.device("cuda", index)
    else:
        device = resolve_device(requested)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


def collective_timeout(timeout: timedelta | float | None = None) -> timedelta:
    """``timeout`` as a timedelta; default ``NCT_DIST_TIMEOUT_MINUTES`` or :data:`DEFAULT_TIMEOUT`."""
    if isinstance(timeout, timedelta):
        return timeout
    if timeout is not None:
        return timedelta(seconds=float(timeout))
    minutes = os.environ.get("NCT_DIST_TIMEOUT_MINUTES")
    return timedelta(minutes=float(minutes)) if minutes else DEFAULT_TIMEOUT


def is_initialized() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def default_backend(device_type: str, env: DistEnv, cuda_device_count: int) -> str:
    """NCCL when every local rank has a GPU of its own, else gloo.

    NCCL refuses two ranks on one GPU, and the builder's collectives only move small Python objects (chunk lists,
    counters), so gloo costs nothing there; it lets several processes share a GPU (more CPU decode per GPU).
    ``NCT_DIST_BACKEND`` overrides the choice.
    """
    if device_type == "cuda" and env.local_world_size <= cuda_device_count:
        return "nccl"
    if device_type == "cuda":
        log.info("%d local ranks share %d GPU(s): using gloo (NCCL needs one GPU per rank)",
                 env.local_world_size, cuda_device_count)
    return "gloo"


def init_distributed(
    env: DistEnv | None = None,
    device=None,
    *,
    backend: str | None = None,
    timeout: timedelta | float | None = None,
) -> bool:
    """Create the default process group when the world holds more than one process.

    ``backend`` defaults to ``$NCT_DIST_BACKEND``, else :func:`default_backend` (NCCL for a CUDA ``device`` with a GPU
    per local rank, gloo otherwise). Returns ``True`` if this call created
    the group (the caller then owns :func:`destroy_distributed`), ``False`` for a single process or an existing
    group (whose size must match ``env``).
    """
    import torch
    import torch.distributed as dist

    env = env or get_dist_env()
    if not env.is_distributed:
        return False
    if not dist.is_available():  # pragma: no cover - every supported torch build has it
        raise RuntimeError("torch.distributed is not available in this torch build")
    if dist.is_initialized():
        if dist.get_world_size() != env.world_size or dist.get_rank() != env.rank:
            raise RuntimeError(
                f"a process group of rank {dist.get_rank()}/{dist.get_world_size()} exists, the environment says "
                f"{env.rank}/{env.world_size}"
            )
        return False
    device = torch.device(device) if device is not None else torch.device("cpu")
    cuda_count = torch.cuda.device_count() if device.type == "cuda" else 0
    backend = backend or os.environ.get("NCT_DIST_BACKEND") or default_backend(device.type, env, cuda_count)
    kwargs = dict(backend=backend, rank=env.rank, world_size=env.world_size, timeout=collective_timeout(timeout))
    if env.launcher == "slurm":  # torchrun provides MASTER_ADDR/PORT (env://); srun alone does not
        if not env.master_addr:
            raise RuntimeError("cannot find the rendezvous host: set MASTER_ADDR (SLURM_STEP_NODELIST is empty)")
        kwargs["init_method"] = f"tcp://{env.master_addr}:{env.master_port}"
    if backend == "nccl" and device.type == "cuda":
        kwargs["device_id"] = device  # binds the communicator to this GPU: barriers need no device guess
    dist.init_process_group(**kwargs)
    log.info("process group up: %s, backend %s", env.describe(), backend)
    return True


def destroy_distributed() -> None:
    """Tear the default process group down (no-op without one)."""
    if is_initialized():
        import torch.distributed as dist

        dist.destroy_process_group()


@contextmanager
def distributed_session(
    device: str | None = "auto",
    *,
    env: DistEnv | None = None,
    backend: str | None = None,
    timeout: timedelta | float | None = None,
) -> Iterator[tuple[DistEnv, "object"]]:
    """``with distributed_session("auto") as (env, device): ...``: device selected, group created if needed and
    destroyed on exit (only if this call created it)."""
    env = env or get_dist_env()
    dev = select_device(device, env)
    created = init_distributed(env, dev, backend=backend, timeout=timeout)
    try:
        yield env, dev
    finally:
        if created:
            destroy_distributed()


# ------------------------------------------------------------------------------- collectives (no-ops alone)
def barrier() -> None:
    if is_initialized():
        import torch.distributed as dist

        dist.barrier()


def all_gather_object(obj):
    """Every rank's ``obj`` (picklable), in rank order; ``[obj]`` without a process group."""
    if not is_initialized():
        return [obj]
    import torch.distributed as dist

    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj, src: int = 0):
    """``obj`` of rank ``src`` on every rank; ``obj`` itself without a process group."""
    if not is_initialized():
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]
