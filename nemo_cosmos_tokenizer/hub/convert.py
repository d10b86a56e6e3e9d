"""Checkpoint file formats: NVIDIA's TorchScript state_dicts and our safetensors directory.

The key tables and the strict loader are those of the networks (:mod:`nemo_cosmos_tokenizer.networks.checkpoint`,
re-exported here): ``hub`` reads and writes files, the networks map tensors.

Our own format (:func:`save_pretrained` / :func:`load_pretrained`) is a directory with ``config.json``
(``{"format": "nemo-cosmos-tokenizer", "format_version": 1, "config": TokenizerConfig.to_dict()}``) and
``model.safetensors`` holding the ``autoencoder.jit`` layout (buffers included).
"""

from __future__ import annotations

import json
import os
import warnings
from collections import OrderedDict
from pathlib import Path

import torch

from ..networks.checkpoint import (
    PARTS,
    StateDictMismatchError,
    cosmos_key_table,
    cosmos_state_dict,
    load_cosmos_state_dict,
)
from ..networks.tokenizer import CosmosTokenizer

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "PARTS",
    "StateDictMismatchError",
    "chmod_like_open",
    "cosmos_key_table",
    "cosmos_state_dict",
    "load_cosmos_state_dict",
    "load_jit_state_dict",
    "load_pretrained",
    "save_pretrained",
]

FORMAT_NAME = "nemo-cosmos-tokenizer"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


def chmod_like_open(path: str | os.PathLike) -> None:
    """Give ``path`` the mode a plain ``open()`` would (0666 less the umask): safetensors writes 0600 files."""
    mask = os.umask(0)  # reading the umask means setting it; put it back at once
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def load_jit_state_dict(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> "OrderedDict[str, torch.Tensor]":
    """The state_dict of one of NVIDIA's TorchScript files (``encoder.jit``, ``decoder.jit``, ``autoencoder.jit``)."""
    with warnings.catch_warnings():  # NVIDIA ships TorchScript; torch's deprecation notice is expected
        warnings.simplefilter("ignore", DeprecationWarning)
        module = torch.jit.load(str(path), map_location=map_location)
    return OrderedDict((k, v.detach()) for k, v in module.state_dict().items())


def save_pretrained(model: "CosmosTokenizer", directory: str | os.PathLike) -> Path:
    """Write ``config.json`` and ``model.safetensors`` (autoencoder layout, the model's dtypes) to ``directory``."""
    from safetensors.torch import save_file

    from .. import __version__

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in cosmos_state_dict(model, "autoencoder").items()}
    config = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "library_version": __version__,
        "weights": WEIGHTS_FILE,
        "weights_layout": "autoencoder.jit",
        "config": model.config.to_dict(),
    }
    save_file(tensors, str(directory / WEIGHTS_FILE), metadata={"format": "pt", "layout": "autoencoder.jit"})
    chmod_like_open(directory / WEIGHTS_FILE)
    (directory / CONFIG_FILE).write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
    return directory


def load_pretrained(directory: str | os.PathLike, map_location: str | torch.device = "cpu",
                    dtype: torch.dtype | None = None) -> "CosmosTokenizer":
    """Build and load a tokenizer written by :func:`save_pretrained` (eval mode, float32 unless ``dtype``)."""
    from safetensors.torch import load_file

    from ..config import TokenizerConfig
    from ..networks.builders import build_tokenizer

    directory = Path(directory)
    config_path = directory / CONFIG_FILE
    if not config_path.is_file():
        raise FileNotFoundError(
            f"{config_path} not found: not a save_pretrained directory (NVIDIA's .jit files load with "
            "load_jit_state_dict + load_cosmos_state_dict, or CausalVideoTokenizer / ImageTokenizer.from_pretrained)"
        )
    data = json.loads(config_path.read_text(encoding="utf-8"))
    if data.get("format") != FORMAT_NAME or "config" not in data:
        raise ValueError(
            f"{config_path} is not a {FORMAT_NAME} config (missing 'format'/'config'); load_pretrained reads "
            "directories written by save_pretrained"
        )
    if int(data.get("format_version", 0)) > FORMAT_VERSION:
        raise ValueError(
            f"{config_path} has format_version {data['format_version']}, newer than this library's {FORMAT_VERSION}; "
            "upgrade nemo-cosmos-tokenizer"
        )
    model = build_tokenizer(TokenizerConfig.from_dict(data["config"]))
    if dtype is not None:
        model.to(dtype=dtype)
    model.to(map_location)
    device = str(map_location)
    state_dict = load_file(str(directory / data.get("weights", WEIGHTS_FILE)), device=device)
    model.load_cosmos_state_dict(state_dict, part="autoencoder")
    return model.eval()
