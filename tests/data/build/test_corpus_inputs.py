"""The builder on corpus inputs: the same samples as JSONL + files, as WebDataset tar shards, as Parquet and from
a real S3 server (moto) give byte-identical shards; resume and chunking hold for tar input; the failures report
names corrupt members, truncated shards, missing captions and objects; the config hash covers the shards."""

from __future__ import annotations

import json
import os
import shutil
import tarfile
from pathlib import Path

import pytest

from nemo_cosmos_tokenizer.data import load_text_tokenizer, load_video_tokenizer
from nemo_cosmos_tokenizer.data.build import BuildConfig, ConfigMismatchError, prepare_build, run_build, run_chunks
from nemo_cosmos_tokenizer.data.samples import train_sentencepiece
from nemo_cosmos_tokenizer.distributed import DistEnv

from corpus_inputs import add_member, s3_server, upload, write_parquet, write_shards

MEDIA = ("plant_tiny_64x48.mp4", "cockatoo_portrait_360x640.mp4", "pancake_gray_h264.mp4", "cat_tiny_17x13.png",
         "broken_truncated.mp4", "windowsill_plant_aac.mp4", "cockatoo_hevc.mp4")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, media_dir):
    """The samples as a JSONL manifest (absolute paths), tar shards of 3, a text tokenizer, the tiny tokenizer,
    and the reference build from the JSONL."""
    root = tmp_path_factory.mktemp("corpus")
    captions = {json.loads(line)["path"]: json.loads(line)["text"] for line in (media_dir / "captions.jsonl").read_text().splitlines()}
    entries = [{"path": name, "text": captions[name]} for name in MEDIA]
    manifest = root / "manifest.jsonl"
    manifest.write_text("".join(json.dumps({"path": str(media_dir / e["path"]), "text": e["text"]}) + "\n" for e in entries))
    shards = write_shards(entries, media_dir, root / "shards", per_shard=3)
    spm = train_sentencepiece([e["text"] for e in entries] * 10, root / "spm")
    work = {"root": root, "entries": entries, "manifest": manifest, "shards": shards,
            "text": load_text_tokenizer(spm), "spm": spm,
            "video": load_video_tokenizer("tiny-random-dv8x16x16", "cpu", "float32")}
    reference = _config(work, manifest, root / "ref" / "ds", chunk_size=3)
    work["summary"] = _build(work, reference)
    work["reference"] = reference
    return work


def _config(work, source, prefix, **changes) -> BuildConfig:
    fields = dict(input=str(source), output_prefix=str(prefix), text_tokenizer=str(work["spm"]),
                  tokenizer="tiny-random-dv8x16x16", resolution=[32, 32], num_frames=9, batch_size=2, chunk_size=2,
                  progress=False, device="cpu")
    fields.update(changes)
    return BuildConfig(**fields)


def _build(work, config):
    return run_build(config, video_tokenizer=work["video"], text_tokenizer=work["text"], env=DistEnv())


def _bytes(prefix) -> tuple[bytes, bytes]:
    return Path(f"{prefix}.bin").read_bytes(), Path(f"{prefix}.idx").read_bytes()


def _failures(config) -> list[tuple[str, str]]:
    return [(f["id"], f["reason"]) for f in map(json.loads, config.failures_path.read_text().splitlines())]


def test_reference_build(corpus):
    summary = corpus["summary"]
    assert (summary.samples, summary.written_samples, summary.failures_by_reason) == (7, 6, {"truncated": 1})


def test_tar_shards_give_the_same_bytes_and_report_their_failures(corpus, media_dir, tmp_path):
    # The reference shards plus: a sample without caption, a corrupt member, and a shard cut off inside a member.
    shards = tmp_path / "shards"
    shutil.copytree(corpus["root"] / "shards", shards)
    with tarfile.open(shards / "000003.tar", "w") as tar:
        add_member(tar, "nocap.mp4", (media_dir / "plant_tiny_64x48.mp4").read_bytes())
        add_member(tar, "garbage.mp4", os.urandom(3000))
        add_member(tar, "garbage.txt", b"random bytes are no video")
    whole = (shards / "000000.tar").read_bytes()
    (shards / "000004.tar").write_bytes(whole[:4000])
    config = _config(corpus, shards / "{000000..000004}.tar", tmp_path / "tar" / "ds")
    summary = _build(corpus, config)
    assert _bytes(config.output_prefix) == _bytes(corpus["reference"].output_prefix)
    assert summary.samples == 7 + 3
    assert _failures(config) == [("000001/sample00004", "truncated"), ("000003/nocap", "no_caption"),
                                 ("000003/garbage", "unreadable"), ("000004/sample00000", "truncated")]
    failure = json.loads(config.failures_path.read_text().splitlines()[-1])
    assert failure["member"] == "sample00000.mp4" and "cut-off" in failure["message"]


