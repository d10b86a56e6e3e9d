"""FP8 calibration: the scales of the mapped convolutions, measured on a few windows and stored beside the weights.

::

    calib = calibrate_fp8(model, windows, FastOptions(precision="fp8"))   # windows: [B, 3, T, H, W], a few clips
    save_fp8_calibration(calib, "checkpoints/DV8x16x16")                  # -> .../fp8_scales.safetensors
    fast = optimize(model, precision="fp8", fp8_scales="checkpoints/DV8x16x16", dtype=torch.bfloat16, device="cuda")

For each convolution that :func:`.fp8_plan.fp8_layer_plan` maps to FP8: the per-output-channel weight scales
``amax(|w[o]|) / 448`` and one input scale ``amax(|x|) / 448``, the largest absolute input the layer saw over all
calibration windows, encoder and decoder (forward pre-hooks on the plain modules; the decoder runs on the
encoder's own output, FSQ-quantized for discrete models). Inputs larger than that later saturate to +-448 steps.

The file is a safetensors file: ``<layer>.weight_scale`` ``[O]`` and ``<layer>.input_scale`` ``[1]`` (float32) per
layer, and string metadata (format tag, FP8 format, model family, windows, the patterns used). Loading returns
exactly the stored values.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import torch
from torch import nn

from ..networks.tokenizer import CosmosTokenizer
from .fp8_numerics import E4M3_MAX, scale_from_amax, weight_scales
from .fp8_plan import conv_modules, fp8_layer_plan
from .options import FastOptions

__all__ = ["FP8_SCALES_FILE", "Fp8Calibration", "calibrate_fp8", "load_fp8_calibration", "save_fp8_calibration"]

#: File name of the scales in a converted-weights folder (beside ``model.safetensors``).
FP8_SCALES_FILE = "fp8_scales.safetensors"
_FORMAT = "nemo-cosmos-tokenizer/fp8-scales"
_VERSION = "1"


@dataclass(frozen=True)
class Fp8Calibration:
    """Scales of the FP8 convolutions of one model, by plain module name."""

    input_scales: dict[str, float]
    """Per layer: ``amax(|input|) / 448`` over the calibration windows (a float32 value)."""
    weight_scales: dict[str, torch.Tensor]
    """Per layer: ``[O]`` float32, ``amax(|w[o]|) / 448`` per output channel (CPU)."""
    info: dict[str, str] = field(default_factory=dict)
    """Provenance, stored as the file's metadata: model family, windows and their shape, patterns."""

    def __post_init__(self) -> None:
        if set(self.input_scales) != set(self.weight_scales):
            raise ValueError("every calibrated layer needs both an input scale and weight scales; mismatched: "
                             f"{sorted(set(self.input_scales) ^ set(self.weight_scales))}")
        for name, s in self.input_scales.items():
            if not (s > 0 and s < float("inf")):
                raise ValueError(f"input scale of {name} must be positive and finite, got {s}")
        for name, s in self.weight_scales.items():
            if s.ndim != 1 or s.dtype != torch.float32 or not (torch.isfinite(s).all() and (s > 0).all()):
                raise ValueError(f"weight scales of {name} must be a 1-D positive finite float32 tensor")

    @property
    def layers(self) -> list[str]:
        return list(self.input_scales)


def _windows(windows: torch.Tensor | Iterable[torch.Tensor]) -> Iterable[torch.Tensor]:
    return [windows] if isinstance(windows, torch.Tensor) else windows


