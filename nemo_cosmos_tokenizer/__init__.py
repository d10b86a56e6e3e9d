"""nemo-cosmos-tokenizer: checkpoint-exact Cosmos Tokenizer networks for NeMo/Megatron.

Public API (everything else is reachable through submodules)::

    import nemo_cosmos_tokenizer as nct
    nct.list_models()
    cfg = nct.get_config("Cosmos-0.1-Tokenizer-DV8x16x16")
    model = nct.build_tokenizer(cfg)
    model.load_cosmos_state_dict(state_dict, part="encoder")
    (indices, codes) = model.encode(x)

    tok = nct.CausalVideoTokenizer.from_pretrained("Cosmos-0.1-Tokenizer-DV4x8x8")   # Hub + HF cache
    (indices, codes) = tok.encode(x)             # x: [B, 3, T, H, W] in [-1, 1]
    video_out = tok(video_uint8)                 # [B, T, H, W, 3] uint8 numpy, padded and windowed for you

Every name (and subpackage) is imported on first use (PEP 562), so ``import nemo_cosmos_tokenizer`` alone does
not load torch: the command-line tools check their arguments before any heavy import. NeMo and the data pipeline
are imported only when used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name -> submodule that defines it.
_EXPORTS = {
    "TokenizerConfig": ".config",
    "UnknownModelError": ".registry",
    "get_config": ".registry",
    "list_models": ".registry",
    "resolve_name": ".registry",
    "CosmosTokenizer": ".networks",
    "build_tokenizer": ".networks",
    "CausalVideoTokenizer": ".inference",
    "ImageTokenizer": ".inference",
}

if TYPE_CHECKING:  # for type checkers and IDEs; at run time __getattr__ imports on demand
    from .config import TokenizerConfig
    from .inference import CausalVideoTokenizer, ImageTokenizer
    from .networks import CosmosTokenizer, build_tokenizer
    from .registry import UnknownModelError, get_config, list_models, resolve_name


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
        globals()[name] = value  # later lookups skip this function
        return value
    try:  # a subpackage used as an attribute (nct.networks.X) after a bare ``import nemo_cosmos_tokenizer``
        return importlib.import_module(f".{name}", __name__)
    except ModuleNotFoundError as err:
        if err.name != f"{__name__}.{name}":
            raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


__all__ = [
    "CausalVideoTokenizer",
    "CosmosTokenizer",
    "ImageTokenizer",
    "TokenizerConfig",
    "UnknownModelError",
    "build_tokenizer",
    "get_config",
    "list_models",
    "resolve_name",
    "__version__",
]
