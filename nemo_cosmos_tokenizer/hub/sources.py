"""What a ``--tokenizer`` argument names, and loading it: the one resolver behind every command.

:func:`resolve_tokenizer_source` turns the text a user typed into a :class:`TokenizerSource` without importing
torch (so a command can refuse a wrong name before any heavy import), accepting

* a **built-in** name (:data:`~nemo_cosmos_tokenizer.registry.BUILTIN_MODELS`, e.g. ``tiny-random-dv8x16x16``:
  seeded random weights, no download);
* a **released** name or alias (``Cosmos-1.0-Tokenizer-DV8x16x16``, ``nvidia/...``, ``Cosmos-Tokenizer-DV4x8x8``),
  downloaded once into the Hugging Face cache;
* a **local folder**: NVIDIA's ``.jit`` files or our safetensors format (``config.json`` + ``model.safetensors``);
* a **.jit file** (``encoder.jit``, ``decoder.jit``, ``autoencoder.jit`` or another name holding one part);
* another **Hub repository** ``org/name`` with the released file layout (a mirror or a fine-tune).

Anything else raises :class:`UnknownTokenizerError`, whose message lists close matches among released *and*
built-in names. :func:`load_tokenizer` loads a source as a
:class:`~nemo_cosmos_tokenizer.inference.CausalVideoTokenizer` or
:class:`~nemo_cosmos_tokenizer.inference.ImageTokenizer`.
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
    "load_tokenizer",
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
    if raw.count("/") == 1 and not raw.lower().startswith("nvidia/") and not close_names(raw):
        return TokenizerSource("hub-repo", raw)
    close = close_names(raw)
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


def _parts_needed(parts: Iterable[str]) -> set[str]:
    parts = set(parts)
    if "autoencoder" in parts:
        parts = (parts - {"autoencoder"}) | {"encoder", "decoder"}
    return parts


def load_tokenizer(
    source: TokenizerSource | str | os.PathLike,
    *,
    parts: Iterable[str] = ("encoder", "decoder"),
    family: str | None = None,
    device=None,
    dtype=None,
    mode: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    revision: str | None = None,
    local_files_only: bool = False,
    ema: bool = False,
):
    """Load ``source`` as an inference tokenizer.

    Args:
        source: a :class:`TokenizerSource` or the text to resolve.
        parts: what the caller runs: ``"encoder"``, ``"decoder"`` (``"autoencoder"`` = both).
        family: ``"video"`` or ``"image"`` to insist on one (a wrong one raises ``WrongFamilyError``); ``None``
            takes whichever the checkpoint is.
        device / dtype: as the inference classes take them; ``dtype=None``/``"auto"``: bfloat16 on CUDA,
            float32 elsewhere (bfloat16 is slow and inexact on CPUs).
        mode: ``"torch"`` (native network), ``"jit"`` (NVIDIA's TorchScript as is) or ``None`` (native where the
            architecture is known).
        cache_dir / revision / local_files_only: Hugging Face Hub options (released names and Hub repos).
        ema: the EMA weights of the repository's ``ema.jit`` (released names, Hub repos and folders that have one).
    """
    from ..inference.tokenizers import (
        CausalVideoTokenizer,
        ImageTokenizer,
        resolve_device,
        resolve_dtype,
        tokenizer_class,
    )
    from .resolve import CheckpointNotFoundError, WrongFamilyError

    if not isinstance(source, TokenizerSource):
        source = resolve_tokenizer_source(source)
    needed = _parts_needed(parts)
    dev = resolve_device(None if device in (None, "auto") else device)
    if dtype in (None, "auto"):
        import torch

        dt = torch.bfloat16 if dev.type == "cuda" else torch.float32
    else:
        dt = resolve_dtype(dtype)
    wanted = {"video": CausalVideoTokenizer, "image": ImageTokenizer}.get(family or "")

    if ema and source.kind in ("builtin", "jit-file"):
        raise ValueError(f"--ema needs a checkpoint with an ema.jit (a released name or a folder), not {source.value}")
    if source.kind == "builtin":
        if mode == "jit":
            raise ValueError(f"{source.value} is built in (no .jit files); leave out --mode jit")
        cls = wanted or tokenizer_class(source.family)
        return cls.from_network(build_builtin_network(source.value), parts=tuple(needed), device=dev, dtype=dt,
                                name=source.value)

    if source.kind == "jit-file":
        path = Path(source.value)
        if source.part == "autoencoder":
            files = {"checkpoint": path}
        elif source.part is not None:
            if not needed <= {source.part}:
                missing = sorted(needed - {source.part})
                raise CheckpointNotFoundError(
                    f"{path} holds only the {source.part}; this command also needs the {' and '.join(missing)}: "
                    f"give the folder that holds {', '.join(PART_FILES[p] for p in sorted(needed))}"
                )
            files = {f"checkpoint_{source.part[:3]}": path}
        else:  # another name: it holds the part the command needs (both: a full autoencoder)
            files = {"checkpoint": path} if len(needed) > 1 else {f"checkpoint_{next(iter(needed))[:3]}": path}
        classes = [wanted] if wanted else [CausalVideoTokenizer, ImageTokenizer]
        for i, cls in enumerate(classes):
            try:
                return cls(**files, device=dev, dtype=dt, mode=mode)
            except WrongFamilyError:
                if i == len(classes) - 1:
                    raise
        raise AssertionError("unreachable")

    options = dict(
        load_encoder="encoder" in needed, load_decoder="decoder" in needed,
        use_pytorch=None if mode is None else mode == "torch", dtype=dt, device=dev,
        cache_dir=cache_dir, revision=revision, local_files_only=local_files_only,
    )
    if ema:
        options["ema"] = True
    if wanted is not None:
        return wanted.from_pretrained(source.value, **options)
    if source.family is not None:
        return tokenizer_class(source.family).from_pretrained(source.value, **options)
    try:
        return CausalVideoTokenizer.from_pretrained(source.value, **options)
    except WrongFamilyError:
        return ImageTokenizer.from_pretrained(source.value, **options)
