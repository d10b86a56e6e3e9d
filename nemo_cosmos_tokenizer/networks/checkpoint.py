"""Checkpoint layouts of the networks: NVIDIA's ``<part>.jit`` key tables and the strict loader (pure torch).

The file formats (TorchScript state_dicts, our safetensors directory) and downloads live in
:mod:`nemo_cosmos_tokenizer.hub`; this module only maps tensors between a :class:`CosmosTokenizer` and a state_dict.
It reads the model by submodule name only (``encoder``, ``quant_conv``, ...), so it takes any ``nn.Module`` and
does not import the tokenizer module (which imports this one).

Key table (``model key`` -> key in NVIDIA's files; our module names are NVIDIA's, so only the FSQ copy of
``decoder.jit`` is renamed):

========================  ============================================================================
``encoder.jit``           ``encoder.*``, ``quant_conv.*``, discrete: ``quantizer.{_levels,_basis,implicit_codebook}``
``decoder.jit``           discrete: ``inv_quant.quantizer.*`` (our ``quantizer.*``), ``post_quant_conv.*``, ``decoder.*``
``autoencoder.jit``       ``encoder.*``, ``decoder.*``, ``quant_conv.*``, ``post_quant_conv.*``, discrete ``quantizer.*``
========================  ============================================================================

Loading is strict: a missing, unexpected or mis-shaped key raises :class:`StateDictMismatchError` naming the
keys. Buffers (``wavelets``, ``_arange``, ``patch_size_buffer``, ``_levels``, ``_basis``,
``implicit_codebook``) are constants of the architecture: their values are checked (within the precision of
the stored dtype, since NVIDIA's files are bfloat16) and never loaded. Floating tensors are cast to the
dtype of the model's parameter.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Iterator, Mapping

import torch
from torch import nn

__all__ = [
    "PARTS",
    "PART_FILES",
    "StateDictMismatchError",
    "cosmos_key_table",
    "cosmos_state_dict",
    "load_cosmos_state_dict",
]

from ..registry import PART_FILES  # noqa: E402  (the one part -> file table, defined with the released models)

#: The three weight layouts (``<part>.jit``).
PARTS: tuple[str, ...] = tuple(PART_FILES)

# (submodule of CosmosTokenizer, key prefix in the file), in the order the file holds them.
_LAYOUT: dict[str, tuple[tuple[str, str], ...]] = {
    "encoder": (("encoder", "encoder."), ("quant_conv", "quant_conv."), ("quantizer", "quantizer.")),
    "decoder": (("quantizer", "inv_quant.quantizer."), ("post_quant_conv", "post_quant_conv."), ("decoder", "decoder.")),
    "autoencoder": (
        ("encoder", "encoder."),
        ("decoder", "decoder."),
        ("quant_conv", "quant_conv."),
        ("post_quant_conv", "post_quant_conv."),
        ("quantizer", "quantizer."),
    ),
}

_MAX_LISTED = 20


class StateDictMismatchError(RuntimeError):
    """A state_dict does not fit the model; ``missing``, ``unexpected``, ``mismatched`` and ``wrong_values`` name the keys."""

    def __init__(self, part: str, missing=(), unexpected=(), mismatched=(), wrong_values=()) -> None:
        self.part = part
        self.missing = list(missing)
        self.unexpected = list(unexpected)
        self.mismatched = list(mismatched)  # (key, expected shape, given shape)
        self.wrong_values = list(wrong_values)  # (key, reason)
        lines = [f"state_dict does not match the {part} layout of this model:"]

        def listing(title: str, items: list[str]) -> None:
            if items:
                more = f" ... and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else ""
                lines.append(f"  {title} ({len(items)}): {', '.join(items[:_MAX_LISTED])}{more}")

        listing("missing keys", self.missing)
        listing("unexpected keys", self.unexpected)
        listing("wrong shapes", [f"{k} (model {tuple(e)}, given {tuple(g)})" for k, e, g in self.mismatched])
        listing("constant buffers with wrong values", [f"{k} ({why})" for k, why in self.wrong_values])
        if self.unexpected and not self.missing and part != "autoencoder":
            lines.append("  (is this a different part? pass part='encoder' | 'decoder' | 'autoencoder')")
        lines.append("  (is the architecture right? build the model from the checkpoint's TokenizerConfig)")
        super().__init__("\n".join(lines))


def _check_part(part: str) -> None:
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, got {part!r}")


def _own_tensors(module: torch.nn.Module) -> Iterator[tuple[str, torch.Tensor, bool]]:
    """``(name, tensor, is_buffer)`` of a module tree in ``state_dict`` order, non-persistent buffers included."""
    for prefix, mod in module.named_modules():
        dot = f"{prefix}." if prefix else ""
        for name, param in mod._parameters.items():
            if param is not None:
                yield dot + name, param, False
        for name, buf in mod._buffers.items():
            if buf is not None:
                yield dot + name, buf, True


def cosmos_key_table(model: nn.Module, part: str) -> "OrderedDict[str, tuple[str, torch.Tensor, bool]]":
    """``file key -> (model key, model tensor, is_buffer)`` for ``part``, in the file's order."""
    _check_part(part)
    table: OrderedDict[str, tuple[str, torch.Tensor, bool]] = OrderedDict()
    for child_name, file_prefix in _LAYOUT[part]:
        child = getattr(model, child_name, None)
        if child is None:  # continuous models have no quantizer
            continue
        for name, tensor, is_buffer in _own_tensors(child):
            table[file_prefix + name] = (f"{child_name}.{name}", tensor, is_buffer)
    return table


