"""Megatron indexed shards (``.bin`` + ``.idx``) written atomically, their merge, and JSON sidecars.

Format: megatron-core's ``IndexedDatasetBuilder`` (``megatron.core.datasets.indexed_dataset``): the ``.bin`` holds
token arrays back to back in the shard dtype (uint16 below 65,500 vocabulary entries, int32 above); the ``.idx``
holds one sequence length and byte pointer per sequence and the document boundaries. Every document here is one
sequence that ends with the layout's eod id, as Megatron's ``GPTDataset`` expects.

A shard is written under a temporary name (``<prefix>.tmp-<host>-<pid>.{bin,idx}``) and renamed to
``<prefix>.{bin,idx}`` only when complete, so a killed writer never leaves a shard that looks whole. Its JSON
sidecar (``<prefix>.json``) is written last, the same way, and marks the shard complete.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch

INSTALL_HINT = 'pip install "nemo-cosmos-tokenizer[data]"'


def require_megatron():
    """Import megatron-core's indexed dataset module (slow, a few seconds) or raise an ImportError with a hint."""
    return _indexed_dataset()


def _indexed_dataset():
    try:
        from megatron.core.datasets import indexed_dataset
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(f"writing Megatron shards needs megatron-core: {INSTALL_HINT}") from err
    return indexed_dataset


def _temp_prefix(prefix: str) -> str:
    return f"{prefix}.tmp-{socket.gethostname()}-{os.getpid()}"


def sidecar_path(prefix: str) -> str:
    """``<prefix>.json``: the description of the shard at ``prefix``."""
    return f"{prefix}.json"


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    """Write JSON to a temporary file and rename it over ``path``."""
    path = str(path)
    tmp = f"{path}.tmp-{socket.gethostname()}-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, sort_keys=True, ensure_ascii=False)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def shard_files(prefix: str) -> tuple[str, str]:
    return f"{prefix}.bin", f"{prefix}.idx"


class ShardWriter:
    """Append documents to a new shard; :meth:`finalize` renames it into place, :meth:`abort` removes it.

    Use as a context manager: leaving the block with an exception aborts.
    """

    def __init__(self, prefix: str, dtype: type[np.number]) -> None:
        self.prefix = str(prefix)
        self.dtype = dtype
        self.num_documents = 0
        self.num_tokens = 0
        Path(self.prefix).parent.mkdir(parents=True, exist_ok=True)
        self._tmp = _temp_prefix(self.prefix)
        self._builder = _indexed_dataset().IndexedDatasetBuilder(f"{self._tmp}.bin", dtype=dtype)
        self._open = True

    def add_document(self, tokens: np.ndarray) -> None:
        """One document (a single sequence) of token ids; they must fit the shard dtype."""
        tokens = np.asarray(tokens)
        info = np.iinfo(self.dtype)
        if tokens.size and (tokens.min() < info.min or tokens.max() > info.max):
            raise OverflowError(f"token ids [{tokens.min()}, {tokens.max()}] do not fit {np.dtype(self.dtype).name}")
        self._builder.add_item(torch.from_numpy(tokens.astype(np.int64)))
        self._builder.end_document()
        self.num_documents += 1
        self.num_tokens += int(tokens.size)

    def add_shard(self, prefix: str) -> None:
        """Append every document of a finished shard (megatron-core ``add_index``)."""
        self._builder.add_index(prefix)

    def finalize(self) -> None:
        """Write the index and rename both files into place (``.bin`` first, then ``.idx``)."""
        self._builder.finalize(f"{self._tmp}.idx")
        self._open = False
        bin_path, idx_path = shard_files(self.prefix)
        os.replace(f"{self._tmp}.bin", bin_path)
        os.replace(f"{self._tmp}.idx", idx_path)

    def abort(self) -> None:
        if self._open:
            self._builder.data_file.close()
            self._open = False
        for suffix in (".bin", ".idx"):
            try:
                os.remove(self._tmp + suffix)
            except FileNotFoundError:
                pass

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()
        elif self._open:
            self.finalize()


def merge_shards(prefixes: Iterable[str], output_prefix: str, dtype: type[np.number]) -> int:
    """Concatenate finished shards, in the given order, into ``output_prefix`` (atomically); returns the count.

    The result depends only on the shards' bytes and their order.
    """
    count = 0
    with ShardWriter(output_prefix, dtype) as writer:
        for prefix in prefixes:
            writer.add_shard(prefix)
            count += 1
    return count
