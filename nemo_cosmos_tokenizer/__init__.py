"""nemo-cosmos-tokenizer: checkpoint-exact Cosmos Tokenizer networks for NeMo/Megatron.

Public API (everything else is reachable through submodules)::

    import nemo_cosmos_tokenizer as nct
    nct.list_models()
    cfg = nct.get_config("Cosmos-0.1-Tokenizer-DV8x16x16")
    model = nct.build_tokenizer(cfg)
    model.load_cosmos_state_dict(state_dict, part="encoder")
    (indices, codes) = model.encode(x)

NeMo and the data pipeline are imported lazily: importing this package needs only torch.
"""

from .config import TokenizerConfig
from .registry import UnknownModelError, get_config, list_models, resolve_name
from .networks import CosmosTokenizer, build_tokenizer

__version__ = "0.1.0"

__all__ = [
    "CosmosTokenizer",
    "TokenizerConfig",
    "UnknownModelError",
    "build_tokenizer",
    "get_config",
    "list_models",
    "resolve_name",
    "__version__",
]
