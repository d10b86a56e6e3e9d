"""Text tokenizers: sentencepiece model and Hugging Face tokenizer.json, exact round trips."""

from __future__ import annotations

import pytest

from nemo_cosmos_tokenizer.data.text import HFTokenizer, SentencePieceTokenizer, load_text_tokenizer

TEXTS = ["A white cockatoo's face, 2*3 frames.", "Black-and-white footage  of a woman (AltGr)."]


def test_sentencepiece_round_trip(tmp_path):
    from nemo_cosmos_tokenizer.data.samples import train_sentencepiece

    model = train_sentencepiece(TEXTS * 4, tmp_path / "spm")
    tok = load_text_tokenizer(model)
    assert isinstance(tok, SentencePieceTokenizer) and tok.vocab_size > 256
    for text in TEXTS + ["unseen: ü 日本 9*9"]:
        ids = tok.encode(text)
        assert max(ids) < tok.vocab_size and tok.decode(ids) == text
    assert tok.describe()["sha256"] == tok.checksum and len(tok.checksum) == 64
    assert load_text_tokenizer(tmp_path).path == tok.path  # a folder holding the model


def test_huggingface_tokenizer_json_round_trip(tmp_path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(TEXTS, trainer=trainer)
    tokenizer.save(str(tmp_path / "tokenizer.json"))
    tok = load_text_tokenizer(tmp_path)
    assert isinstance(tok, HFTokenizer)
    for text in TEXTS + ["9*9 ü"]:
        ids = tok.encode(text)
        assert max(ids) < tok.vocab_size and tok.decode(ids) == text


def test_missing_tokenizer_is_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="holds no tokenizer.json"):
        load_text_tokenizer(tmp_path)
