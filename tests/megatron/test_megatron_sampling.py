"""Layout-constrained generation with plain-PyTorch stand-in models: only valid ids at every position."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nemo_cosmos_tokenizer.data.layout import TokenLayout
from nemo_cosmos_tokenizer.megatron.sampling import block_plan, generate_documents

LAYOUT = TokenLayout.from_preset("generic", text_vocab_size=128, codebook_size=64000)


class CharCodec:
    vocab_size = 128

    def encode(self, text):
        return [ord(c) for c in text]

    def decode(self, ids):
        return "".join(chr(i) for i in ids)


def _prompt(caption: str, grid) -> list[int]:
    codec = CharCodec()
    return [LAYOUT.bos_id, *codec.encode(caption), LAYOUT.boi_id, *codec.encode(LAYOUT.shape_text(*grid)), LAYOUT.grid_id]


class AdversarialModel(torch.nn.Module):
    """Random logits that prefer every non-visual id (eod, specials, text) by a wide margin: an unconstrained
    sampler would emit them everywhere."""

    def __init__(self, vocab: int, seed: int = 0) -> None:
        super().__init__()
        self.vocab = vocab
        self.generator = torch.Generator().manual_seed(seed)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:  # [B, L] -> [B, V]
        logits = torch.randn(tokens.shape[0], self.vocab, generator=self.generator)
        logits[:, : LAYOUT.vision_offset] += 50.0
        logits[:, LAYOUT.eod_id] += 100.0
        return logits


def test_plan_matches_the_builders_documents():
    grid = np.arange(2 * 3 * 4).reshape(2, 3, 4) % 64000
    (doc,) = LAYOUT.encode_clip(CharCodec(), "a cat", grid)
    prompt = _prompt("a cat", grid.shape)
    plan = block_plan(LAYOUT, grid.shape)
    rest = doc[len(prompt):]
    assert len(rest) == len(plan) and doc[: len(prompt)].tolist() == prompt
    for token, fixed in zip(rest.tolist(), plan):
        if fixed is None:
            assert LAYOUT.vision_offset <= token < LAYOUT.vision_offset + LAYOUT.codebook_size
        else:
            assert token == fixed


@pytest.mark.parametrize("temperature,top_k", [(1.0, None), (0.7, 50), (0.0, None)])
def test_only_valid_ids_appear(temperature, top_k):
    grid = (3, 2, 5)
    prompt = _prompt("a red ball", grid)
    docs = generate_documents(AdversarialModel(LAYOUT.vocab_size), prompt, LAYOUT, grid, num_samples=3,
                              temperature=temperature, top_k=top_k, generator=torch.Generator().manual_seed(1))
    assert docs.shape == (3, len(prompt) + len(block_plan(LAYOUT, grid)))
    for doc in docs:
        decoded = LAYOUT.decode_document(doc, CharCodec())  # raises on any malformed document
        assert decoded.text == "a red ball" and decoded.grid.shape == grid and decoded.shape_text == "3*2*5"
    visual = docs[:, len(prompt):][:, [p is None for p in block_plan(LAYOUT, grid)]]
    assert len(np.unique(visual)) > 1 or temperature == 0.0


def test_greedy_and_top1_pick_the_best_visual_id():
    """With fixed logits, temperature 0 and top-k 1 both choose the most likely *visual* id, not the best id."""
    best = LAYOUT.vision_offset + 4321

    def next_logits(tokens):
        logits = torch.zeros(tokens.shape[0], LAYOUT.vocab_size)
        logits[:, 5] = 1000.0  # a text id, never allowed inside the grid
        logits[:, best] = 10.0
        return logits

    grid = (1, 2, 2)
    prompt = _prompt("", grid)
    greedy = generate_documents(next_logits, prompt, LAYOUT, grid, temperature=0.0)
    top1 = generate_documents(next_logits, prompt, LAYOUT, grid, top_k=1, generator=torch.Generator().manual_seed(0))
    np.testing.assert_array_equal(greedy, top1)
    np.testing.assert_array_equal(LAYOUT.decode_document(greedy[0]).grid, np.full(grid, 4321))


def test_model_without_the_visual_ids_is_refused():
    with pytest.raises(ValueError, match="visual ids reach"):
        generate_documents(lambda t: torch.zeros(t.shape[0], 1000), _prompt("", (1, 1, 1)), LAYOUT, (1, 1, 1))
