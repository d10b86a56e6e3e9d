"""Tokenizer networks: 2D and causal 3D bodies, the composed :class:`CosmosTokenizer` and its builder."""

from .builders import build_tokenizer
from .image import ImageDecoder, ImageEncoder
from .tokenizer import PARTS, CosmosTokenizer
from .video import VideoDecoder, VideoEncoder

__all__ = ["PARTS", "CosmosTokenizer", "ImageDecoder", "ImageEncoder", "VideoDecoder", "VideoEncoder", "build_tokenizer"]
