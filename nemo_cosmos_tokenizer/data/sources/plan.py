"""Index the inputs once; read one chunk's samples at a time.

Planning makes one streaming pass over the input (a table read block by block, tar shards header by header) and
writes, into a plan folder (the builder's ``<prefix>.chunks/inputs/``):

* ``samples.jsonl``: every sample, one JSON object per line, in input order (what is needed to read it: path or
  shard URL, member byte range, caption, range, or the failure the input already shows);
* ``index.json``: the byte offset in ``samples.jsonl`` of each chunk's first sample, the sample count, a checksum
  of the samples, and the input files with their size and version (ETag or mtime).

A process then holds only the index (a few bytes per chunk) and reads the samples of the chunks it runs
(:meth:`InputPlan.chunk_samples`: one seek and ``chunk_size`` lines), so its memory does not grow with the
corpus. The planning pass itself keeps 8 bytes per sample (a hash of its id, to refuse duplicate ids).

A plan is reused when it was made from the same input, options and chunk size and every input file still has its
recorded size and version; otherwise it is made again (and a changed checksum then shows in the config hash).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from array import array
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ..manifest import ManifestError, Sample, _check_unique, read_manifest
from .resolve import INPUT_KINDS, InputSpec, resolve_input
from .storage import FetchError, Storage
from .table import iter_table_samples
from .tar import index_shard

__all__ = ["INPUT_KINDS", "InputPlan", "InputSpec", "plan_inputs", "resolve_input"]  # InputSpec ...: from .resolve

log = logging.getLogger(__name__)

PLAN_FORMAT = "nemo-cosmos-tokenizer/input-plan"
PLAN_VERSION = 1


# ----------------------------------------------------------------------------------------------- the pass
def _iter_samples(spec: InputSpec, kind: str, files: list[str], threads: int) -> Iterator[tuple[Sample, str]]:
    """Every sample in input order with its canonical text (index not yet set)."""
    if kind == "folder":
        manifest = read_manifest(files[0])
        for sample in manifest.samples:
            yield sample, json.dumps({"id": sample.id, "text": sample.text}, sort_keys=True, ensure_ascii=False)
        return
    if kind in ("jsonl", "csv", "parquet"):
        for url in files:
            yield from iter_table_samples(url, kind, spec.storage, spec.columns)
        return
    # Tar shards: indexed in threads (I/O bound on object storage), consumed in order, a window at a time.
    window = max(1, 4 * threads)
    with ThreadPoolExecutor(max(1, threads), thread_name_prefix="index-tar") as pool:
        for at in range(0, len(files), window):
            for shard in pool.map(lambda url: index_shard(url, spec.storage, spec.text_keys), files[at : at + window]):
                for entry in shard["entries"]:
                    sample = Sample(index=0, **entry)
                    yield sample, _canonical(sample)


def _canonical(sample: Sample) -> str:
    return json.dumps(_entry(sample), sort_keys=True, ensure_ascii=False)


def _entry(sample: Sample) -> dict[str, Any]:
    """The sample's fields but ``index`` (implicit: the line number), ``None`` ones left out (``text`` kept)."""
    entry = {k: v for k, v in vars(sample).items() if v is not None}
    del entry["index"]
    entry.setdefault("text", None)
    return entry


def _stat_files(storage: Storage, kind: str, files: list[str], threads: int) -> list[dict[str, Any]]:
    if kind == "folder":
        return [{"url": files[0], "size": None, "version": None}]

    def one(url: str) -> dict[str, Any]:
        try:
            return {"url": url, **storage.stat(url)}
        except FetchError:
            return {"url": url, "size": None, "version": None}

    with ThreadPoolExecutor(max(1, threads)) as pool:
        return list(pool.map(one, files))


