"""A megatron-core tokenizer built from a dataset's sidecar: the layout's vocabulary, eod and pad, for any layout.

megatron-core's ``GPTDataset`` reads ``vocab_size``, ``eod``, ``pad`` and ``unique_identifiers`` from the
tokenizer in ``GPTDatasetConfig(tokenizer=...)``; NeMo 2's ``PreTrainingDataModule`` and GPT models read
``vocab_size``, ``eos_id``/``bos_id``/``pad_id`` and ``text_to_ids``/``ids_to_text``. :class:`SidecarTokenizer`
answers both from ``<prefix>.json``, so neither needs to know the layout::

    tok = SidecarTokenizer("data/tokens/clips")
    GPTDatasetConfig(..., tokenizer=tok, reset_position_ids=True, reset_attention_mask=True, eod_mask_loss=True)

Text goes through the text tokenizer recorded in the sidecar (loaded on first use: training needs only the ids).
It is duck-typed rather than a subclass of megatron-core's ``MegatronTokenizerBase``, so importing it does not
import megatron-core; ``GPTDataset`` checks no type.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import OrderedDict
from typing import Any, Mapping, Sequence

import numpy as np

from ..data.layout import TokenLayout
from ..data.text import TextTokenizer, load_text_tokenizer
from .settings import layout_of, resolve_sidecar

_SPECIAL_NAMES = {
    "bos_id": "bos", "eod_id": "eod", "pad_id": "pad", "boi_id": "boi", "eoi_id": "eoi", "grid_id": "grid",
    "row_sep_id": "row", "frame_sep_id": "frame",
}


class SidecarTokenizer:
    """Tokenizer of a built dataset (``prefix``: the build's ``--output-prefix``, or its ``.json`` sidecar).

    ``text_tokenizer`` overrides the text tokenizer the sidecar names (a path or a loaded one).
    """

    def __init__(
        self, prefix: str | os.PathLike, text_tokenizer: str | os.PathLike | TextTokenizer | None = None
    ) -> None:
        self.sidecar_path, self.sidecar = resolve_sidecar(prefix)
        self.layout: TokenLayout | None = layout_of(self.sidecar)
        """The token layout (``None`` for a format without one: only vocabulary, eod and pad then)."""
        layout = self.layout
        self._vocab_size = int(layout.vocab_size if layout else self.sidecar["vocab_size"])
        eod = layout.eod_id if layout else self.sidecar.get("eod_id")
        pad = layout.pad_id if layout else self.sidecar.get("pad_id")
        self._eod = None if eod is None else int(eod)
        self._pad = None if pad is None else int(pad)
        self._text_override = text_tokenizer
        self._text: TextTokenizer | None = text_tokenizer if isinstance(text_tokenizer, TextTokenizer) else None

    # ------------------------------------------------------------ megatron-core
    @property
    def vocab_size(self) -> int:
        """Every id of the dataset is below it (before Megatron's padding to a multiple of 128 x TP)."""
        return self._vocab_size

    @property
    def eod(self) -> int:
        """The id every document ends with; ``-1`` for a layout that writes none (``GPTDataset`` then finds no
        boundary, which is right for documents that are each one fixed-length sample)."""
        return -1 if self._eod is None else self._eod

    @property
    def pad(self) -> int:
        """Padding id (never written into documents; ``GPTDataset`` masks it out of the loss)."""
        return -1 if self._pad is None else self._pad

    @property
    def bos(self) -> int:
        return self.layout.bos_id if self.layout else -1

    @property
    def eos(self) -> int:
        return self.eod

    @property
    def unique_identifiers(self) -> OrderedDict:
        """What megatron-core hashes into its index cache names: the ids, not the file path."""
        layout = json.dumps(self.layout.to_dict() if self.layout else None, sort_keys=True)
        return OrderedDict(
            [
                ("class", f"{type(self).__module__}.{type(self).__qualname__}"),
                ("vocab_size", self._vocab_size),
                ("eod", self._eod),
                ("pad", self._pad),
                ("layout_sha256", hashlib.sha256(layout.encode()).hexdigest()),
            ]
        )

    def tokenize(self, text: str) -> list[int]:
        """Caption text to text ids (the same ids the builder wrote; no bos/eod added)."""
        return list(self.text_tokenizer.encode(text))

    def detokenize(self, ids: Sequence[int] | np.ndarray) -> str:
        """Ids to a readable string: text runs through the text tokenizer, specials as ``<|boi|>``, visual ids
        as ``<|v:k|>`` (``k`` the FSQ index)."""
        parts: list[str] = []
        run: list[int] = []
        for i in np.asarray(ids, np.int64).reshape(-1).tolist():
            name = self.describe_id(i)
            if name is None:
                run.append(i)
                continue
            if run:
                parts.append(self.text_tokenizer.decode(run))
                run = []
            parts.append(name)
        if run:
            parts.append(self.text_tokenizer.decode(run))
        return "".join(parts)

    def describe_id(self, token: int) -> str | None:
        """``<|name|>`` of a special or visual id, ``None`` for a text id."""
        layout = self.layout
        if layout is None:
            return f"<|{token}|>"
        for field, name in _SPECIAL_NAMES.items():
            if token == getattr(layout, field):
                return f"<|{name}|>"
        if layout.vision_offset <= token < layout.vision_offset + layout.codebook_size:
            return f"<|v:{token - layout.vision_offset}|>"
        if 0 <= token < layout.text_vocab_size:
            return None
        return f"<|unused:{token}|>"

    # -------------------------------------------------------------- NeMo names
    def text_to_ids(self, text: str) -> list[int]:
        return self.tokenize(text)

    def ids_to_text(self, ids: Sequence[int]) -> str:
        return self.detokenize(ids)

    @property
    def eos_id(self) -> int:
        return self.eod

    @property
    def bos_id(self) -> int:
        return self.bos

    @property
    def pad_id(self) -> int:
        return self.pad

    # ---------------------------------------------------------------- layout
    @property
    def text_tokenizer(self) -> TextTokenizer:
        """The caption tokenizer (loaded on first use)."""
        if self._text is None:
            recorded: Mapping[str, Any] = self.sidecar.get("text_tokenizer") or {}
            path = self._text_override or recorded.get("path")
            if not path:
                raise ValueError(f"{self.sidecar_path} names no text tokenizer; pass text_tokenizer=<path>")
            try:
                self._text = load_text_tokenizer(path)
            except FileNotFoundError as err:
                raise FileNotFoundError(
                    f"{err}; the dataset was built with {recorded.get('path')!r}: pass text_tokenizer=<its new path>"
                ) from err
        return self._text

    def prompt_ids(self, caption: str, grid_shape: tuple[int, int, int]) -> list[int]:
        """``bos caption boi shape grid``: the start of a caption-first document whose video block a model then
        writes (the rest of the block is fixed by ``grid_shape`` = ``(T', H', W')``)."""
        layout = self.require_layout()
        if layout.template == "caption_last":
            raise ValueError(
                f"the dataset was built with template {layout.template!r}: its documents put the video before the "
                "caption, so a caption cannot prompt a video (build with --template caption_first or both)"
            )
        caption_ids = self.tokenize(caption)
        shape_ids = self.tokenize(layout.shape_text(*grid_shape))
        layout.check_text_ids(caption_ids)
        layout.check_text_ids(shape_ids)
        return [layout.bos_id, *caption_ids, layout.boi_id, *shape_ids, layout.grid_id]

    def require_layout(self) -> TokenLayout:
        if self.layout is None:
            raise ValueError(f"{self.sidecar_path} records no token layout (documents of raw indices)")
        return self.layout

    def __repr__(self) -> str:
        return f"SidecarTokenizer({self.sidecar_path!r}, vocab_size={self._vocab_size}, eod={self._eod}, pad={self._pad})"
