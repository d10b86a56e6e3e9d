"""Megatron shard writer: documents read back, merge equals a single write, atomic finalize."""

from __future__ import annotations

import numpy as np
import pytest

from nemo_cosmos_tokenizer.data.writer import ShardWriter, merge_shards

DOCS = [np.array([1, 2, 3, 99]), np.array([70000, 5, 99]), np.array([99]), np.array([7, 8, 9, 10, 11, 99])]


def _read(prefix):
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    ds = IndexedDataset(prefix)
    return ds, [ds[i].tolist() for i in range(len(ds))]


def _write(prefix, docs, dtype=np.int32):
    with ShardWriter(str(prefix), dtype) as writer:
        for doc in docs:
            writer.add_document(doc)
    return writer


def test_documents_read_back_with_megatron(tmp_path):
    writer = _write(tmp_path / "one", DOCS)
    assert (writer.num_documents, writer.num_tokens) == (4, 14)
    ds, docs = _read(str(tmp_path / "one"))
    assert docs == [d.tolist() for d in DOCS]
    assert ds.document_indices.tolist() == [0, 1, 2, 3, 4]
    assert ds.sequence_lengths.tolist() == [4, 3, 1, 6]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.bin", "one.idx"]  # no temporary files left


def test_merge_equals_a_single_write(tmp_path):
    _write(tmp_path / "single", DOCS)
    _write(tmp_path / "a", DOCS[:1])
    _write(tmp_path / "b", DOCS[1:3])
    _write(tmp_path / "c", DOCS[3:])
    merge_shards([str(tmp_path / p) for p in "abc"], str(tmp_path / "merged"), np.int32)
    for suffix in (".bin", ".idx"):
        assert (tmp_path / f"merged{suffix}").read_bytes() == (tmp_path / f"single{suffix}").read_bytes()


def test_uint16_shards_and_overflow(tmp_path):
    _write(tmp_path / "small", [np.array([1, 65535])], np.uint16)
    assert _read(str(tmp_path / "small"))[1] == [[1, 65535]]
    with pytest.raises(OverflowError, match="uint16"):
        _write(tmp_path / "big", [np.array([65536])], np.uint16)


def test_an_interrupted_write_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with ShardWriter(str(tmp_path / "x"), np.int32) as writer:
            writer.add_document(DOCS[0])
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
