"""The process groups of a training run and the collectives it needs: a 1-process gloo group when alone
(megatron-core needs one), ``parallel_state``'s tensor/data-parallel split, the global gradient norm across
tensor-parallel shards, parameter counts, and the peak FLOP/s a run's MFU is measured against."""

from __future__ import annotations

import socket

import torch

from .config import TrainConfig

#: Dense bfloat16 peak of known GPUs, TFLOP/s (NVIDIA data sheets; SXM parts), for MFU; the first name contained
#: in the device's name wins ("H100 PCIe" before "H100").
PEAK_TFLOPS = {"H200": 989.4, "H100 PCIe": 756.0, "H100 NVL": 835.0, "H100": 989.4, "A100": 312.0, "L40S": 362.0}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def init_parallel(config: TrainConfig) -> tuple[torch.device, bool]:
    """Process group (a 1-process gloo group when alone: megatron-core needs one) and parallel_state."""
    import torch.distributed as dist
    from megatron.core import parallel_state

    from ..distributed import get_dist_env, select_device

    env = get_dist_env()
    device = select_device(config.device, env)
    created = False
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if env.world_size == 1:
            dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{free_port()}", rank=0, world_size=1)
        else:
            dist.init_process_group(backend, rank=env.rank, world_size=env.world_size)
        created = True
    world = dist.get_world_size()
    if world % config.tensor_parallel:
        raise ValueError(f"{world} processes cannot be split into tensor-parallel groups of {config.tensor_parallel}")
    parallel_state.initialize_model_parallel(tensor_model_parallel_size=config.tensor_parallel)
    if device.type == "cuda":
        from megatron.core.tensor_parallel.random import model_parallel_cuda_manual_seed

        model_parallel_cuda_manual_seed(config.seed)
    return device, created


def all_reduce(values: torch.Tensor, group) -> torch.Tensor:
    import torch.distributed as dist

    if dist.get_world_size(group) > 1:
        dist.all_reduce(values, group=group)
    return values


def clip_grad_norm(params: list[torch.nn.Parameter], max_norm: float) -> float:
    """Clip by the global norm over every tensor-parallel shard (replicated parameters counted once)."""
    from megatron.core import parallel_state
    from megatron.core.tensor_parallel import param_is_not_tensor_parallel_duplicate

    grads = [p.grad for p in params if p.grad is not None]
    local = [g for p, g in zip(params, grads) if param_is_not_tensor_parallel_duplicate(p)]
    sq = torch.stack([g.float().pow(2).sum() for g in local]).sum() if local else torch.zeros((), device=grads[0].device)
    sq = all_reduce(sq, parallel_state.get_tensor_model_parallel_group())
    norm = float(sq.sqrt())
    if max_norm > 0 and norm > max_norm:
        for g in grads:
            g.mul_(max_norm / (norm + 1e-6))
    return norm


def count_parameters(model, device: torch.device) -> int:
    """Parameters of the whole model: tensor-parallel shards summed, replicated parameters counted once."""
    from megatron.core import parallel_state
    from megatron.core.tensor_parallel import param_is_not_tensor_parallel_duplicate

    local = sum(p.numel() for p in model.parameters() if param_is_not_tensor_parallel_duplicate(p))
    total = torch.tensor([local], dtype=torch.float64, device=device)
    return int(all_reduce(total, parallel_state.get_tensor_model_parallel_group()).item())


def peak_flops(config: TrainConfig, device: torch.device) -> float | None:
    if config.peak_tflops:
        return config.peak_tflops * 1e12
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, tflops in PEAK_TFLOPS.items():
        if key in name:
            return tflops * 1e12
    return None
