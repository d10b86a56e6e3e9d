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

NeMo and the data pipeline are imported lazily: importing this package needs only torch.
"""

from .config import TokenizerConfig
from .registry import UnknownModelError, get_config, list_models, resolve_name
from .networks import CosmosTokenizer, build_tokenizer
from .inference import CausalVideoTokenizer, ImageTokenizer

__version__ = "0.1.0"

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
