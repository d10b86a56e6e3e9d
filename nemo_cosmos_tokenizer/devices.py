"""Device and dtype choice, made once at the boundary (the inference API, the dataset builder, the CLIs)."""

from __future__ import annotations

import torch

__all__ = ["default_dtype", "resolve_device", "resolve_dtype"]


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` -> ``cuda`` when available, else ``cpu``."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """``"bfloat16"`` / ``"bf16"`` / ``torch.bfloat16`` ... -> a floating ``torch.dtype``."""
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
    return torch.bfloat16 if device.type == "cuda" else torch.float32
