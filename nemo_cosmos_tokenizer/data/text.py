"""Text tokenizers for captions: a sentencepiece ``.model`` or a Hugging Face ``tokenizer.json``.

Both give plain ids with no bos/eos added (the token layout adds its own specials). The libraries are imported
only when a tokenizer is loaded.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Sequence

INSTALL_HINT = 'pip install "nemo-cosmos-tokenizer[data]"'


def file_sha256(path: str | os.PathLike, block: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            digest.update(chunk)
    return digest.hexdigest()


class TextTokenizer:
    """A loaded text tokenizer: ``encode(str) -> ids``, ``decode(ids) -> str``, ``vocab_size``.

    ``kind`` is ``"sentencepiece"`` or ``"huggingface"``; ``path`` the file it was read from and ``checksum`` the
    sha256 of that file (recorded in the dataset sidecar and the resume hash).
    """

    kind: str = ""
    vocab_size: int

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = str(Path(path).resolve())
        self.checksum = file_sha256(self.path)

    def encode(self, text: str) -> list[int]:
        raise NotImplementedError

    def decode(self, ids: Sequence[int]) -> str:
        raise NotImplementedError

    def describe(self) -> dict[str, object]:
        """What the sidecar records about this tokenizer."""
        return {"kind": self.kind, "path": self.path, "sha256": self.checksum, "vocab_size": self.vocab_size}


class SentencePieceTokenizer(TextTokenizer):
    """A sentencepiece model file (``.model``)."""

    kind = "sentencepiece"

    def __init__(self, path: str | os.PathLike) -> None:
        super().__init__(path)
        try:
            import sentencepiece
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise ImportError(f"sentencepiece tokenizers need the sentencepiece package: {INSTALL_HINT}") from err
        self._sp = sentencepiece.SentencePieceProcessor(model_file=self.path)
        self.vocab_size = int(self._sp.get_piece_size())

    def encode(self, text: str) -> list[int]:
        return list(self._sp.encode(text, out_type=int))

    def decode(self, ids: Sequence[int]) -> str:
        return self._sp.decode([int(i) for i in ids])


class HFTokenizer(TextTokenizer):
    """A Hugging Face ``tokenizers`` file (``tokenizer.json``), read without ``transformers``."""

    kind = "huggingface"

    def __init__(self, path: str | os.PathLike) -> None:
        super().__init__(path)
        try:
            from tokenizers import Tokenizer
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise ImportError(f"tokenizer.json files need the tokenizers package: {INSTALL_HINT}") from err
        self._tok = Tokenizer.from_file(self.path)
        self.vocab_size = int(self._tok.get_vocab_size(with_added_tokens=True))

    def encode(self, text: str) -> list[int]:
        return list(self._tok.encode(text, add_special_tokens=False).ids)

    def decode(self, ids: Sequence[int]) -> str:
        return self._tok.decode([int(i) for i in ids], skip_special_tokens=False)


def load_text_tokenizer(path: str | os.PathLike) -> TextTokenizer:
    """Load ``path``: a sentencepiece ``.model`` file, a ``tokenizer.json``, or a directory holding one of them."""
    p = Path(path).expanduser()
    if p.is_dir():
        candidates = [p / "tokenizer.json", *sorted(p.glob("*.model"))]
        found = [c for c in candidates if c.is_file()]
        if not found:
            raise FileNotFoundError(f"{p} holds no tokenizer.json and no sentencepiece .model file")
        p = found[0]
    if not p.is_file():
        raise FileNotFoundError(f"text tokenizer not found: {p} (give a sentencepiece .model or a tokenizer.json)")
    if p.suffix == ".json":
        return HFTokenizer(p)
    return SentencePieceTokenizer(p)
