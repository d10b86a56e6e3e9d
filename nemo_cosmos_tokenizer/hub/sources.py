"""What a ``--tokenizer`` argument names, and loading it: the one resolver behind every command.

:func:`resolve_tokenizer_source` turns the text a user typed into a :class:`TokenizerSource` without importing
torch (so a command can refuse a wrong name before any heavy import), accepting

* a **built-in** name (:data:`~nemo_cosmos_tokenizer.registry.BUILTIN_MODELS`: ``tiny-random-dv8x16x16`` for video,
  ``tiny-random-di8x8`` for images; seeded random weights, no download);
* a **released** name or alias (``Cosmos-1.0-Tokenizer-DV8x16x16``, ``nvidia/...``, ``Cosmos-Tokenizer-DV4x8x8``),
  downloaded once into the Hugging Face cache;
* a **local folder**: NVIDIA's ``.jit`` files or our safetensors format (``config.json`` + ``model.safetensors``);
* a **.jit file** (``encoder.jit``, ``decoder.jit``, ``autoencoder.jit`` or another name holding one part);
* another **Hub repository** ``org/name`` with the released file layout (a mirror or a fine-tune).

Anything else raises :class:`UnknownTokenizerError`, whose message lists close matches among released *and*
built-in names. Loading is the inference package's (above this one): ``CausalVideoTokenizer.from_pretrained`` /
``ImageTokenizer.from_pretrained`` take every kind, and
:func:`nemo_cosmos_tokenizer.inference.from_source.load_tokenizer` also picks the class of an unknown family.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from ..registry import (
    BUILTIN_MODELS,
    PART_FILES,
    UnknownModelError,
    close_names,
    get_builtin_spec,
    get_spec,
    is_known_model,
    resolve_name,
)

__all__ = [
    "KINDS",
    "TokenizerSource",
    "UnknownTokenizerError",
    "build_builtin_network",
    "describe_accepted",
    "jit_file_arguments",
    "resolve_tokenizer_source",
]

#: The kinds of source, in the order :func:`resolve_tokenizer_source` tries them.
KINDS = ("builtin", "released", "directory", "jit-file", "hub-repo")


class UnknownTokenizerError(UnknownModelError):
    """A ``--tokenizer`` value that is no built-in, released name, folder, ``.jit`` file or Hub repository."""


@dataclass(frozen=True)
class TokenizerSource:
    """Where a tokenizer comes from (see the module docstring)."""

    kind: str
    """One of :data:`KINDS`."""

    value: str
    """Canonical name (built-in, released), the path (directory, jit-file) or the repository id (hub-repo)."""

    family: str | None = None
    """``CI``/``DI``/``CV``/``DV`` when known without reading weights (built-in and released names)."""

    part: str | None = None
    """jit-file only: the part the file holds when its name says so (``encoder.jit`` -> ``"encoder"``)."""


def describe_accepted() -> str:
    """One line saying what ``--tokenizer`` accepts (for ``--help`` and error messages)."""
    return (
        f"a built-in ({', '.join(BUILTIN_MODELS)}: random weights, no download), a released name (see "
        "'nemo-cosmos-tokenizer list-models'), a local folder of .jit or safetensors files, or a .jit file"
    )


def resolve_tokenizer_source(text: str | os.PathLike) -> TokenizerSource:
    """Say what ``text`` names; raises :class:`UnknownTokenizerError` (with close matches) if nothing.

    Existing paths win over names (a folder called like a released model is that folder). Cheap: no torch, no
    network, no file is opened.
    """
    raw = os.fspath(text).strip()
    if not raw:
        raise UnknownTokenizerError(f"empty tokenizer name; give {describe_accepted()}")
    path = Path(raw).expanduser()
    if path.is_dir():
        return TokenizerSource("directory", str(path))
    if path.is_file():
        if path.suffix != ".jit":
            raise UnknownTokenizerError(
                f"{raw} is a file but not a .jit file; give the folder that holds the checkpoint "
                f"(.jit files, or config.json + model.safetensors) or a .jit file"
            )
        part = next((p for p, name in PART_FILES.items() if path.name == name), None)
        return TokenizerSource("jit-file", str(path), part=part)
    builtin = get_builtin_spec(raw)
    if builtin is not None:
        return TokenizerSource("builtin", builtin.name, builtin.config.family)
    if is_known_model(raw):
        name = resolve_name(raw)
        return TokenizerSource("released", name, get_spec(name).config.family)
    looks_like_path = raw.startswith((".", "/", "~")) or "\\" in raw or raw.endswith((".jit", ".safetensors", ".json"))
    if looks_like_path:
        raise UnknownTokenizerError(f"no such tokenizer file or folder: {raw}")
    close = close_names(raw)
    if raw.count("/") == 1 and not raw.lower().startswith("nvidia/") and not close:
        return TokenizerSource("hub-repo", raw)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise UnknownTokenizerError(f"unknown tokenizer {raw!r}.{hint} Give {describe_accepted()}.")


def build_builtin_network(name: str):
    """The network of a built-in tokenizer (float32, CPU, eval mode), weights from its fixed seed."""
    import torch

    from ..networks import build_tokenizer

    spec = get_builtin_spec(name)
    if spec is None:
        raise UnknownTokenizerError(f"no built-in tokenizer {name!r}; built-ins: {', '.join(BUILTIN_MODELS)}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        network = build_tokenizer(spec.config)
    with torch.no_grad():
        for param in network.quant_conv.parameters():
            if param.ndim == 1:
                param.zero_()
            else:
                param.mul_(spec.quant_scale)
    return network.eval().requires_grad_(False)



def jit_file_arguments(path: str | os.PathLike, parts: Iterable[str]) -> dict[str, Path]:
    """The inference constructor's file arguments (``checkpoint`` / ``checkpoint_enc`` / ``checkpoint_dec``) for one
    ``.jit`` file and the parts a caller runs (``"encoder"``, ``"decoder"``; ``"autoencoder"`` = both).

    ``encoder.jit`` / ``decoder.jit`` hold one part (a caller that needs the other raises
    :class:`~.download.CheckpointNotFoundError` naming the files to give); ``autoencoder.jit`` and any other name
    hold what the caller needs (both parts: a whole autoencoder).
    """
    from .download import CheckpointNotFoundError

    path = Path(path)
    needed = set(parts)
    if "autoencoder" in needed:
        needed = (needed - {"autoencoder"}) | {"encoder", "decoder"}
    part = next((p for p, name in PART_FILES.items() if path.name == name), None)
    if part == "autoencoder":
        return {"checkpoint": path}
    if part is not None:
        if not needed <= {part}:
            missing = sorted(needed - {part})
            raise CheckpointNotFoundError(
                f"{path} holds only the {part}; this also needs the {' and '.join(missing)}: give the folder that "
                f"holds {', '.join(PART_FILES[p] for p in sorted(needed))}"
            )
        return {f"checkpoint_{part[:3]}": path}
    return {"checkpoint": path} if len(needed) > 1 else {f"checkpoint_{next(iter(needed))[:3]}": path}
