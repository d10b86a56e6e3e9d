"""WebDataset tar shards as input: one sample per group of consecutive members sharing a key.

A member ``dir/clip_0001.mp4`` has the key ``dir/clip_0001`` and the extension ``mp4`` (everything after the
first dot of the file name, as WebDataset splits it). In a group:

* the media is the first member whose last extension is a video (else an image) extension of
  :data:`..manifest.VIDEO_EXTENSIONS` / :data:`..manifest.IMAGE_EXTENSIONS`;
* the caption is the ``.txt`` member, else a field of the ``.json`` member (``text_keys``, default ``caption``
  then ``text``); the ``.json`` may also give ``start``/``end`` (seconds) or ``start_frame``/``end_frame``.

Indexing reads the tar headers and the small text members only: the file is opened seekable and the media data
is skipped over (on object storage: range requests for the headers). A sample keeps the shard's URL and the byte
range of its media member, which is read back by one range request when the sample is decoded, never extracted
to disk. Its id is ``<shard name without .tar>/<key>``.

Problems are per sample, never fatal: a group without media, without caption, or whose member runs past the end
of a truncated shard, and a shard whose headers break off or cannot be fetched, become failure entries with a
reason (see :data:`..video.FAILURE_REASONS`).
"""

from __future__ import annotations

import json
import posixpath
import tarfile
from typing import Any

from ..manifest import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS
from .storage import FetchError, Storage

DEFAULT_TEXT_KEYS = ("caption", "text")
#: Read size while walking headers: small, since each header is followed by media data that is skipped.
INDEX_BLOCK_SIZE = 64 << 10
#: Text members larger than this are not captions (read no further).
MAX_TEXT_MEMBER = 1 << 20


def shard_label(url: str) -> str:
    """``000012`` for ``s3://bucket/shards/000012.tar``: the first part of its samples' ids."""
    name = posixpath.basename(url.rstrip("/"))
    return name[: -len(".tar")] if name.endswith(".tar") else name


def split_member_name(name: str) -> tuple[str, str]:
    """``("dir/clip", "mp4")`` for ``dir/clip.mp4`` (WebDataset's key and extension)."""
    folder, base = posixpath.split(name)
    stem, _, ext = base.partition(".")
    return posixpath.join(folder, stem) if folder else stem, ext.lower()


def _media_kind(ext: str) -> str | None:
    last = "." + ext.rsplit(".", 1)[-1] if ext else ""
    if last in VIDEO_EXTENSIONS:
        return "video"
    if last in IMAGE_EXTENSIONS:
        return "image"
    return None


def _failure(label: str, suffix: str, url: str, reason: str, message: str) -> dict[str, Any]:
    return {"id": f"{label}/{suffix}", "path": url, "text": None, "failure_reason": reason, "failure_message": message}


class _Group:
    def __init__(self, key: str) -> None:
        self.key = key
        self.members: list[tuple[str, str, int, int]] = []  # (name, ext, data offset, size)
        self.texts: dict[str, bytes] = {}
        self.problem: tuple[str, str] | None = None


