"""Shared set-up of corpus-input tests: the same samples written as tar shards, Parquet, CSV and JSONL, and a real
S3-protocol server (moto's server mode) on 127.0.0.1 (imported by test modules)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import tarfile
from pathlib import Path
from typing import Iterator


def add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def write_shards(entries: list[dict], media_dir: Path, folder: Path, per_shard: int, caption: str = "txt") -> list[Path]:
    """``entries`` (``{"path", "text"}`` of files in ``media_dir``) as WebDataset shards of ``per_shard`` samples:
    ``<key>.<ext>`` + ``<key>.txt`` (or ``<key>.json`` with ``{"caption": ...}`` when ``caption="json"``)."""
    folder.mkdir(parents=True, exist_ok=True)
    shards = []
    for s, at in enumerate(range(0, len(entries), per_shard)):
        path = folder / f"{s:06d}.tar"
        with tarfile.open(path, "w") as tar:
            for k, entry in enumerate(entries[at : at + per_shard]):
                key = f"sample{at + k:05d}"
                ext = entry["path"].split(".", 1)[1]
                add_member(tar, f"{key}.{ext}", (media_dir / entry["path"]).read_bytes())
                if caption == "json":
                    add_member(tar, f"{key}.json", json.dumps({"caption": entry["text"]}).encode())
                else:
                    add_member(tar, f"{key}.txt", entry["text"].encode())
        shards.append(path)
    return shards


def write_parquet(rows: list[dict], path: Path, row_group_size: int = 3) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=row_group_size)
    return path


@contextlib.contextmanager
def s3_server() -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 (a free port); yields its endpoint URL. Credentials are dummies in the
    environment, as a user would have real ones."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def upload(endpoint: str, bucket: str, files: dict[str, bytes]) -> None:
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
        client.create_bucket(Bucket=bucket)
    for key, data in files.items():
        client.put_object(Bucket=bucket, Key=key, Body=data)
