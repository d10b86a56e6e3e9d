"""Token layout: Emu3 ids reproduced by hand, generic placement, round trips, range checks."""

from __future__ import annotations

import numpy as np
import pytest

from nemo_cosmos_tokenizer.data.layout import EMU3_VOCAB_SIZE, LAYOUT_VERSION, LayoutError, TokenLayout, token_dtype


class CharCodec:
    """Text stand-in: one id per character code (ASCII), so expected ids can be written by hand."""

    vocab_size = 128

    def encode(self, text: str) -> list[int]:
        return [ord(c) for c in text]

    def decode(self, ids) -> str:
        return "".join(chr(int(i)) for i in ids)


def test_emu3_preset_reproduces_nemo_ids_for_a_known_sample():
    # Two frames of a 2 x 3 FSQ grid; Emu3 block (INTEGRATION.md): boi, "h*w" as text, <|image token|>, rows each
    # followed by the row separator <|extra_200|>, frame separator <|extra_201|> after each frame, eoi; the
    # document is bos <|extra_203|> ... eos <|extra_204|>; visual token k is 151854 + k.
    grid = np.array([[[0, 1, 63999], [7, 8, 9]], [[100, 200, 300], [12345, 0, 5]]], np.int32)
    layout = TokenLayout.from_preset("emu3", text_vocab_size=128, codebook_size=64000)
    (doc,) = layout.encode_clip(CharCodec(), "Hi", grid)
    expected = (
        [151849]  # bos <|extra_203|>
        + [ord("H"), ord("i")]  # caption
        + [151852]  # <|image start|>
        + [ord("2"), ord("*"), ord("3")]  # "2*3" through the text tokenizer
        + [151851]  # <|image token|>
        + [151854 + 0, 151854 + 1, 151854 + 63999, 151846]
        + [151854 + 7, 151854 + 8, 151854 + 9, 151846]
        + [151847]
        + [151854 + 100, 151854 + 200, 151854 + 300, 151846]
        + [151854 + 12345, 151854 + 0, 151854 + 5, 151846]
        + [151847]
        + [151853]  # <|image end|>
        + [151850]  # eos <|extra_204|> = eod
    )
    assert doc.tolist() == expected
    assert layout.vocab_size == EMU3_VOCAB_SIZE == 216854
    assert layout.pad_id == 151643
    assert layout.dtype is np.int32
    decoded = layout.decode_document(doc, CharCodec())
    assert decoded.text == "Hi" and decoded.shape_text == "2*3" and decoded.caption_first
    np.testing.assert_array_equal(decoded.grid, grid)


def test_generic_preset_places_specials_and_codes_after_the_text_vocabulary():
    layout = TokenLayout.from_preset("generic", text_vocab_size=1000, codebook_size=64000)
    specials = layout.special_ids()
    assert sorted(specials.values()) == sorted(set(specials.values()))
    others = {k: v for k, v in specials.items() if k != "eod_id"}
    assert min(others.values()) == 1000 and max([*others.values(), layout.pad_id]) < layout.vision_offset
    assert layout.vision_offset == 1007 and layout.vocab_size == 1008 + 64000
    # Version 2: eod is the last id, so Megatron's NullTokenizer(vocab_size - 1) has this eod and vocabulary.
    assert layout.eod_id == layout.vocab_size - 1 == 1007 + 64000 and layout.eod_is_last
    assert layout.version == LAYOUT_VERSION == 2
    assert layout.dtype is np.uint16  # 65,008 < 65,500
    assert TokenLayout.from_preset("generic", 2000, 64000).dtype is np.int32


def test_version_1_sidecar_layout_still_reads():
    """A generic layout written before version 2 (eod at V + 1, visual ids from V + 8, no ``version`` key) loads
    with its own ids and decodes its documents."""
    v = 128
    old = dict(
        preset="generic", text_vocab_size=v, codebook_size=64000, vision_offset=v + 8, vocab_size=v + 8 + 64000,
        bos_id=v, eod_id=v + 1, pad_id=v + 2, boi_id=v + 3, eoi_id=v + 4, grid_id=v + 5, row_sep_id=v + 6,
        frame_sep_id=v + 7, shape_template="{t}*{h}*{w}", template="caption_first",
    )
    layout = TokenLayout.from_dict(old)
    assert layout.version == 1 and not layout.eod_is_last
    grid = np.arange(6, dtype=np.int32).reshape(1, 2, 3)
    (doc,) = layout.encode_clip(CharCodec(), "Hi", grid)
    assert doc[-1] == v + 1 and doc[doc.tolist().index(v + 3) + 7] == v + 8  # eod V+1; FSQ 0 at V+8
    np.testing.assert_array_equal(layout.decode_document(doc, CharCodec()).grid, grid)
    with pytest.raises(LayoutError, match="layout version 3"):
        TokenLayout.from_dict(dict(old, version=3))


