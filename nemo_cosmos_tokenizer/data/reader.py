"""Read a built dataset back: documents as caption text + FSQ grid, and optionally decoded pixels.

The library behind ``scripts/inspect_video_token_dataset.py``::

    ds = VideoTokenDataset("out/demo")            # <prefix>.{bin,idx} + <prefix>.json
    doc = ds.decode(0)                            # DecodedDocument(text, grid [T', H', W'], ...)
    inspect_document("out/demo", 0, decoder="tiny-random-dv8x16x16", output="doc0.mp4")
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from .layout import DecodedDocument, TokenLayout
from .text import TextTokenizer, load_text_tokenizer
from .writer import read_json, sidecar_path

log = logging.getLogger(__name__)


class VideoTokenDataset:
    """A built dataset: ``len(ds)`` documents, ``ds.tokens(i)``, ``ds.decode(i)``.

    The text tokenizer is the one named in the sidecar unless ``text_tokenizer`` is given (a path, or a loaded
    tokenizer); :attr:`text_tokenizer_matches` says whether it is the file the dataset was built with.
    """

    def __init__(self, prefix: str | os.PathLike, text_tokenizer: str | os.PathLike | TextTokenizer | None = None) -> None:
        from megatron.core.datasets.indexed_dataset import IndexedDataset

        self.prefix = str(prefix)
        self.sidecar: dict[str, Any] = read_json(sidecar_path(self.prefix))
        self.layout = TokenLayout.from_dict(self.sidecar["layout"])
        recorded = self.sidecar["text_tokenizer"]
        if text_tokenizer is None or isinstance(text_tokenizer, (str, os.PathLike)):
            text_tokenizer = load_text_tokenizer(text_tokenizer or recorded["path"])
        self.text_tokenizer = text_tokenizer
        self.text_tokenizer_matches = text_tokenizer.checksum == recorded.get("sha256")
        """False when the text tokenizer is not the file the dataset was built with (captions may decode wrong)."""
        self._dataset = IndexedDataset(self.prefix)

    def __len__(self) -> int:
        return len(self._dataset.document_indices) - 1

    def tokens(self, index: int) -> np.ndarray:
        """Token ids of document ``index`` (int64)."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"document {index} out of range: the dataset holds {len(self)}")
        index %= len(self)
        first, last = self._dataset.document_indices[index : index + 2]
        return np.concatenate([self._dataset[i] for i in range(first, last)]).astype(np.int64)

    def decode(self, index: int) -> DecodedDocument:
        return self.layout.decode_document(self.tokens(index), self.text_tokenizer)


def write_frames(frames: np.ndarray, path: str | os.PathLike, fps: float) -> Path:
    """uint8 ``[T, H, W, 3]`` to ``path``: an ``.mp4`` (H.264), or an image (``.png``/``.jpg``) for one frame."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".png", ".jpg", ".jpeg"):
        from PIL import Image

        if len(frames) != 1:
            raise ValueError(f"{path} is an image but the document holds {len(frames)} frames; use .mp4")
        Image.fromarray(frames[0]).save(path)
        return path
    from .samples import write_video

    write_video(list(frames), path, fps)
    return path


def inspect_document(
    prefix: str | os.PathLike,
    index: int,
    *,
    decoder: str | os.PathLike | None = None,
    output: str | os.PathLike | None = None,
    fps: float | None = None,
    device: str | None = None,
    text_tokenizer: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Describe document ``index``; with a ``decoder`` (tokenizer name or path), also reconstruct its video.

    Returns ``{"index", "text", "grid_shape", "num_tokens", "caption_first", "video"}`` (``video``: the written
    file or ``None``). The default output is ``<prefix>.doc<index>.mp4``; the frame rate defaults to the
    dataset's target fps, else 24.
    """
    ds = VideoTokenDataset(prefix, text_tokenizer)
    if not ds.text_tokenizer_matches:
        log.warning("text tokenizer %s differs from the one the dataset was built with", ds.text_tokenizer.path)
    tokens = ds.tokens(index)
    index %= len(ds)
    doc = ds.layout.decode_document(tokens, ds.text_tokenizer)
    info: dict[str, Any] = {
        "index": index,
        "text": doc.text,
        "grid_shape": list(doc.grid.shape),
        "num_tokens": int(tokens.size),
        "caption_first": doc.caption_first,
        "video": None,
    }
    if decoder is not None:
        from .video_tokenizer import load_video_tokenizer

        tokenizer = load_video_tokenizer(decoder, device, "float32", parts=("decoder",))
        recorded = ds.sidecar["video_tokenizer"]
        if tokenizer.codebook_size != ds.layout.codebook_size:
            raise ValueError(
                f"decoder {tokenizer.name} has {tokenizer.codebook_size} codes, the dataset {ds.layout.codebook_size}; "
                f"decode with the tokenizer the dataset was built with ({recorded.get('name')})"
            )
        if tokenizer.config.to_dict() != recorded.get("config"):
            log.warning("decoder %s is not the architecture the dataset was built with (%s)", tokenizer.name, recorded.get("name"))
        frames = tokenizer.decode(doc.grid[None])[0]  # [T, H, W, 3]
        rate = fps or ds.sidecar.get("frames", {}).get("fps") or 24.0
        info["video"] = str(write_frames(frames, output or f"{ds.prefix}.doc{index}.mp4", rate))
    return info