def test_parquet_gives_the_same_bytes(corpus, media_dir, tmp_path):
    pytest.importorskip("pyarrow")
    table = write_parquet([{"video": str(media_dir / e["path"]), "caption": e["text"]} for e in corpus["entries"]],
                          tmp_path / "table.parquet", row_group_size=2)
    config = _config(corpus, table, tmp_path / "pq" / "ds", path_column="video", text_column="caption", chunk_size=4)
    _build(corpus, config)
    assert _bytes(config.output_prefix) == _bytes(corpus["reference"].output_prefix)


def test_tar_resume_and_chunking(corpus, tmp_path):
    source = corpus["root"] / "shards"
    one = _config(corpus, source, tmp_path / "one" / "ds", chunk_size=1)
    context = prepare_build(one, video_tokenizer=corpus["video"], text_tokenizer=corpus["text"])
    run_chunks(context, [0, 3, 6])  # a run killed after three of its seven chunks
    summary = _build(corpus, one)
    assert summary.chunks_run == 4
    assert _bytes(one.output_prefix) == _bytes(corpus["reference"].output_prefix)
    # A process holds the index only: a chunk's samples are read from the plan folder on demand.
    assert context.inputs.num_samples == 7 and (one.inputs_dir / "samples.jsonl").is_file()


def test_config_hash_covers_the_shards(corpus, tmp_path):
    shards = tmp_path / "shards"
    shutil.copytree(corpus["root"] / "shards", shards)
    config = _config(corpus, shards, tmp_path / "out" / "ds")
    _build(corpus, config)
    # Same member names and captions, other media bytes of the same size: only the shard's size/mtime tell.
    data = bytearray((shards / "000001.tar").read_bytes())
    data[-2000] ^= 0xFF
    (shards / "000001.tar").write_bytes(bytes(data))
    os.utime(shards / "000001.tar", ns=(1, 1))
    with pytest.raises(ConfigMismatchError, match="input files"):
        prepare_build(config, video_tokenizer=corpus["video"], text_tokenizer=corpus["text"])


def test_s3_gives_the_same_bytes_and_reports_missing_objects(corpus, media_dir, tmp_path, monkeypatch):
    pytest.importorskip("s3fs")
    pytest.importorskip("moto.server")
    pytest.importorskip("pyarrow")
    with s3_server() as endpoint:
        files = {f"shards/{p.name}": p.read_bytes() for p in corpus["shards"]}
        files["shards.txt"] = ("".join(f"shards/{p.name}\n" for p in corpus["shards"]) + "shards/gone.tar\n").encode()
        files.update({f"media/{e['path']}": (media_dir / e["path"]).read_bytes() for e in corpus["entries"]})
        upload(endpoint, "corpus", files)
        options = {"endpoint_url": endpoint, "skip_instance_cache": True}
        tar = _config(corpus, "s3://corpus/shards.txt", tmp_path / "s3tar" / "ds", storage_options=options, chunk_size=3)
        _build(corpus, tar)
        assert _bytes(tar.output_prefix) == _bytes(corpus["reference"].output_prefix)
        assert _failures(tar) == [("000001/sample00004", "truncated"), ("gone/*", "missing")]
        rows = [{"path": f"media/{e['path']}", "text": e["text"]} for e in corpus["entries"]]
        write_parquet(rows, tmp_path / "t.parquet")
        upload(endpoint, "corpus", {"table.parquet": (tmp_path / "t.parquet").read_bytes()})
        # Media as separate objects, a table on S3, the endpoint from the environment; 2 decode worker processes.
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        table = _config(corpus, "s3://corpus/table.parquet", tmp_path / "s3pq" / "ds", num_workers=2,
                        storage_options={"skip_instance_cache": True})
        _build(corpus, table)
        assert _bytes(table.output_prefix) == _bytes(corpus["reference"].output_prefix)
