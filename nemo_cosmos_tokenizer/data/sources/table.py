"""Tables as input: JSONL, CSV and Parquet manifests, read streamed (a block or row group at a time).

A row names a media file (``path`` column; relative paths resolve against the table's folder, which may be a URL)
and its caption (``text`` column); ``id``, ``start`` and ``end`` columns are optional. Column names are settable
(:class:`Columns`, ``--path-column`` ...). JSONL rows keep the manifest rules of :mod:`..manifest` (``caption``
for ``text``, ``video``/``file`` for ``path``, ``start_frame``/``end_frame``).

**Segments** (Panda-70M, video2dataset): a row whose ``start`` cell is a list expands to one sample per segment,
in order. The cell is either a list of ``[start, end]`` pairs (then the ``end`` column is not needed), or a list
of starts with a parallel list of ends in the ``end`` column. Times are seconds, or ``"H:MM:SS.mmm"`` strings
(Panda-70M's ``timestamp``). The caption cell is one caption per segment (a list of the same length) or a string
shared by all. Segment ``k`` of a row with an ``id`` gets the id ``<id>#<k>``; without one, the usual
``<path>@<start>-<end>``. In CSV, a list is written as JSON in the cell (``"[[0, 5.1], [5.1, 9]]"``).

Malformed rows (no path, no caption, a bad range, lists of different lengths) stop the run with a
:class:`..manifest.ManifestError` naming the row, as for JSONL manifests.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Any, Iterator

from ..manifest import ManifestError, Sample, _sample_from_entry, iter_jsonl_objects
from .storage import Storage, parent

TABLE_SUFFIXES = {".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".tsv": "csv", ".parquet": "parquet"}
PARQUET_BATCH_ROWS = 4096


@dataclass(frozen=True)
class Columns:
    """Which table columns hold what (``--path-column`` ...)."""

    path: str = "path"
    text: str = "text"
    id: str = "id"
    start: str = "start"
    end: str = "end"

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "text": self.text, "id": self.id, "start": self.start, "end": self.end}


def table_kind(url: str) -> str | None:
    lower = url.lower()
    for suffix, kind in TABLE_SUFFIXES.items():
        if lower.endswith(suffix):
            return kind
    return None


def parse_time(value: Any, where: str) -> float | None:
    """Seconds from a number or an ``"[H:]MM:SS[.fff]"`` / numeric string; ``None`` for an empty cell."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ManifestError(f"{where}: a time must be a number, got {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            seconds = 0.0
            for part in value.strip().split(":"):
                seconds = seconds * 60 + float(part)
            return seconds
        except ValueError:
            pass
    raise ManifestError(f"{where}: cannot read the time {value!r} (seconds, or H:MM:SS.mmm)")


def _cell(value: Any) -> Any:
    """A CSV cell: a JSON list or number where it looks like one, ``None`` when empty."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text == "":
        return None
    if text[0] == "[":
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return value
    return value


def _numeric(value: Any) -> Any:
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        return int(number) if number.is_integer() and "." not in value else number
    return value


def _segments(row: dict[str, Any], columns: Columns, where: str) -> list[tuple[float | None, float | None]] | None:
    start = row.get(columns.start)
    if not isinstance(start, (list, tuple)):
        return None
    if all(isinstance(s, (list, tuple)) for s in start):
        pairs = []
        for k, pair in enumerate(start):
            if len(pair) != 2:
                raise ManifestError(f"{where}: segment {k} of {columns.start!r} must be [start, end], got {pair!r}")
            pairs.append((parse_time(pair[0], where), parse_time(pair[1], where)))
        return pairs
    end = row.get(columns.end)
    if not isinstance(end, (list, tuple)) or len(end) != len(start):
        raise ManifestError(f"{where}: {columns.start!r} is a list, so {columns.end!r} must be a list of the same length "
                            f"(or give {columns.start!r} as [[start, end], ...])")
    return [(parse_time(s, where), parse_time(e, where)) for s, e in zip(start, end)]


def row_samples(row: dict[str, Any], columns: Columns, base: str, where: str) -> Iterator[tuple[Sample, str]]:
    """The samples of one row (several for a row of segments) with their canonical text (for the checksum)."""
    entry = dict(row)
    for canonical, column in (("path", columns.path), ("text", columns.text), ("id", columns.id),
                              ("start", columns.start), ("end", columns.end)):
        if column != canonical:
            entry.pop(canonical, None)
            if column in row:
                entry[canonical] = row[column]
    for key in ("start", "end"):  # a time string in a scalar cell
        if isinstance(entry.get(key), str):
            entry[key] = parse_time(entry[key], where)
    segments = _segments(row, columns, where)
    if segments is None:
        yield _sample_from_entry(entry, 0, base, where)
        return
    texts = entry.get("text")
    if isinstance(texts, (list, tuple)):
        if len(texts) != len(segments):
            raise ManifestError(f"{where}: {len(segments)} segments but {len(texts)} captions in {columns.text!r}")
    else:
        texts = [texts] * len(segments)
    given_id = entry.get("id")
    for k, ((start, end), text) in enumerate(zip(segments, texts)):
        one = {**entry, "start": start, "end": end, "text": text}
        if given_id is not None:
            one["id"] = f"{given_id}#{k}"
        else:
            one.pop("id", None)
        yield _sample_from_entry(one, 0, base, f"{where} segment {k}")


def iter_table_rows(url: str, kind: str, storage: Storage, columns: Columns) -> Iterator[tuple[dict[str, Any], str]]:
    """``(row, where)`` of a table, streamed in file order (``where``: ``file:line`` or ``file:row``)."""
    if kind == "jsonl":
        with storage.open(url) as raw, io.TextIOWrapper(raw, encoding="utf-8") as f:
            yield from iter_jsonl_objects(f, url)
    elif kind == "csv":
        delimiter = "\t" if url.lower().endswith(".tsv") else ","
        with storage.open(url) as raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f, delimiter=delimiter)
            if reader.fieldnames is None or columns.path not in reader.fieldnames:
                raise ManifestError(f"{url}: no {columns.path!r} column (columns: {reader.fieldnames}); "
                                    f"name it with --path-column")
            numeric = {columns.start, columns.end, "start_frame", "end_frame"}
            for rowno, raw_row in enumerate(reader, start=2):
                row = {k: (_numeric(_cell(v)) if k in numeric else _cell(v)) for k, v in raw_row.items() if k is not None}
                if columns.id in row and row[columns.id] is not None:
                    row[columns.id] = str(raw_row[columns.id])
                yield row, f"{url}:{rowno}"
    elif kind == "parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError as err:
            raise ImportError('reading Parquet needs pyarrow: pip install "nemo-cosmos-tokenizer[tables]"') from err
        with storage.open(url) as raw:
            table = pq.ParquetFile(raw)
            names = set(table.schema_arrow.names)
            if columns.path not in names:
                raise ManifestError(f"{url}: no {columns.path!r} column (columns: {sorted(names)}); name it with --path-column")
            wanted = [c for c in dict.fromkeys([*columns.to_dict().values(), "start_frame", "end_frame"]) if c in names]
            rowno = 0
            for batch in table.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=wanted):
                for row in batch.to_pylist():
                    yield {k: v for k, v in row.items() if v is not None}, f"{url}:row {rowno}"
                    rowno += 1
    else:
        raise ValueError(f"unknown table kind {kind!r}")


def iter_table_samples(url: str, kind: str, storage: Storage, columns: Columns) -> Iterator[tuple[Sample, str]]:
    base = parent(url)
    for row, where in iter_table_rows(url, kind, storage, columns):
        yield from row_samples(row, columns, base, where)
