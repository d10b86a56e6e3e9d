"""What an ``--input`` names (its kind and files), and whether it is there: the input planner's first step.

:func:`resolve_input` is what the planner (:mod:`.plan`) runs before it indexes anything; :func:`check_input` is
the same answer asked early, by the commands, before torch or megatron-core load (this module imports neither,
and fsspec only for URLs, lazily):

* local inputs are resolved exactly as the planner resolves them: a brace pattern (every shard it names must
  exist: a missing one is almost always a wrong range), a folder, a ``.tar``, a table, a shard list (``.txt``; the
  shards it lists are looked at when they are indexed, and a missing one is a ``missing`` failure record);
* URLs (``s3://``, ``gs://``, ``https://``) are checked for an installed file-system driver only. Whether the
  object is there is left to the planner: it reaches the store with the build's credentials, endpoint and retries
  (a throttled or briefly unreachable store is retried there, not refused here), and only rank 0 asks, where an
  early check would send one request per rank of a multi-node job.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from ..manifest import ManifestError
from .expand import expand_braces, has_braces
from .storage import FetchError, Storage, driver_problem, is_remote, join, parent
from .table import Columns, table_kind
from .tar import DEFAULT_TEXT_KEYS

__all__ = ["INPUT_KINDS", "SHARD_LIST_SUFFIXES", "InputSpec", "check_input", "resolve_input"]

INPUT_KINDS = ("folder", "jsonl", "csv", "parquet", "tar")
SHARD_LIST_SUFFIXES = (".txt", ".list", ".shards")
#: How many missing shards of a brace pattern an error names (then "and N more").
_NAMED = 3


@dataclass(frozen=True)
class InputSpec:
    """What to read and how: the ``--input`` string, table columns, tar caption keys, storage options."""

    input: str
    columns: Columns = field(default_factory=Columns)
    text_keys: tuple[str, ...] = DEFAULT_TEXT_KEYS
    storage: Storage = field(default_factory=Storage)

    def describe(self) -> dict[str, Any]:
        return {"input": self.input, "columns": self.columns.to_dict(), "text_keys": list(self.text_keys)}


def check_input(spec: InputSpec) -> None:
    """Raise :class:`~..manifest.ManifestError` where the planner would refuse ``spec.input`` (missing, of no known
    kind, a brace pattern with missing shards, an empty shard list), or :class:`ImportError` where a URL's
    file-system driver is not installed. No network (see the module docstring)."""
    if is_remote(spec.input):
        problem = driver_problem(spec.input)
        if problem is not None:
            raise ImportError(problem)
        return
    resolve_input(spec)


def resolve_input(spec: InputSpec) -> tuple[str, list[str]]:
    """``(kind, files)`` of an ``--input``: a brace pattern, a folder (of ``*.tar``, else of media), a ``.tar``, a
    table (``.jsonl``/``.csv``/``.parquet``), or a text file listing shard paths/URLs (one per line)."""
    text, storage = spec.input, spec.storage
    if not is_remote(text):
        text = os.path.abspath(os.path.expanduser(text))
    if has_braces(text):
        try:
            files = expand_braces(text)
        except ValueError as err:
            raise ManifestError(f"{spec.input}: {err}") from None
        kinds = {_file_kind(f) for f in files}
        if len(kinds) != 1 or None in kinds:
            raise ManifestError(f"{spec.input}: a brace pattern must name files of one kind (.tar shards or tables)")
        _refuse_missing_members(spec.input, files)
        return kinds.pop(), files
    if not is_remote(text) and not os.path.exists(text):
        raise ManifestError(f"input not found: {text} (give a .jsonl/.csv/.parquet manifest, .tar shards, a "
                            "brace pattern like shards/{000000..000009}.tar, a shard list .txt, or a folder)")
    try:
        folder = storage.is_folder(text)
    except FetchError as err:
        raise ManifestError(f"input {spec.input} cannot be reached: {err}") from err
    if folder:
        files = storage.list_folder(text)
        shards = [f for f in files if f.endswith(".tar")]
        if shards:
            return "tar", shards
        if is_remote(text):
            raise ManifestError(f"{spec.input}: a remote folder must hold .tar shards (or give a manifest)")
        return "folder", [text]
    kind = _file_kind(text)
    if kind is not None:
        return kind, [text]
    if text.lower().endswith(SHARD_LIST_SUFFIXES):
        try:
            listing = storage.read_all(text).decode("utf-8")
        except FetchError as err:
            raise ManifestError(f"input {spec.input}: {err}") from err
        base = parent(text)
        files = [join(base, line.strip()) for line in listing.splitlines() if line.strip() and not line.startswith("#")]
        bad = [f for f in files if not f.endswith(".tar")]
        if not files or bad:
            raise ManifestError(f"{spec.input}: a shard list holds one .tar path or URL per line"
                                + (f"; {bad[0]!r} is not one" if bad else " (it is empty)"))
        return "tar", files
    raise ManifestError(f"{spec.input}: unknown input kind (give a .jsonl/.csv/.parquet manifest, .tar shards, a "
                        "shard list .txt, or a folder)")


def _refuse_missing_members(pattern: str, files: list[str]) -> None:
    """A local brace pattern names files the user typed a range for: each must exist (remote ones are looked at
    when indexed: a missing object is then a ``missing`` failure record)."""
    missing = [f for f in files if not is_remote(f) and not os.path.isfile(f)]
    if not missing:
        return
    named = ", ".join(missing[:_NAMED]) + (f" and {len(missing) - _NAMED} more" if len(missing) > _NAMED else "")
    raise ManifestError(f"input not found: {len(missing)} of the {len(files)} files of {pattern} "
                        f"{'is' if len(missing) == 1 else 'are'} missing: {named}")


def _file_kind(path: str) -> str | None:
    if path.lower().endswith(".tar"):
        return "tar"
    return table_kind(path)