def _sample_entry(group: _Group, url: str, label: str, text_keys: tuple[str, ...], shard_size: int) -> dict[str, Any]:
    names = ", ".join(name for name, *_ in group.members)
    entry: dict[str, Any] = {"id": f"{label}/{group.key}", "path": url, "text": None}
    media = next((m for m in group.members if _media_kind(m[1]) == "video"), None)
    media = media or next((m for m in group.members if _media_kind(m[1]) == "image"), None)
    if media is not None:
        entry.update(member=media[0], offset=media[2], size=media[3])
    past_end = [name for name, _, offset, size in group.members if offset + size > shard_size]
    if past_end:
        entry.update(failure_reason="truncated",
                     failure_message=f"the shard ends inside member {past_end[0]} (cut-off tar file)")
        return entry
    if group.problem is not None:
        entry.update(failure_reason=group.problem[0], failure_message=group.problem[1])
        return entry
    if media is None:
        entry.update(failure_reason="no_media", failure_message=f"no video or image member among: {names}")
        return entry
    meta: dict[str, Any] = {}
    if "json" in group.texts:
        try:
            meta = json.loads(group.texts["json"].decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            entry.update(failure_reason="no_caption", failure_message=f"the .json member is not valid JSON ({err})")
            return entry
        if not isinstance(meta, dict):
            meta = {}
    text = None
    if "txt" in group.texts:
        try:
            text = group.texts["txt"].decode("utf-8").strip()
        except UnicodeDecodeError:
            text = None
    if text is None:
        text = next((meta[k] for k in text_keys if isinstance(meta.get(k), str)), None)
    if text is None:
        entry.update(failure_reason="no_caption",
                     failure_message=f"no .txt member and no {' / '.join(map(repr, text_keys))} field in a .json member")
        return entry
    entry["text"] = text
    for key, kind in (("start", float), ("end", float), ("start_frame", int), ("end_frame", int)):
        value = meta.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
            entry[key] = kind(value)
    return entry


def index_shard(url: str, storage: Storage, text_keys: tuple[str, ...] = DEFAULT_TEXT_KEYS) -> dict[str, Any]:
    """Walk one shard's headers: ``{"url", "size", "version", "entries"}`` where ``entries`` are the shard's
    samples (dicts of :class:`..manifest.Sample` fields without ``index``), in member order."""
    label = shard_label(url)
    try:
        stat = storage.stat(url)
    except FetchError as err:
        reason = "missing" if err.missing else "unreachable"
        return {"url": url, "size": None, "version": None, "entries": [_failure(label, "*", url, reason, str(err))]}
    entries: list[dict[str, Any]] = []
    group: _Group | None = None
    shard_size = stat["size"]
    try:
        with storage.open(url, block_size=INDEX_BLOCK_SIZE) as raw, tarfile.open(fileobj=raw, mode="r:") as tar:
            while True:
                try:
                    member = tar.next()
                except (tarfile.ReadError, EOFError) as err:
                    where = getattr(tar, "offset", 0)
                    cut = where >= shard_size - 1024 or "unexpected end" in str(err)
                    if group is not None:
                        entries.append(_sample_entry(group, url, label, text_keys, shard_size))
                        group = None
                    if not (entries and entries[-1].get("failure_reason") == "truncated"):
                        reason, what = ("truncated", "the shard is cut off") if cut else ("unreadable", "a tar header is corrupt")
                        entries.append(_failure(label, f"@{where}", url, reason,
                                                f"{what} at byte {where} ({err}); the rest of the shard is skipped"))
                    break
                if member is None:
                    break
                if not member.isfile():
                    continue
                key, ext = split_member_name(member.name)
                if group is None or key != group.key:
                    if group is not None:
                        entries.append(_sample_entry(group, url, label, text_keys, shard_size))
                    group = _Group(key)
                group.members.append((member.name, ext, member.offset_data, member.size))
                if ext in ("txt", "json") and ext not in group.texts and member.size <= MAX_TEXT_MEMBER:
                    if member.offset_data + member.size <= shard_size:
                        try:
                            group.texts[ext] = tar.extractfile(member).read()
                        except (tarfile.ReadError, OSError) as err:
                            group.problem = ("truncated", f"cannot read member {member.name}: {err}")
            if group is not None:
                entries.append(_sample_entry(group, url, label, text_keys, shard_size))
    except FetchError as err:
        entries.append(_failure(label, "*", url, "unreachable", str(err)))
    except tarfile.ReadError as err:  # not a tar file at all (opening reads the first header)
        reason = "empty_file" if shard_size == 0 else "unreadable"
        entries.append(_failure(label, "*", url, reason, f"not a readable tar file: {err}"))
    return {"url": url, "size": stat["size"], "version": stat["version"], "entries": entries}
