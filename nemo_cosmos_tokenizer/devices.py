"""Device and dtype choice, made once at the boundary (the inference API, the dataset builder, the CLIs).

torch is imported inside the functions: the CLIs import :class:`DeviceUnavailableError` (to answer it as a usage
error) before any heavy import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__all__ = ["DeviceUnavailableError", "check_device", "default_dtype", "deterministic_kernels", "resolve_device",
           "resolve_dtype"]


class DeviceUnavailableError(Exception):
    """A device this process cannot use (``--device cuda`` with a CPU-only torch or no GPU, ``cuda:3`` with one
    GPU): ``str(err)`` says what, :attr:`hint` what to do. The CLIs print both and exit with status 2 (in
    :func:`nemo_cosmos_tokenizer.cli._errors.guarded`: no ValueError, so that the commands' own one-line handlers
    of bad values do not take it without its hint)."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


def check_device(device: torch.device) -> torch.device:
    """``device``, or :class:`DeviceUnavailableError` if it is a CUDA device this process cannot use (instead of
    torch's ``AssertionError: Torch not compiled with CUDA enabled`` at the first tensor moved there)."""
    import torch

    if device.type != "cuda":
        return device
    if not torch.cuda.is_available():
        why = ("this torch was built without CUDA" if torch.version.cuda is None
               else "no CUDA GPU is visible (driver, CUDA_VISIBLE_DEVICES)")
        raise DeviceUnavailableError(f"device {device} was asked for, but {why}",
                                     "use --device cpu, or install a CUDA build of torch on a machine with a GPU")
    count = torch.cuda.device_count()
    if device.index is not None and device.index >= count:
        raise DeviceUnavailableError(f"device {device} was asked for, but {count} GPU(s) are visible "
                                     f"(cuda:0{f' .. cuda:{count - 1}' if count > 1 else ''})",
                                     "pick a visible GPU, or check CUDA_VISIBLE_DEVICES")
    return device


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` -> ``cuda`` when available, else ``cpu``; a CUDA device this process cannot use raises
    :class:`DeviceUnavailableError`."""
    import torch

    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as err:  # "Expected one of cpu, cuda, ... device type at start of device string: gpu"
        raise DeviceUnavailableError(f"unknown device {str(device)!r}", "use cpu, cuda or cuda:<index>") from err
    return check_device(resolved)


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """``"bfloat16"`` / ``"bf16"`` / ``torch.bfloat16`` ... -> a floating ``torch.dtype``."""
    import torch

    if isinstance(dtype, torch.dtype):
        resolved = dtype
    else:
        aliases = {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "fp32": "float32", "float": "float32",
                   "fp64": "float64", "double": "float64"}
        name = aliases.get(str(dtype).lower().removeprefix("torch."), str(dtype).lower().removeprefix("torch."))
        resolved = getattr(torch, name, None)
        if not isinstance(resolved, torch.dtype):
            raise ValueError(f"unknown dtype {dtype!r}; use bfloat16, float16 or float32")
    if not resolved.is_floating_point:
        raise ValueError(f"dtype must be a floating type, got {resolved}")
    return resolved


def default_dtype(device: torch.device) -> torch.dtype:
    """bfloat16 on CUDA (the models' training precision), float32 elsewhere."""
    import torch

    return torch.bfloat16 if device.type == "cuda" else torch.float32


def deterministic_kernels() -> dict[str, bool]:
    """Choose GPU kernels without timing them, process-wide: the same inputs then give the same bits in every
    process on the same GPU model and software stack.

    Why: with ``cudnn.benchmark`` (which :func:`nemo_cosmos_tokenizer.fast.optimize` turns on) each process times
    cuDNN's algorithms and keeps the fastest, and Inductor times kernel configurations on first use; two processes
    pick differently and round bf16 differently (on an H100, 32 of 256 documents differed between two processes:
    BENCHMARKS.md, run 9; none in three processes with this set, run 10). This turns cuDNN's benchmarking off (its
    heuristics choose), asks cuDNN for deterministic algorithms, and sets Inductor's ``deterministic`` mode (no
    on-device benchmarking) where this torch has it. Returns what was set.

    The other cause of GPU tokens that change with circumstance is per model, not per process: the compiled fast
    path's rounding depended on how Inductor fused the ops around a value, so a window's tokens changed with its
    position in the batch; :attr:`.fast.FastOptions.eager_numerics` removes it (``BuildConfig.deterministic`` asks
    for both).
    """
    import torch

    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    applied = {"cudnn.benchmark": False, "cudnn.deterministic": True}
    try:
        import torch._inductor.config as inductor_config
    except ImportError:  # a torch without Inductor: nothing is compiled
        return applied
    if hasattr(inductor_config, "deterministic"):
        inductor_config.deterministic = True
        applied["inductor.deterministic"] = True
    return applied