def calibrate_fp8(model: CosmosTokenizer, windows: torch.Tensor | Iterable[torch.Tensor],
                  options: FastOptions = FastOptions(precision="fp8")) -> Fp8Calibration:
    """Scales for the convolutions that ``options`` maps to FP8 (``fp8_include`` / ``fp8_exclude``).

    ``windows``: encoder inputs ``[B, 3, T, H, W]`` (or ``[B, 3, H, W]``) in [-1, 1], one tensor or several; each is
    encoded and (when the model has a decoder) decoded once, in ``model``'s dtype and device, without gradients.
    Raises if a mapped layer saw no input (a side without weights) or a non-finite one.
    """
    plan = [p for p in fp8_layer_plan(model, options.fp8_include, options.fp8_exclude) if p.fp8]
    modules = conv_modules(model)
    param = next(model.parameters())
    amax: dict[str, torch.Tensor] = {}

    def hook(name: str):
        def record(module: nn.Module, args: tuple) -> None:
            seen = args[0].detach().abs().amax().float()  # padding (zeros, copied frames) cannot raise the max
            amax[name] = seen if name not in amax else torch.maximum(amax[name], seen)
        return record

    handles = [modules[p.name].register_forward_pre_hook(hook(p.name)) for p in plan]
    shapes = []
    try:
        with torch.no_grad():
            for x in _windows(windows):
                x = x.to(device=param.device, dtype=param.dtype)
                shapes.append(list(x.shape))
                if model.encoder is None:
                    raise ValueError("calibration encodes the windows: this model has no encoder weights")
                h = model.encode_pre_quant(x)  # [B, C, (t), h, w]
                if model.decoder is not None:
                    model.decode_latent(h if model.quantizer is None else model.quantizer(h)[1])
    finally:
        for handle in handles:
            handle.remove()
    missing = [p.name for p in plan if p.name not in amax]
    if missing:
        raise ValueError(f"no calibration input reached {missing[:4]}{' ...' if len(missing) > 4 else ''} "
                         f"({len(missing)} layers); give windows, or exclude those layers (fp8_exclude)")
    input_scales = {}
    for name in amax:
        value = amax[name].item()
        if value != value or value == float("inf"):
            raise ValueError(f"calibration input of {name} is not finite (amax {value})")
        input_scales[name] = scale_from_amax(amax[name]).item()
    info = {"family": model.config.family, "windows": json.dumps(shapes),
            "dtype": str(param.dtype).removeprefix("torch."), "fp8_include": json.dumps(list(options.fp8_include)),
            "fp8_exclude": json.dumps(list(options.fp8_exclude))}
    scales = {p.name: weight_scales(_conv_weight(modules[p.name])).cpu() for p in plan}
    return Fp8Calibration(input_scales={p.name: input_scales[p.name] for p in plan}, weight_scales=scales, info=info)


def _conv_weight(conv: nn.Module) -> torch.Tensor:
    return conv.conv3d.weight if hasattr(conv, "conv3d") else conv.weight


def _scales_path(path: str | Path) -> Path:
    path = Path(path)
    return path / FP8_SCALES_FILE if path.is_dir() else path


def save_fp8_calibration(calibration: Fp8Calibration, path: str | Path) -> Path:
    """Write ``calibration`` to ``path`` (a file, or a folder: ``<folder>/fp8_scales.safetensors``); returns the
    file."""
    from safetensors.torch import save_file

    target = _scales_path(path)
    tensors = {}
    for name in calibration.layers:
        tensors[f"{name}.weight_scale"] = calibration.weight_scales[name].float().contiguous()
        tensors[f"{name}.input_scale"] = torch.tensor([calibration.input_scales[name]], dtype=torch.float32)
    metadata = {**calibration.info, "format": _FORMAT, "version": _VERSION, "fp8_dtype": "float8_e4m3fn",
                "fp8_max": repr(E4M3_MAX), "layers": json.dumps(calibration.layers)}
    target.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(target), metadata=metadata)
    return target


def load_fp8_calibration(path: str | Path) -> Fp8Calibration:
    """Read a file written by :func:`save_fp8_calibration` (or the folder holding ``fp8_scales.safetensors``)."""
    from safetensors import safe_open

    source = _scales_path(path)
    if not source.is_file():
        raise FileNotFoundError(f"no FP8 scales at {source}: make them with calibrate_fp8() + save_fp8_calibration()")
    with safe_open(str(source), framework="pt") as f:
        metadata = dict(f.metadata() or {})
        if metadata.get("format") != _FORMAT or metadata.get("version") != _VERSION:
            raise ValueError(f"{source} is not an FP8 scales file of version {_VERSION} (metadata format "
                             f"{metadata.get('format')!r}, version {metadata.get('version')!r})")
        if float(metadata.get("fp8_max", "nan")) != E4M3_MAX:
            raise ValueError(f"{source} was made for an FP8 maximum of {metadata.get('fp8_max')}, not {E4M3_MAX}")
        layers = json.loads(metadata["layers"])
        expected = {f"{n}.{kind}" for n in layers for kind in ("weight_scale", "input_scale")}
        if set(f.keys()) != expected:
            raise ValueError(f"{source}: tensors do not match its layer list (extra or missing: "
                             f"{sorted(set(f.keys()) ^ expected)[:6]})")
        weight = {n: f.get_tensor(f"{n}.weight_scale") for n in layers}
        inputs = {n: f.get_tensor(f"{n}.input_scale").item() for n in layers}
    info = {k: v for k, v in metadata.items() if k not in ("format", "version", "fp8_dtype", "fp8_max", "layers")}
    return Fp8Calibration(input_scales=inputs, weight_scales=weight, info=info)
