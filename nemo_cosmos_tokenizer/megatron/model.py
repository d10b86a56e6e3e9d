"""A megatron-core ``GPTModel`` of a given size, with PyTorch's fused attention, and its FLOP count.

megatron-core 0.16.1 offers two attention cores: Transformer Engine's (not installed here, nor by this package)
and ``DotProductAttention``, which allocates its score buffer with ``torch.cuda.current_device()`` (so cannot run
on a CPU) and materialises the full ``[b * heads, s, s]`` scores on a GPU. :class:`SDPACoreAttention` is a drop-in
``core_attention`` submodule calling ``torch.nn.functional.scaled_dot_product_attention`` (flash / memory-efficient
kernels on CUDA, plain math on CPU), so the same model trains on GPUs and runs the CPU tests. It takes megatron's
layouts: ``[s, b, heads, head_dim]`` in, ``[s, b, heads * head_dim]`` out; ``attention_mask`` True = masked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

INSTALL_HINT = 'pip install "nemo-cosmos-tokenizer[data]"'
from .config import POSITION_EMBEDDINGS  # noqa: E402,F401


def _megatron():
    try:
        import megatron.core  # noqa: F401
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(f"training needs megatron-core: {INSTALL_HINT}") from err


@dataclass(frozen=True)
class GPTShape:
    """Size of the GPT (also stored in checkpoints, so a sampler rebuilds the same model)."""

    num_layers: int
    hidden_size: int
    num_attention_heads: int
    ffn_hidden_size: int
    vocab_size: int
    """Embedding rows (the dataset's vocabulary padded to a multiple of 128 x tensor parallel)."""
    seq_length: int
    position_embedding: str = "rope"

    def __post_init__(self) -> None:
        if self.position_embedding not in POSITION_EMBEDDINGS:
            raise ValueError(f"position_embedding must be one of {POSITION_EMBEDDINGS}, got {self.position_embedding!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size {self.hidden_size} is not a multiple of num_attention_heads {self.num_attention_heads}"
            )

    def flops_per_token(self) -> float:
        """Training FLOPs per token (forward + backward) of a dense GPT, as in the PaLM paper's MFU: ``6 N`` for
        the ``N`` matmul weights (layers and the output projection) plus ``12 L h s`` for attention scores and
        values (full ``s x s``, not halved for causality)."""
        h, f, layers = self.hidden_size, self.ffn_hidden_size, self.num_layers
        per_layer = 4 * h * h + 2 * h * f  # qkv + output projection, two MLP matmuls
        weights = layers * per_layer + h * self.vocab_size
        return 6.0 * weights + 12.0 * layers * h * self.seq_length


class SDPACoreAttention(torch.nn.Module):
    """``core_attention`` for megatron-core's ``SelfAttention`` built on ``scaled_dot_product_attention``.

    The constructor takes the arguments ``SelfAttention`` passes to every core attention.
    """

    def __init__(
        self,
        config,
        layer_number: int,
        attn_mask_type,
        attention_type: str,
        attention_dropout: float | None = None,
        softmax_scale: float | None = None,
        cp_comm_type: str | None = None,
        pg_collection: Any = None,
    ) -> None:
        super().__init__()
        if config.context_parallel_size != 1:
            raise ValueError("SDPACoreAttention does not support context parallelism")
        self.config = config
        self.dropout = config.attention_dropout if attention_dropout is None else attention_dropout
        self.softmax_scale = softmax_scale
        self.heads_per_group = config.num_attention_heads // (config.num_query_groups or config.num_attention_heads)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        attention_mask: torch.Tensor | None,
        attn_mask_type=None,
        attention_bias: torch.Tensor | None = None,
        packed_seq_params=None,
    ) -> torch.Tensor:
        if packed_seq_params is not None or attention_bias is not None:
            raise ValueError("SDPACoreAttention supports neither packed sequences nor an attention bias")
        s, b = query.shape[0], query.shape[1]
        q, k, v = (x.permute(1, 2, 0, 3) for x in (query, key, value))  # [s, b, n, d] -> [b, n, s, d]
        if self.heads_per_group > 1:  # grouped-query attention: repeat the key/value heads
            k = k.repeat_interleave(self.heads_per_group, dim=1)
            v = v.repeat_interleave(self.heads_per_group, dim=1)
        if attention_mask is None:  # plain causal
            out = torch.nn.functional.scaled_dot_product_attention(
                q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0, scale=self.softmax_scale
            )
        else:  # megatron's mask [b or 1, 1, s, s] is True where attention is NOT allowed; SDPA wants the opposite
            out = torch.nn.functional.scaled_dot_product_attention(
                q, k, v, attn_mask=~attention_mask, dropout_p=self.dropout if self.training else 0.0,
                scale=self.softmax_scale,
            )
        return out.permute(2, 0, 1, 3).reshape(s, b, -1)  # [b, n, s, d] -> [s, b, n * d]


def build_gpt_model(shape: GPTShape, *, device: torch.device, dropout: float = 0.0):
    """A megatron-core ``GPTModel`` (local layer spec, :class:`SDPACoreAttention`) on ``device``, float32 weights
    (training runs under bfloat16 autocast on CUDA). Needs ``parallel_state`` initialised."""
    _megatron()
    from megatron.core.models.gpt.gpt_layer_specs import get_gpt_layer_local_spec
    from megatron.core.models.gpt.gpt_model import GPTModel
    from megatron.core.transformer.transformer_config import TransformerConfig

    config = TransformerConfig(
        num_layers=shape.num_layers,
        hidden_size=shape.hidden_size,
        num_attention_heads=shape.num_attention_heads,
        ffn_hidden_size=shape.ffn_hidden_size,
        hidden_dropout=dropout,
        attention_dropout=dropout,
        use_cpu_initialization=device.type != "cuda",
        params_dtype=torch.float32,
        pipeline_dtype=torch.float32,
        bias_dropout_fusion=False,
        apply_rope_fusion=False,
        masked_softmax_fusion=False,
        gradient_accumulation_fusion=False,
    )
    spec = get_gpt_layer_local_spec()
    spec.submodules.self_attention.submodules.core_attention = SDPACoreAttention
    model = GPTModel(
        config=config,
        transformer_layer_spec=spec,
        vocab_size=shape.vocab_size,
        max_sequence_length=shape.seq_length,
        position_embedding_type=shape.position_embedding,
        share_embeddings_and_output_weights=True,
        parallel_output=True,
    )
    return model.to(device)
