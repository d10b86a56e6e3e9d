"""Quantizers of the discrete tokenizers."""

from .fsq import FSQuantizer

__all__ = ["FSQuantizer"]
