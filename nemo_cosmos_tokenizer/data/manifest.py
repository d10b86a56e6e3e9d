"""Input manifests: which media files to tokenize, with which caption.

Two inputs are accepted:

* a JSONL file, one sample per line::

      {"path": "clips/a.mp4", "text": "a caption"}
      {"path": "b.mp4", "text": "...", "id": "b-part2", "start": 2.0, "end": 6.5}
      {"path": "c.mp4", "text": "...", "start_frame": 30, "end_frame": 120}

  ``path`` (relative paths resolve against the manifest's folder) and ``text`` (``caption`` also works) are
  required; ``id`` defaults to the path as written (plus the range, if any); ``start``/``end`` are seconds,
  ``start_frame``/``end_frame`` frame numbers (end exclusive). Other keys are ignored. Blank lines are skipped.
* a folder: every video or image below it (recursively, sorted by relative path) with the caption in a sidecar
  ``.txt`` of the same stem (``a.mp4`` + ``a.txt``). A file without its ``.txt`` is kept with ``text=None``
  and reported as a failure by the builder.

The order of samples is the manifest's line order (sorted paths for a folder); chunks of the dataset are cut in
that order, so it defines the order of documents in the output. Ids must be unique.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".flv", ".wmv", ".3gp", ".ogv"}
)
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"})
_PATH_KEYS = ("path", "video", "file")
_TEXT_KEYS = ("text", "caption")


class ManifestError(ValueError):
    """The manifest itself is malformed (a user error that stops the run, unlike a per-sample failure)."""


@dataclass(frozen=True)
class Sample:
    """One manifest entry."""

    index: int
    """Position in the manifest (0-based); documents are written in this order."""

    id: str
    """Unique id (given, or derived from the path and range)."""

    path: str
    """Absolute path of the media file."""

    text: str | None
    """Caption; ``None`` when a folder input has no sidecar ``.txt``."""

    start: float | None = None
    """Start of the usable range in seconds (inclusive)."""

    end: float | None = None
    """End of the usable range in seconds (exclusive)."""

    start_frame: int | None = None
    end_frame: int | None = None

    member: str | None = None
    """Name of the media member when ``path`` is a tar shard (:mod:`.sources.tar`)."""

    offset: int | None = None
    """Byte offset of the media inside ``path`` (a tar member's data), with ``size``."""

    size: int | None = None

    failure_reason: str | None = None
    """Set when the input itself already says the sample cannot be read (a tar group without media, a truncated
    shard, an unreachable object): a reason of :data:`.video.FAILURE_REASONS`, reported, never decoded."""

    failure_message: str | None = None

    @property
    def media_name(self) -> str:
        """The name whose extension tells the media kind: the tar member's, else the path's."""
        return self.member or self.path

    @property
    def is_image(self) -> bool:
        return Path(self.media_name).suffix.lower() in IMAGE_EXTENSIONS

    @property
    def is_local_file(self) -> bool:
        """A whole local file (decoded from its path, as before corpus inputs existed)."""
        from .locations import is_remote

        return self.offset is None and not is_remote(self.path)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _optional_number(entry: dict[str, Any], key: str, kind: type, where: str) -> Any:
    value = entry.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ManifestError(f"{where}: {key!r} must be a number, got {value!r}")
    if kind is int and float(value) != int(value):
        raise ManifestError(f"{where}: {key!r} must be a whole frame number, got {value!r}")
    if value < 0:
        raise ManifestError(f"{where}: {key!r} must be >= 0, got {value!r}")
    return kind(value)


def _sample_from_entry(entry: Any, index: int, base: Path | str, where: str) -> tuple[Sample, str]:
    if not isinstance(entry, dict):
        raise ManifestError(f"{where}: each line must be a JSON object, got {type(entry).__name__}")
    raw_path = next((entry[k] for k in _PATH_KEYS if k in entry), None)
    if not isinstance(raw_path, str) or not raw_path:
        raise ManifestError(f"{where}: missing 'path' (the media file, relative to the manifest's folder)")
    text = next((entry[k] for k in _TEXT_KEYS if k in entry), None)
    if not isinstance(text, str):
        raise ManifestError(f"{where}: missing 'text' (the caption) or it is not a string")
    start = _optional_number(entry, "start", float, where)
    end = _optional_number(entry, "end", float, where)
    start_frame = _optional_number(entry, "start_frame", int, where)
    end_frame = _optional_number(entry, "end_frame", int, where)
    if (start is not None or end is not None) and (start_frame is not None or end_frame is not None):
        raise ManifestError(f"{where}: give a range in seconds (start/end) or in frames (start_frame/end_frame), not both")
    if start is not None and end is not None and end <= start:
        raise ManifestError(f"{where}: end ({end}) must be after start ({start})")
    if start_frame is not None and end_frame is not None and end_frame <= start_frame:
        raise ManifestError(f"{where}: end_frame ({end_frame}) must be after start_frame ({start_frame})")
    sample_id = entry.get("id")
    if sample_id is None:
        sample_id = raw_path
        lo, hi = (start, end) if start_frame is None and end_frame is None else (start_frame, end_frame)
        if lo is not None or hi is not None:
            sample_id += f"@{'' if lo is None else lo}-{'' if hi is None else hi}"
    elif not isinstance(sample_id, (str, int)) or isinstance(sample_id, bool):
        raise ManifestError(f"{where}: 'id' must be a string or an integer, got {sample_id!r}")
    from .locations import join

    sample = Sample(
        index=index,
        id=str(sample_id),
        path=join(str(base), raw_path),
        text=text,
        start=start,
        end=end,
        start_frame=start_frame,
        end_frame=end_frame,
    )
    # What identifies the entry independently of where the manifest sits (used for the resume hash).
    canonical = json.dumps(
        {"id": sample.id, "path": raw_path, "text": text, "range": [start, end, start_frame, end_frame]},
        sort_keys=True,
        ensure_ascii=False,
    )
    return sample, canonical


def _check_unique(samples: list[Sample]) -> None:
    seen: dict[str, int] = {}
    duplicates = []
    for s in samples:
        if s.id in seen:
            duplicates.append(f"{s.id!r} (entries {seen[s.id] + 1} and {s.index + 1})")
        else:
            seen[s.id] = s.index
    if duplicates:
        shown = ", ".join(duplicates[:5]) + (f" and {len(duplicates) - 5} more" if len(duplicates) > 5 else "")
        raise ManifestError(f"duplicate sample ids: {shown}; give each entry a unique 'id'")


@dataclass(frozen=True)
class Manifest:
    """The samples of one input, in order, and a checksum of their content."""

    source: str
    samples: tuple[Sample, ...]
    checksum: str
    """sha256 over the entries (ids, paths as written, captions, ranges) in order."""

    def __len__(self) -> int:
        return len(self.samples)


def iter_jsonl_objects(lines: Iterable[str], name: str) -> Iterator[tuple[dict[str, Any], str]]:
    """``(object, "name:line")`` of each non-blank JSONL line; a line that is not a JSON object is a
    :class:`ManifestError` naming it."""
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{name}:{lineno}"
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as err:
            raise ManifestError(f"{where}: not valid JSON ({err.msg})") from err
        if not isinstance(entry, dict):
            raise ManifestError(f"{where}: each line must be a JSON object, got {type(entry).__name__}")
        yield entry, where


def _read_jsonl(path: Path) -> Manifest:
    samples: list[Sample] = []
    digest = hashlib.sha256()
    base = path.parent.resolve()
    with open(path, encoding="utf-8") as f:
        for entry, where in iter_jsonl_objects(f, str(path)):
            sample, canonical = _sample_from_entry(entry, len(samples), base, where)
            samples.append(sample)
            digest.update(canonical.encode("utf-8") + b"\n")
    _check_unique(samples)
    return Manifest(str(path.resolve()), tuple(samples), digest.hexdigest())


def _read_folder(root: Path) -> Manifest:
    media = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in filenames:
            suffix = Path(name).suffix.lower()
            if suffix in VIDEO_EXTENSIONS or suffix in IMAGE_EXTENSIONS:
                media.append(Path(dirpath) / name)
    media.sort(key=lambda p: p.relative_to(root).as_posix())
    samples: list[Sample] = []
    digest = hashlib.sha256()
    for i, file in enumerate(media):
        rel = file.relative_to(root).as_posix()
        caption_file = file.with_suffix(".txt")
        text = caption_file.read_text(encoding="utf-8").strip() if caption_file.is_file() else None
        samples.append(Sample(index=i, id=rel, path=str(file.resolve()), text=text))
        digest.update(json.dumps({"id": rel, "text": text}, sort_keys=True, ensure_ascii=False).encode() + b"\n")
    _check_unique(samples)
    return Manifest(str(root.resolve()), tuple(samples), digest.hexdigest())


def read_manifest(source: str | os.PathLike) -> Manifest:
    """Read a JSONL manifest or a folder of media files with sidecar ``.txt`` captions."""
    path = Path(source).expanduser()
    if path.is_dir():
        manifest = _read_folder(path)
    elif path.is_file():
        manifest = _read_jsonl(path)
    else:
        raise ManifestError(f"input not found: {path} (give a .jsonl manifest or a folder of videos)")
    if not manifest.samples:
        raise ManifestError(f"{path} lists no samples")
    return manifest