def cosmos_state_dict(model: nn.Module, part: str = "autoencoder") -> "OrderedDict[str, torch.Tensor]":
    """The weights of ``part`` in NVIDIA's ``<part>.jit`` key layout and order (detached, not copied)."""
    return OrderedDict((key, tensor.detach()) for key, (_, tensor, _) in cosmos_key_table(model, part).items())


def _buffer_value_problem(given: torch.Tensor, expected: torch.Tensor) -> str | None:
    """Why ``given`` is not the constant ``expected`` (within the precision of the less precise dtype), or None."""
    if given.device.type == "meta" or expected.device.type == "meta":
        return None
    if not given.is_floating_point() and not expected.is_floating_point():
        same = torch.equal(given.detach().cpu().to(torch.int64), expected.detach().cpu().to(torch.int64))
        return None if same else "integer values differ"
    eps = max(torch.finfo(t.dtype).eps for t in (given, expected) if t.is_floating_point())
    a = given.detach().cpu().to(torch.float64)
    b = expected.detach().cpu().to(torch.float64)
    if not torch.isfinite(a).all():
        return "non-finite values"
    diff = (a - b).abs().max().item() if a.numel() else 0.0
    if diff > eps * (1.0 + b.abs().max().item() if b.numel() else 1.0):
        return f"max abs difference {diff:.3g} from the expected constant"
    return None


def load_cosmos_state_dict(model: nn.Module, state_dict: Mapping[str, torch.Tensor], part: str = "autoencoder") -> None:
    """Load NVIDIA-layout weights of ``part`` into ``model`` strictly (see the module docstring)."""
    table = cosmos_key_table(model, part)
    missing = [k for k in table if k not in state_dict]
    unexpected = [k for k in state_dict if k not in table]
    mismatched = [
        (k, tuple(table[k][1].shape), tuple(v.shape))
        for k, v in state_dict.items()
        if k in table and tuple(v.shape) != tuple(table[k][1].shape)
    ]
    if missing or unexpected or mismatched:
        raise StateDictMismatchError(part, missing, unexpected, mismatched)
    wrong = []
    for key, (_, tensor, is_buffer) in table.items():
        if is_buffer:
            problem = _buffer_value_problem(state_dict[key], tensor)
            if problem:
                wrong.append((key, problem))
    if wrong:
        raise StateDictMismatchError(part, wrong_values=wrong)
    with torch.no_grad():
        for key, (_, tensor, is_buffer) in table.items():
            if not is_buffer and tensor.device.type != "meta":
                tensor.copy_(state_dict[key].to(dtype=tensor.dtype))
