"""Inference API: :class:`CausalVideoTokenizer` and :class:`ImageTokenizer` (the original Cosmos-Tokenizer
README's classes, with ``from_pretrained``), and the pre/post-processing in :mod:`.preprocess`."""

from .tokenizers import CausalVideoTokenizer, ImageTokenizer

__all__ = ["CausalVideoTokenizer", "ImageTokenizer"]
