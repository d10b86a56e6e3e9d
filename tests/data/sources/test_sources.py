"""Corpus inputs (:mod:`nemo_cosmos_tokenizer.data.sources`): brace patterns, tar shard indexing and its failures,
tables with segments, the chunked input plan, media read from bytes, and object storage on a real S3 server."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import numpy as np
import pytest

from nemo_cosmos_tokenizer.data.manifest import ManifestError
from nemo_cosmos_tokenizer.data.sources import Columns, InputSpec, Storage, expand_braces, load_media, plan_inputs
from nemo_cosmos_tokenizer.data.sources.storage import FetchError
from nemo_cosmos_tokenizer.data.sources.table import iter_table_samples
from nemo_cosmos_tokenizer.data.sources.tar import index_shard
from nemo_cosmos_tokenizer.data.video import read_sample
from nemo_cosmos_tokenizer.media.clips import ClipSpec
from nemo_cosmos_tokenizer.media.failures import MediaError

from corpus_inputs import add_member, s3_server, upload, write_parquet, write_shards

SPEC = ClipSpec(num_frames=9, height=32, width=32, temporal_compression=8, spatial_compression=16)
VIDEO, IMAGE = "plant_tiny_64x48.mp4", "cat_tiny_17x13.png"


def test_brace_expansion():
    assert expand_braces("s/{008..011}.tar") == ["s/008.tar", "s/009.tar", "s/010.tar", "s/011.tar"]
    assert expand_braces("{a,b}/{1..2}.tar") == ["a/1.tar", "a/2.tar", "b/1.tar", "b/2.tar"]
    assert expand_braces("plain.tar") == ["plain.tar"]
    with pytest.raises(ValueError, match="unbalanced"):
        expand_braces("s/{000..001.tar")


@pytest.fixture
def shard(tmp_path, media_dir) -> Path:
    """One shard: a video + .txt, an image + .json caption, a video without caption, a caption without media."""
    path = tmp_path / "000007.tar"
    with tarfile.open(path, "w") as tar:
        add_member(tar, "a.mp4", (media_dir / VIDEO).read_bytes())
        add_member(tar, "a.txt", b"a plant\n")
        add_member(tar, "dir/b.png", (media_dir / IMAGE).read_bytes())
        add_member(tar, "dir/b.json", json.dumps({"text": "a cat", "start": 0.5}).encode())
        add_member(tar, "c.mp4", (media_dir / VIDEO).read_bytes())
        add_member(tar, "d.txt", b"only words")
    return path


def test_tar_shard_samples_and_their_failures(shard, media_dir):
    entries = index_shard(str(shard), Storage())["entries"]
    assert [e["id"] for e in entries] == ["000007/a", "000007/dir/b", "000007/c", "000007/d"]
    assert entries[0]["text"] == "a plant" and entries[0]["member"] == "a.mp4"
    assert entries[1]["text"] == "a cat" and entries[1]["start"] == 0.5  # .json 'text' when there is no 'caption'
    assert [e.get("failure_reason") for e in entries] == [None, None, "no_caption", "no_media"]
    with open(shard, "rb") as f:  # the recorded byte range is the member's data
        f.seek(entries[0]["offset"])
        assert f.read(entries[0]["size"]) == (media_dir / VIDEO).read_bytes()


def test_truncated_and_unreadable_shards(shard, tmp_path):
    data = shard.read_bytes()
    cut = tmp_path / "cut.tar"
    cut.write_bytes(data[:2000])  # inside the first video's data
    entries = index_shard(str(cut), Storage())["entries"]
    assert [(e["id"], e["failure_reason"]) for e in entries] == [("cut/a", "truncated")]
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a tar file" * 100)
    (entry,) = index_shard(str(junk), Storage())["entries"]
    assert entry["failure_reason"] == "unreadable"
    (entry,) = index_shard(str(tmp_path / "absent.tar"), Storage())["entries"]
    assert entry["failure_reason"] == "missing"


def test_tar_sample_decodes_like_its_file(shard, media_dir, tmp_path):
    plan = plan_inputs(InputSpec(str(shard)), tmp_path / "plan", chunk_size=3)
    samples = list(plan.iter_samples())
    assert [s.index for s in samples] == [0, 1, 2, 3]
    from_tar = read_sample(samples[0], SPEC, "pyav")
    assert isinstance(load_media(samples[0]), bytes)
    from dataclasses import replace

    from_file = read_sample(replace(samples[0], path=str(media_dir / VIDEO), member=None, offset=None, size=None), SPEC, "pyav")
    assert from_tar.failure is None and len(from_tar.clips) == 1
    np.testing.assert_array_equal(from_tar.clips[0], from_file.clips[0])
    image = read_sample(samples[1], SPEC, "auto")
    assert image.backend == "pillow" and image.clips[0].shape == (1, 32, 32, 3)
    failures = [read_sample(s, SPEC).failure.reason for s in samples[2:]]
    assert failures == ["no_caption", "no_media"]


PANDA_ROWS = [  # Panda-70M's shape: a list of [start, end] timestamps and a list of captions per video
    {"path": "v1.mp4", "id": "v1", "timestamp": [["0:00:00.000", "0:00:01.500"], ["0:00:01.500", "0:00:02.000"]],
     "caption": ["first part", "second part"]},
    {"path": "v2.mp4", "id": "v2", "timestamp": [["0:00:00", "0:00:01"]], "caption": ["only part"]},
]


@pytest.mark.parametrize("kind", ["parquet", "csv", "jsonl"])
def test_segment_rows_expand_in_order(kind, tmp_path):
    pytest.importorskip("pyarrow") if kind == "parquet" else None
    path = tmp_path / f"table.{kind}"
    if kind == "parquet":
        write_parquet(PANDA_ROWS, path, row_group_size=1)
    elif kind == "csv":
        lines = ["path,id,timestamp,caption"] + [
            f'{r["path"]},{r["id"]},"{json.dumps(r["timestamp"]).replace(chr(34), chr(34) * 2)}",'
            f'"{json.dumps(r["caption"]).replace(chr(34), chr(34) * 2)}"' for r in PANDA_ROWS]
        path.write_text("\n".join(lines) + "\n")
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in PANDA_ROWS))
    columns = Columns(text="caption", start="timestamp", end="timestamp")
    samples = [s for s, _ in iter_table_samples(str(path), kind, Storage(), columns)]
    assert [(s.id, s.text, s.start, s.end) for s in samples] == [
        ("v1#0", "first part", 0.0, 1.5), ("v1#1", "second part", 1.5, 2.0), ("v2#0", "only part", 0.0, 1.0)]
    assert samples[0].path == str(tmp_path / "v1.mp4")


def test_segment_lists_must_match(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps({"path": "v.mp4", "start": [0, 1], "end": [1, 2], "text": ["one"]}) + "\n")
    with pytest.raises(ManifestError, match="2 segments but 1 captions"):
        list(iter_table_samples(str(path), "jsonl", Storage(), Columns()))


@pytest.mark.parametrize(("line", "match"), [("{not json", "not valid JSON"), ("[1, 2]", "must be a JSON object")])
def test_bad_jsonl_lines_name_their_line_in_both_readers(tmp_path, line, match):
    """read_manifest and the table source read JSONL with the same helper: the same message, file and line."""
    from nemo_cosmos_tokenizer.data.manifest import read_manifest

    path = tmp_path / "m.jsonl"
    path.write_text('{"path": "a.mp4", "text": "fine"}\n\n' + line + "\n")
    for read in (lambda: read_manifest(path), lambda: list(iter_table_samples(str(path), "jsonl", Storage(), Columns()))):
        with pytest.raises(ManifestError, match=match) as info:
            read()
        assert f"{path}:3" in str(info.value)  # the blank line 2 is counted, not read


def test_plan_reads_chunks_alone_and_is_reused(tmp_path):
    manifest = tmp_path / "m.jsonl"
    rows = [{"path": f"v{i}.mp4", "text": f"caption {i}"} for i in range(23)]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = InputSpec(str(manifest))
    plan = plan_inputs(spec, tmp_path / "plan", chunk_size=5)
    assert (plan.num_samples, plan.num_chunks, plan.chunk_length(4)) == (23, 5, 3)
    assert [s.text for s in plan.chunk_samples(3)] == [f"caption {i}" for i in range(15, 20)]
    assert [s.index for s in plan.chunk_samples(4)] == [20, 21, 22]
    from nemo_cosmos_tokenizer.data.manifest import read_manifest

    assert plan.checksum == read_manifest(manifest).checksum  # the same content hash as the in-memory reader
    again = plan_inputs(spec, tmp_path / "plan", chunk_size=5)
    assert again.to_dict() == plan.to_dict()
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows[:-1]))  # the input changed: planned again
    assert plan_inputs(spec, tmp_path / "plan", chunk_size=5).num_samples == 22
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows + rows[:1]))
    with pytest.raises(ManifestError, match="duplicate sample ids: 'v0.mp4'"):
        plan_inputs(spec, tmp_path / "plan", chunk_size=5)


def test_shard_list_folder_and_pattern_agree(tmp_path, media_dir):
    entries = [{"path": VIDEO, "text": f"caption {i}"} for i in range(5)]
    shards = write_shards(entries, media_dir, tmp_path / "shards", per_shard=2)
    listing = tmp_path / "shards.txt"
    listing.write_text("".join(f"shards/{p.name}\n" for p in shards))
    plans = [plan_inputs(InputSpec(text), tmp_path / f"plan{i}", chunk_size=2) for i, text in enumerate(
        [str(tmp_path / "shards"), str(tmp_path / "shards" / "{000000..000002}.tar"), str(listing)])]
    ids = [[s.id for s in p.iter_samples()] for p in plans]
    assert ids[0] == ids[1] == ids[2] == ["000000/sample00000", "000000/sample00001", "000001/sample00002",
                                          "000001/sample00003", "000002/sample00004"]
    assert len({p.checksum for p in plans}) == 1


def test_retries_transient_errors_but_not_missing_objects():
    storage = Storage(retries=3, backoff_s=0.0)
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionResetError("connection reset by peer")
        return b"ok"

    assert storage._retry("s3://b/k", "reading", flaky) == b"ok" and len(calls) == 3
    calls.clear()

    def slow():
        calls.append(1)
        raise TimeoutError("read timed out")

    with pytest.raises(FetchError, match="after 3 attempts") as err:
        storage._retry("s3://b/k", "reading", slow)
    assert not err.value.missing and len(calls) == 3

    def missing():
        calls.append(1)
        raise FileNotFoundError("nope")

    calls.clear()
    with pytest.raises(FetchError) as err:
        storage._retry("s3://b/k", "reading", missing)
    assert err.value.missing and len(calls) == 1


def test_object_storage_on_a_local_s3_server(tmp_path, media_dir, monkeypatch):
    pytest.importorskip("s3fs")
    pytest.importorskip("moto.server")
    entries = [{"path": VIDEO, "text": "a plant"}, {"path": IMAGE, "text": "a cat"}]
    local = write_shards(entries, media_dir, tmp_path / "shards", per_shard=1)
    with s3_server() as endpoint:
        upload(endpoint, "corpus", {f"shards/{p.name}": p.read_bytes() for p in local})
        upload(endpoint, "corpus", {"media/plant.mp4": (media_dir / VIDEO).read_bytes(),
                                    "table.jsonl": b'{"path": "media/plant.mp4", "text": "a plant"}\n'
                                                   b'{"path": "media/gone.mp4", "text": "missing"}\n'})
        # Endpoint from the environment (what boto users set), no options.
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        storage = Storage(options={"skip_instance_cache": True}, backoff_s=0.05)
        remote = plan_inputs(InputSpec("s3://corpus/shards/{000000..000001}.tar", storage=storage), tmp_path / "p1", 1)
        mine = plan_inputs(InputSpec(str(tmp_path / "shards"), storage=storage), tmp_path / "p2", 1)
        assert [s.id for s in remote.iter_samples()] == [s.id for s in mine.iter_samples()]
        assert all(f["version"] for f in remote.files)  # ETags, part of what the config hash covers
        for a, b in zip(remote.iter_samples(), mine.iter_samples()):
            ra, rb = read_sample(a, SPEC, "pyav", storage), read_sample(b, SPEC, "pyav")
            assert ra.failure is None
            np.testing.assert_array_equal(ra.clips[0], rb.clips[0])
        table = plan_inputs(InputSpec("s3://corpus/table.jsonl", storage=storage), tmp_path / "p3", 4)
        ok, gone = table.chunk_samples(0)
        assert ok.path == "s3://corpus/media/plant.mp4" and read_sample(ok, SPEC, "pyav", storage).failure is None
        assert read_sample(gone, SPEC, "pyav", storage).failure.reason == "missing"
        monkeypatch.delenv("AWS_ENDPOINT_URL")
        # Options as --storage-options gives them.
        explicit = Storage(options={"s3": {"endpoint_url": endpoint, "skip_instance_cache": True}})
        assert explicit.stat("s3://corpus/table.jsonl")["size"] > 0
    # The server is gone: the object is unreachable after the retries, a failure with its reason.
    dead = Storage(options={"endpoint_url": endpoint, "skip_instance_cache": True,
                            "config_kwargs": {"connect_timeout": 1, "retries": {"max_attempts": 1}}},
                   retries=2, backoff_s=0.05)
    failure = read_sample(ok, SPEC, "pyav", dead).failure
    assert failure.reason == "unreachable" and "after 2 attempts" in failure.message
    with pytest.raises(MediaError):
        load_media(ok, dead)