@dataclass(frozen=True)
class InputPlan:
    """An indexed input: how many samples, where each chunk's samples start in ``samples.jsonl``."""

    directory: Path
    kind: str
    spec: dict[str, Any]
    chunk_size: int
    num_samples: int
    checksum: str
    """sha256 over the samples' canonical entries in order (ids, paths as written, captions, ranges, members)."""
    files: tuple[dict[str, Any], ...]
    """Input files with ``size`` and ``version`` (ETag or mtime) when they are read through the plan."""
    chunk_offsets: tuple[int, ...]

    @property
    def num_chunks(self) -> int:
        return len(self.chunk_offsets)

    @property
    def samples_path(self) -> Path:
        return self.directory / "samples.jsonl"

    def files_digest(self) -> str:
        """sha256 of the input files' URLs, sizes and versions (tar shards, remote tables)."""
        return hashlib.sha256(json.dumps(list(self.files), sort_keys=True).encode()).hexdigest()

    def chunk_length(self, chunk_id: int) -> int:
        if not 0 <= chunk_id < self.num_chunks:
            raise IndexError(f"chunk {chunk_id} out of range [0, {self.num_chunks})")
        return min(self.chunk_size, self.num_samples - chunk_id * self.chunk_size)

    def chunk_samples(self, chunk_id: int) -> tuple[Sample, ...]:
        """The samples of one chunk (reads only its lines of ``samples.jsonl``)."""
        count = self.chunk_length(chunk_id)
        first = chunk_id * self.chunk_size
        samples = []
        with open(self.samples_path, "rb") as f:
            f.seek(self.chunk_offsets[chunk_id])
            for i in range(count):
                samples.append(Sample(index=first + i, **json.loads(f.readline())))
        return tuple(samples)

    def iter_samples(self) -> Iterator[Sample]:
        for chunk_id in range(self.num_chunks):
            yield from self.chunk_samples(chunk_id)

    def to_dict(self) -> dict[str, Any]:
        return {"format": PLAN_FORMAT, "version": PLAN_VERSION, "kind": self.kind, "spec": self.spec,
                "chunk_size": self.chunk_size, "num_samples": self.num_samples, "checksum": self.checksum,
                "files": list(self.files), "chunk_offsets": list(self.chunk_offsets)}

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "InputPlan":
        directory = Path(directory)
        data = json.loads((directory / "index.json").read_text(encoding="utf-8"))
        if data.get("format") != PLAN_FORMAT or data.get("version") != PLAN_VERSION:
            raise ManifestError(f"{directory}/index.json is not an input plan of this version")
        return cls(directory, data["kind"], data["spec"], data["chunk_size"], data["num_samples"], data["checksum"],
                   tuple(data["files"]), tuple(data["chunk_offsets"]))


def _reusable(directory: Path, spec: InputSpec, chunk_size: int, threads: int) -> InputPlan | None:
    if not (directory / "index.json").is_file() or not (directory / "samples.jsonl").is_file():
        return None
    try:
        plan = InputPlan.load(directory)
    except (ManifestError, KeyError, json.JSONDecodeError):
        return None
    if plan.spec != spec.describe() or plan.chunk_size != chunk_size or plan.kind == "folder":
        return None  # a folder has no cheap version: it is listed again
    urls = [f["url"] for f in plan.files]
    return plan if _stat_files(spec.storage, plan.kind, urls, threads) == list(plan.files) else None


def plan_inputs(spec: InputSpec, directory: str | os.PathLike, chunk_size: int, *, threads: int = 16,
                reuse: bool = True) -> InputPlan:
    """Index ``spec``'s input into ``directory`` (see the module docstring); reuse a plan that still holds."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    directory = Path(directory)
    if reuse:
        plan = _reusable(directory, spec, chunk_size, threads)
        if plan is not None:
            log.info("input plan %s still matches its %d input files: reused", directory, len(plan.files))
            return plan
    kind, files = resolve_input(spec)
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f"samples.jsonl.tmp-{os.getpid()}"
    digest = hashlib.sha256()
    id_hashes = array("Q")
    offsets: list[int] = []
    count = 0
    stats = _stat_files(spec.storage, kind, files, threads) if kind != "folder" else None
    try:
        with open(tmp, "wb") as out:
            for sample, canonical in _iter_samples(spec, kind, files, threads):
                if count % chunk_size == 0:
                    offsets.append(out.tell())
                out.write(json.dumps(_entry(sample), ensure_ascii=False).encode("utf-8") + b"\n")
                digest.update(canonical.encode("utf-8") + b"\n")
                id_hashes.append(int.from_bytes(hashlib.blake2b(sample.id.encode(), digest_size=8).digest(), "little"))
                count += 1
        if count == 0:
            raise ManifestError(f"{spec.input} lists no samples")
        _refuse_duplicates(id_hashes, tmp)
        del id_hashes
        os.replace(tmp, directory / "samples.jsonl")
    except FetchError as err:  # a table that cannot be read (tar shards record their own failures instead)
        raise ManifestError(f"input {spec.input}: {err}") from err
    finally:
        if tmp.exists():
            tmp.unlink()
    if stats is None:
        stats = _stat_files(spec.storage, kind, files, threads)
    plan = InputPlan(directory, kind, spec.describe(), chunk_size, count, digest.hexdigest(), tuple(stats), tuple(offsets))
    index_tmp = directory / f"index.json.tmp-{os.getpid()}"
    index_tmp.write_text(json.dumps(plan.to_dict()), encoding="utf-8")
    os.replace(index_tmp, directory / "index.json")
    log.info("indexed %s: %d samples in %d chunks from %d %s file(s)", spec.input, count, plan.num_chunks, len(files), kind)
    return plan


def _refuse_duplicates(id_hashes: array, samples_path: Path) -> None:
    import numpy as np

    hashes = np.frombuffer(id_hashes, dtype=np.uint64)
    ordered = np.sort(hashes)
    repeated = ordered[1:][ordered[1:] == ordered[:-1]]
    if not repeated.size:
        return
    # Rare: a second pass names the entries (a hash collision of distinct ids passes this exact check).
    suspects = set(int(h) for h in repeated[:1000])
    candidates = []
    with open(samples_path, "rb") as f:
        for index, line in enumerate(f):
            if int(hashes[index]) in suspects:
                candidates.append(Sample(index=index, **json.loads(line)))
    _check_unique(candidates)
