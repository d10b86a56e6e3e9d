"""Load a tokenizer from anything a CLI or config names: a built-in, a released name, a Hub repo, a folder or a
``.jit`` file (resolved by :func:`nemo_cosmos_tokenizer.hub.sources.resolve_tokenizer_source`), as the inference
class of its family."""

from __future__ import annotations

import os
from typing import Iterable

from ..hub.sources import TokenizerSource, resolve_tokenizer_source

__all__ = ["load_tokenizer"]


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
    from ..devices import default_dtype, resolve_device, resolve_dtype
    from ..hub.resolve import WrongFamilyError
    from .tokenizers import CausalVideoTokenizer, ImageTokenizer, tokenizer_class

    if not isinstance(source, TokenizerSource):
        source = resolve_tokenizer_source(source)
    needed = _parts_needed(parts)
    dev = resolve_device(None if device in (None, "auto") else device)
    dt = default_dtype(dev) if dtype in (None, "auto") else resolve_dtype(dtype)
    wanted = {"video": CausalVideoTokenizer, "image": ImageTokenizer}.get(family or "")

    if ema and source.kind in ("builtin", "jit-file"):
        raise ValueError(f"--ema needs a checkpoint with an ema.jit (a released name or a folder), not {source.value}")
    if source.kind == "builtin" and mode == "jit":
        raise ValueError(f"{source.value} is built in (no .jit files); leave out --mode jit")
    options = dict(
        load_encoder="encoder" in needed, load_decoder="decoder" in needed,
        use_pytorch=None if mode is None else mode == "torch", dtype=dt, device=dev,
        cache_dir=cache_dir, revision=revision, local_files_only=local_files_only,
    )
    if ema:
        options["ema"] = True
    # from_pretrained takes every kind of source; only the class is chosen here.
    if wanted is not None:
        return wanted.from_pretrained(source.value, **options)
    if source.family is not None:
        return tokenizer_class(source.family).from_pretrained(source.value, **options)
    try:  # a folder, a .jit file or a Hub repository of unknown family: the weights say which
        return CausalVideoTokenizer.from_pretrained(source.value, **options)
    except WrongFamilyError:
        return ImageTokenizer.from_pretrained(source.value, **options)
