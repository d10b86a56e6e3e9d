"""Token layout: how text ids, special ids and FSQ indices share one vocabulary.

Every id is computed by integer arithmetic, never by rendering ids as strings and re-tokenizing them:

* text ids come from the text tokenizer and lie in ``[0, text_vocab_size)``;
* FSQ index ``k`` of the video tokenizer becomes ``vision_offset + k`` (``0 <= k < codebook_size``);
* a few special ids frame the video block.

One document (one clip of one sample) is, with ``caption_first``::

    bos  caption...  boi  shape...  grid  v v v row  v v v row  frame  v v v row ...  frame  eoi  eod

* ``boi`` / ``eoi`` begin and end the video block (Emu3 ``<|image start|>`` / ``<|image end|>``);
* ``shape...`` is the text tokenizer's encoding of :attr:`TokenLayout.shape_template` (``"{h}*{w}"`` for Emu3,
  ``"{t}*{h}*{w}"`` for the generic preset), a size hint a generator can condition on;
* ``grid`` separates the shape text from the visual tokens (Emu3 ``<|image token|>``);
* every row of ``W'`` visual ids ends with ``row`` (Emu3 eol), every frame of ``H'`` rows with ``frame`` (eof).

The separators alone are enough to turn a document back into its ``T' x H' x W'`` grid (:meth:`decode_document`);
the shape text is checked against it. ``caption_last`` puts the caption after ``eoi``; ``both`` writes two
documents per clip, one of each order.

Presets:

* ``emu3`` reproduces the ids NeMo's Emu3-style multimodal autoregressive models use (the Emu3/Qwen vocabulary
  with its specials; see ``shared/reference/INTEGRATION.md``): visual ``k -> 151854 + k``, row 151846, frame 151847,
  bos 151849, eos/eod 151850, grid (``<|image token|>``) 151851, boi 151852, eoi 151853, pad 151643, vocabulary
  216,854. The text tokenizer must be Emu3's (ids below 151846) for the text ids to mean anything to such a model.
* ``generic`` appends seven specials right after the text vocabulary, the visual ids after them, and puts eod
  last: ``eod = vocab_size - 1``, vocabulary ``text_vocab_size + 8 + codebook_size``. Eod last is Megatron's own
  convention for a vocabulary known only by its size (``NullTokenizer(N)``: ``eod = N``, ``vocab_size = N + 1``),
  so stock Megatron-LM finds the document boundaries with ``--tokenizer-type NullTokenizer --vocab-size
  <vocab_size - 1>`` (see :mod:`nemo_cosmos_tokenizer.megatron`).

Layout versions (:attr:`TokenLayout.version`, recorded in every sidecar): version 1 (builds before the Megatron
adapter) put the generic eod at ``text_vocab_size + 1`` and the visual ids at ``text_vocab_size + 8``; version 2
(:data:`LAYOUT_VERSION`) is the order above. The ``emu3`` ids are the same in both. A sidecar stores every id
explicitly, so datasets of either version read back unchanged (a sidecar without ``version`` is version 1).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping, Protocol, Sequence

import numpy as np

PRESETS = ("generic", "emu3")
TEMPLATES = ("caption_first", "caption_last", "both")

#: Version of the id arrangement :meth:`TokenLayout.from_preset` produces (1: generic eod at ``V + 1``; 2: generic
#: eod last, ``vocab_size - 1``).
LAYOUT_VERSION = 2

#: Generic preset, version 2: specials right after the text vocabulary (``V + i``), visual ids from ``V + 7``, eod
#: at the very end.
GENERIC_SPECIALS = ("bos_id", "pad_id", "boi_id", "eoi_id", "grid_id", "row_sep_id", "frame_sep_id")

#: Megatron's rule (``DType.optimal_dtype``): uint16 below this many vocabulary entries, int32 from it on.
UINT16_VOCAB_LIMIT = 65500

#: Special-token fields that are written into documents (``pad_id`` is metadata for the trainer only).
EMITTED_SPECIALS = ("bos_id", "eod_id", "boi_id", "eoi_id", "grid_id", "row_sep_id", "frame_sep_id")

# Emu3 / NeMo ids (shared/reference/INTEGRATION.md).
EMU3_IDS = {
    "pad_id": 151643,  # <|endoftext|>
    "row_sep_id": 151846,  # <|extra_200|>
    "frame_sep_id": 151847,  # <|extra_201|>
    "bos_id": 151849,  # <|extra_203|>
    "eod_id": 151850,  # <|extra_204|> (eos; documents end with it)
    "grid_id": 151851,  # <|image token|>
    "boi_id": 151852,  # <|image start|>
    "eoi_id": 151853,  # <|image end|>
}
EMU3_VISION_OFFSET = 151854
EMU3_VOCAB_SIZE = 216854


class LayoutError(ValueError):
    """An id range collides with another or does not fit the vocabulary / dtype."""


class TextCodec(Protocol):
    """What the layout needs from a text tokenizer (see :mod:`nemo_cosmos_tokenizer.data.text`)."""

    vocab_size: int

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...


def token_dtype(vocab_size: int) -> type[np.number]:
    """The dtype Megatron picks for a vocabulary (``DType.optimal_dtype``): uint16 or int32."""
    return np.uint16 if vocab_size < UINT16_VOCAB_LIMIT else np.int32


@dataclass(frozen=True)
class DecodedDocument:
    """A document turned back into its parts."""

    text: str
    """The caption (text before and after the video block, decoded by the text tokenizer)."""

    grid: np.ndarray
    """FSQ indices, int32 ``[T', H', W']``."""

    shape_text: str
    """The decoded shape hint (e.g. ``"2*3"``)."""

    caption_first: bool
    """True if the caption came before the video block."""


@dataclass(frozen=True)
class TokenLayout:
    """Where every kind of token sits in the vocabulary, and the order of a document.

    Build one with :meth:`from_preset` (validated on creation: ranges never collide and fit the dtype).
    """

    preset: str
    """``"generic"`` or ``"emu3"`` (informational; the ids below are what count)."""

    text_vocab_size: int
    """Text ids lie in ``[0, text_vocab_size)``."""

    codebook_size: int
    """FSQ codes of the video tokenizer (64,000 for the released models)."""

    vision_offset: int
    """Id of FSQ index 0."""

    vocab_size: int
    """Total vocabulary; every id is below it (Megatron-LM: ``NullTokenizer`` with ``--vocab-size vocab_size - 1``
    when eod is the last id, see :mod:`nemo_cosmos_tokenizer.megatron.settings`)."""

    bos_id: int
    eod_id: int
    """End of document; every document ends with it (Megatron's ``eod``)."""
    pad_id: int
    """Padding id for the trainer; never written by the builder."""
    boi_id: int
    eoi_id: int
    grid_id: int
    row_sep_id: int
    frame_sep_id: int

    shape_template: str = "{t}*{h}*{w}"
    """Python format string of the shape hint (fields ``t``, ``h``, ``w``), encoded with the text tokenizer."""

    template: str = "caption_first"
    """``caption_first``, ``caption_last``, or ``both`` (two documents per clip, one of each)."""

    version: int = 1
    """Id arrangement the preset produced (:data:`LAYOUT_VERSION`); informational like :attr:`preset`: the ids
    above are what count. 1 for sidecars written before the field existed."""

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise LayoutError(f"layout preset must be one of {PRESETS}, got {self.preset!r}")
        if self.template not in TEMPLATES:
            raise LayoutError(f"template must be one of {TEMPLATES}, got {self.template!r}")
        if self.version not in (1, LAYOUT_VERSION):
            raise LayoutError(
                f"layout version {self.version} is unknown to this package (it reads 1 and {LAYOUT_VERSION}): "
                "upgrade nemo-cosmos-tokenizer to read this dataset"
            )
        try:
            self.shape_template.format(t=1, h=2, w=3)
        except (KeyError, IndexError, ValueError) as err:
            raise LayoutError(
                f"shape_template {self.shape_template!r} must be a format string using only {{t}}, {{h}}, {{w}}"
            ) from err
        self._check_ranges()

    # ------------------------------------------------------------------ presets
    @classmethod
    def from_preset(
        cls, preset: str, text_vocab_size: int, codebook_size: int, template: str = "caption_first"
    ) -> "TokenLayout":
        """The ``emu3`` or ``generic`` layout for a text vocabulary and an FSQ codebook."""
        if preset == "emu3":
            return cls(
                preset="emu3",
                text_vocab_size=int(text_vocab_size),
                codebook_size=int(codebook_size),
                vision_offset=EMU3_VISION_OFFSET,
                vocab_size=EMU3_VOCAB_SIZE,
                shape_template="{h}*{w}",
                template=template,
                version=LAYOUT_VERSION,
                **EMU3_IDS,
            )
        if preset == "generic":
            v = int(text_vocab_size)
            specials = {name: v + i for i, name in enumerate(GENERIC_SPECIALS)}
            offset = v + len(GENERIC_SPECIALS)
            eod = offset + int(codebook_size)  # the last id: Megatron's NullTokenizer convention
            return cls(
                preset="generic",
                text_vocab_size=v,
                codebook_size=int(codebook_size),
                vision_offset=offset,
                vocab_size=eod + 1,
                eod_id=eod,
                shape_template="{t}*{h}*{w}",
                template=template,
                version=LAYOUT_VERSION,
                **specials,
            )
        raise LayoutError(f"layout preset must be one of {PRESETS}, got {preset!r}")

    # --------------------------------------------------------------- validation
    def _check_ranges(self) -> None:
        if self.text_vocab_size < 1 or self.codebook_size < 1:
            raise LayoutError(
                f"text_vocab_size ({self.text_vocab_size}) and codebook_size ({self.codebook_size}) must be >= 1"
            )
        vision = (self.vision_offset, self.vision_offset + self.codebook_size)
        text = (0, self.text_vocab_size)
        specials = self.special_ids()
        if len(set(specials.values())) != len(specials):
            raise LayoutError(f"special ids must be distinct, got {specials}")
        ids = dict(specials, pad_id=self.pad_id)
        for name, value in ids.items():
            if not 0 <= value < self.vocab_size:
                raise LayoutError(f"{name}={value} lies outside the vocabulary [0, {self.vocab_size})")
        for name, value in specials.items():
            if text[0] <= value < text[1]:
                raise LayoutError(
                    f"{name}={value} collides with the text ids [0, {self.text_vocab_size}): the text tokenizer "
                    f"has {self.text_vocab_size} entries; this preset leaves room for at most "
                    f"{min(specials.values())} (use a smaller text vocabulary or the 'generic' preset)"
                )
            if vision[0] <= value < vision[1]:
                raise LayoutError(f"{name}={value} collides with the visual ids [{vision[0]}, {vision[1]})")
        if vision[0] < text[1]:
            raise LayoutError(
                f"visual ids start at {vision[0]} but the text ids reach {text[1] - 1}: the text vocabulary "
                f"({self.text_vocab_size}) is too large for the '{self.preset}' preset"
            )
        if vision[1] > self.vocab_size:
            raise LayoutError(
                f"the codebook ({self.codebook_size} codes from {vision[0]}) ends at {vision[1] - 1}, beyond the "
                f"vocabulary of {self.vocab_size} ids: this preset holds at most {self.vocab_size - vision[0]} "
                "visual codes"
            )
        limit = int(np.iinfo(self.dtype).max)
        if self.vocab_size - 1 > limit:
            raise LayoutError(f"vocabulary {self.vocab_size} does not fit {np.dtype(self.dtype).name} (max {limit})")

    def special_ids(self) -> dict[str, int]:
        """The special ids written into documents, by field name."""
        return {name: getattr(self, name) for name in EMITTED_SPECIALS}

    @property
    def dtype(self) -> type[np.number]:
        """Token dtype of the shards (Megatron's choice for :attr:`vocab_size`)."""
        return token_dtype(self.vocab_size)

    # ----------------------------------------------------------------- encoding
    def shape_text(self, t: int, h: int, w: int) -> str:
        """The shape hint for a ``t x h x w`` grid."""
        return self.shape_template.format(t=t, h=h, w=w)

    def video_block(self, grid: np.ndarray, shape_ids: Sequence[int]) -> np.ndarray:
        """``boi shape... grid rows... eoi`` for FSQ indices ``grid`` (int ``[T', H', W']``), as int64."""
        grid = np.asarray(grid)
        if grid.ndim != 3:
            raise ValueError(f"grid must be T' x H' x W', got shape {grid.shape}")
        if grid.size and (grid.min() < 0 or grid.max() >= self.codebook_size):
            raise LayoutError(
                f"FSQ indices must lie in [0, {self.codebook_size}), got [{grid.min()}, {grid.max()}]"
            )
        t, h, w = grid.shape
        visual = grid.astype(np.int64) + self.vision_offset  # [T', H', W']
        rows = np.concatenate([visual, np.full((t, h, 1), self.row_sep_id, np.int64)], axis=2)  # [T', H', W'+1]
        frames = np.concatenate(
            [rows.reshape(t, h * (w + 1)), np.full((t, 1), self.frame_sep_id, np.int64)], axis=1
        )  # [T', H'(W'+1)+1]
        head = np.array([self.boi_id, *shape_ids, self.grid_id], np.int64)
        return np.concatenate([head, frames.reshape(-1), np.array([self.eoi_id], np.int64)])

    def build_document(
        self, caption_ids: Sequence[int], grid: np.ndarray, shape_ids: Sequence[int], caption_first: bool
    ) -> np.ndarray:
        """One document: ``bos``, caption and video block in the given order, ``eod``; int64 ``[N]``."""
        self.check_text_ids(caption_ids)
        self.check_text_ids(shape_ids)
        text = np.asarray(caption_ids, np.int64).reshape(-1)
        block = self.video_block(grid, shape_ids)
        parts = (text, block) if caption_first else (block, text)
        return np.concatenate([[self.bos_id], *parts, [self.eod_id]]).astype(np.int64)

    def caption_orders(self) -> tuple[bool, ...]:
        """``caption_first`` flags of the documents each clip becomes under :attr:`template`."""
        return {"caption_first": (True,), "caption_last": (False,), "both": (True, False)}[self.template]

    def check_text_ids(self, ids: Sequence[int]) -> None:
        """Raise :class:`LayoutError` if a text id falls outside ``[0, text_vocab_size)``."""
        if len(ids) == 0:
            return
        arr = np.asarray(ids)
        if arr.min() < 0 or arr.max() >= self.text_vocab_size:
            raise LayoutError(
                f"text tokenizer produced id {int(arr.max()) if arr.max() >= self.text_vocab_size else int(arr.min())}"
                f" outside its declared vocabulary [0, {self.text_vocab_size})"
            )

    def encode_clip(self, text: TextCodec, caption: str, grid: np.ndarray) -> list[np.ndarray]:
        """All documents of one clip (one per caption order of :attr:`template`)."""
        caption_ids = text.encode(caption)
        shape_ids = text.encode(self.shape_text(*np.asarray(grid).shape))
        return [self.build_document(caption_ids, grid, shape_ids, first) for first in self.caption_orders()]

    # ----------------------------------------------------------------- decoding
    def decode_document(self, tokens: Sequence[int] | np.ndarray, text: TextCodec | None = None) -> DecodedDocument:
        """Split a document into caption text and FSQ grid; raises ``ValueError`` if it is malformed.

        Without a text tokenizer, ``text`` and ``shape_text`` are empty and the shape hint is not checked.
        """
        tok = np.asarray(tokens, np.int64).reshape(-1)
        if tok.size < 2 or tok[0] != self.bos_id or tok[-1] != self.eod_id:
            raise ValueError(f"a document starts with bos ({self.bos_id}) and ends with eod ({self.eod_id})")
        boi = np.flatnonzero(tok == self.boi_id)
        eoi = np.flatnonzero(tok == self.eoi_id)
        if len(boi) != 1 or len(eoi) != 1 or eoi[0] < boi[0]:
            raise ValueError("a document holds exactly one video block (boi ... eoi)")
        i, j = int(boi[0]), int(eoi[0])
        grid_pos = np.flatnonzero(tok[i:j] == self.grid_id)
        if len(grid_pos) != 1:
            raise ValueError("the video block has no grid marker after its shape text")
        g = i + int(grid_pos[0])
        shape_ids = tok[i + 1 : g]
        body = tok[g + 1 : j]
        grid = self._parse_grid(body)

        before, after = tok[1:i], tok[j + 1 : -1]
        if before.size and after.size:
            raise ValueError("text on both sides of the video block; each document holds one caption")
        caption_ids = before if before.size else after
        caption_first = bool(before.size) or not after.size
        caption = shape_text = ""
        if text is not None:
            caption = text.decode(caption_ids.tolist())
            shape_text = text.decode(shape_ids.tolist())
            expected = self.shape_text(*grid.shape)
            if shape_text.strip() != expected:
                raise ValueError(f"shape text {shape_text!r} does not match the grid {grid.shape} ({expected!r})")
        return DecodedDocument(caption, grid, shape_text, caption_first)

    def _parse_grid(self, body: np.ndarray) -> np.ndarray:
        if body.size == 0 or body[-1] != self.frame_sep_id:
            raise ValueError("the visual tokens must end with a frame separator")
        frame_ends = np.flatnonzero(body == self.frame_sep_id)
        frame_len = int(frame_ends[0]) + 1
        t = len(frame_ends)
        if body.size != t * frame_len or np.any(frame_ends != np.arange(1, t + 1) * frame_len - 1):
            raise ValueError("frames of a video block differ in size")
        frames = body.reshape(t, frame_len)[:, :-1]  # [T', H'(W'+1)]
        first_row = np.flatnonzero(frames[0] == self.row_sep_id)
        if first_row.size == 0:
            raise ValueError("a frame must end its rows with row separators")
        w = int(first_row[0])
        if (frame_len - 1) % (w + 1):
            raise ValueError("rows of a video block differ in size")
        h = (frame_len - 1) // (w + 1)
        rows = frames.reshape(t, h, w + 1)
        if np.any(rows[:, :, -1] != self.row_sep_id):
            raise ValueError("rows of a video block differ in size")
        visual = rows[:, :, :-1] - self.vision_offset  # [T', H', W']
        if visual.size and (visual.min() < 0 or visual.max() >= self.codebook_size):
            raise ValueError("a non-visual id inside the visual grid")
        return visual.astype(np.int32)

    # ------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly fields (what the sidecar stores)."""
        return dataclasses.asdict(self)

    @property
    def eod_is_last(self) -> bool:
        """True when eod is the last id (``vocab_size - 1``): Megatron's ``NullTokenizer(vocab_size - 1)`` then
        reports this layout's eod and vocabulary exactly."""
        return self.eod_id == self.vocab_size - 1

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TokenLayout":
        """The layout a sidecar stored (``version`` 1 when the sidecar predates the field)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise TypeError(f"unknown TokenLayout fields {unknown}")
        return cls(**dict(data))