@pytest.mark.parametrize("preset", ["generic", "emu3"])
@pytest.mark.parametrize("template", ["caption_first", "caption_last", "both"])
def test_documents_round_trip(preset, template):
    rng = np.random.default_rng(0)
    grid = rng.integers(0, 64000, size=(3, 4, 5), dtype=np.int32)
    layout = TokenLayout.from_preset(preset, 128, 64000, template=template)
    docs = layout.encode_clip(CharCodec(), "a cat, 2 dogs.", grid)
    assert len(docs) == (2 if template == "both" else 1)
    for doc, first in zip(docs, layout.caption_orders()):
        assert doc[-1] == layout.eod_id and doc[0] == layout.bos_id
        assert doc.max() < layout.vocab_size and doc.min() >= 0
        out = layout.decode_document(doc, CharCodec())
        assert out.text == "a cat, 2 dogs." and out.caption_first == first
        np.testing.assert_array_equal(out.grid, grid)
    assert TokenLayout.from_dict(layout.to_dict()) == layout


def test_image_grid_and_empty_caption():
    layout = TokenLayout.from_preset("generic", 128, 64000)
    grid = np.array([[[5]]], np.int32)
    (doc,) = layout.encode_clip(CharCodec(), "", grid)
    out = layout.decode_document(doc, CharCodec())
    assert out.text == "" and out.shape_text == "1*1*1"
    np.testing.assert_array_equal(out.grid, grid)


def test_text_vocabulary_that_collides_is_refused():
    with pytest.raises(LayoutError, match="collides with the text ids"):
        TokenLayout.from_preset("emu3", text_vocab_size=151847, codebook_size=64000)
    # Emu3's own text vocabulary (151,643 ranks + Qwen specials) fits.
    TokenLayout.from_preset("emu3", text_vocab_size=151646, codebook_size=64000)


def test_codebook_that_overflows_the_vocabulary_is_refused():
    with pytest.raises(LayoutError, match="beyond the vocabulary"):
        TokenLayout.from_preset("emu3", text_vocab_size=128, codebook_size=65001)


def test_vocabulary_that_overflows_the_dtype_is_refused():
    with pytest.raises(LayoutError, match="does not fit int32"):
        TokenLayout.from_preset("generic", text_vocab_size=128, codebook_size=2**31)


def test_hand_made_colliding_layout_is_refused():
    fields = TokenLayout.from_preset("generic", 128, 64000).to_dict()
    with pytest.raises(LayoutError, match="distinct"):
        TokenLayout.from_dict(dict(fields, row_sep_id=fields["frame_sep_id"]))
    with pytest.raises(LayoutError, match="collides with the visual ids"):
        TokenLayout.from_dict(dict(fields, vision_offset=fields["bos_id"] - 1, vocab_size=fields["vocab_size"] + 10))


def test_out_of_range_ids_are_caught():
    layout = TokenLayout.from_preset("generic", 100, 64000)
    with pytest.raises(LayoutError, match="outside its declared vocabulary"):
        layout.encode_clip(CharCodec(), "z", np.zeros((1, 1, 1), np.int32))  # 'z' = 122 >= 100
    with pytest.raises(LayoutError, match="FSQ indices"):
        layout.video_block(np.full((1, 1, 1), 64000), [])


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d, L: d[:-1],  # no eod
        lambda d, L: np.delete(d, np.flatnonzero(d == L.row_sep_id)[0]),  # a row loses its separator
        lambda d, L: np.where(d == L.eoi_id, L.bos_id, d),  # no end of video
        lambda d, L: np.insert(d, int(np.flatnonzero(d == L.grid_id)[0]) + 1, 5),  # text inside the grid
    ],
)
def test_malformed_documents_are_rejected(mutate):
    layout = TokenLayout.from_preset("generic", 128, 64000)
    (doc,) = layout.encode_clip(CharCodec(), "ok", np.ones((2, 2, 3), np.int32))
    with pytest.raises(ValueError):
        layout.decode_document(mutate(doc, layout), CharCodec())


def test_token_dtype_matches_megatron():
    from megatron.core.datasets.indexed_dataset import DType

    for vocab in (100, 65499, 65500, 216854):
        assert token_dtype(vocab) is DType.optimal_dtype(vocab)
