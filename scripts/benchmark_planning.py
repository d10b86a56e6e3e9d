#!/usr/bin/env python3
"""Planning at corpus scale (CPU): time and peak resident memory of indexing the inputs and of one rank's reads.

Writes synthetic inputs (only planning is measured, so media are a few placeholder bytes):

* JSONL manifests of ``--samples`` lines (``{"path", "text"}`` with ~100-character captions);
* a Parquet table of the same rows (``--parquet``);
* ``--shards`` WebDataset tar shards of ``--per-shard`` samples each (``.mp4`` placeholder + ``.txt``).

Each measurement runs in a fresh Python process (peak RSS from ``getrusage``, which includes the ~0.4 GB of
importing torch with the package; the ``import only`` row is that floor):

* ``read_manifest``: the whole-manifest reader every rank ran before (baseline);
* ``plan (index pass)``: :func:`nemo_cosmos_tokenizer.data.sources.plan_inputs` - once per build, on rank 0;
* ``rank 0 of 8``: what a rank does after that: load the plan and read the samples of every chunk it runs
  (``chunks[0::8]``), one chunk at a time.

Example::

    python scripts/benchmark_planning.py --dir /tmp/plan-bench --samples 1000000 3000000 --shards 10000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CAPTION = "A person walks along a rocky beach at sunset while waves roll in and gulls circle above the water, {i}"


def write_jsonl(path: Path, count: int) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for start in range(0, count, 100_000):
            f.write("".join(f'{{"path": "clips/{i:09d}.mp4", "text": "{CAPTION.format(i=i)}"}}\n'
                            for i in range(start, min(count, start + 100_000))))


def write_parquet(path: Path, count: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("path", pa.string()), ("text", pa.string())])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, count, 200_000):
            rows = range(start, min(count, start + 200_000))
            writer.write_table(pa.table({"path": [f"clips/{i:09d}.mp4" for i in rows],
                                         "text": [CAPTION.format(i=i) for i in rows]}, schema=schema),
                               row_group_size=50_000)


def write_shards(folder: Path, shards: int, per_shard: int) -> None:
    import io

    folder.mkdir(parents=True, exist_ok=True)
    media = b"\x00" * 700  # a placeholder: indexing never decodes
    for s in range(shards):
        with tarfile.open(folder / f"{s:06d}.tar", "w") as tar:
            for k in range(per_shard):
                for name, data in ((f"s{k:04d}.mp4", media), (f"s{k:04d}.txt", CAPTION.format(i=k).encode())):
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))


# --------------------------------------------------------------------------------------- one measurement
def _measure(kind: str, source: str, plan_dir: str, chunk_size: int, world: int) -> dict:
    """Runs in its own process; returns seconds and peak RSS."""
    import nemo_cosmos_tokenizer.data.sources as sources  # noqa: F401 - the import floor (torch included)
    from nemo_cosmos_tokenizer.data.manifest import read_manifest
    from nemo_cosmos_tokenizer.data.sources import InputPlan, InputSpec, plan_inputs

    started = time.perf_counter()
    samples = 0
    if kind == "import":
        pass
    elif kind == "read_manifest":
        samples = len(read_manifest(source))
    elif kind == "plan":
        samples = plan_inputs(InputSpec(source), plan_dir, chunk_size, reuse=False).num_samples
    elif kind == "rank":
        plan = InputPlan.load(plan_dir)
        for chunk in range(0, plan.num_chunks, world):
            samples += len(plan.chunk_samples(chunk))
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "samples": samples, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_measure(kind: str, source: str, plan_dir: Path, chunk_size: int, world: int) -> dict:
    command = [sys.executable, __file__, "--dir", str(plan_dir.parent), "--measure", kind, "--source", source, "--plan-dir", str(plan_dir),
               "--chunk-size", str(chunk_size), "--world", str(world)]
    out = subprocess.run(command, check=True, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--samples", type=int, nargs="*", default=[1_000_000])
    parser.add_argument("--baseline-max", type=int, default=3_000_000,
                        help="skip the read_manifest baseline above this many samples (its memory grows ~1.1 GB per 1M)")
    parser.add_argument("--parquet", action="store_true", help="also a Parquet table of the first --samples size")
    parser.add_argument("--shards", type=int, default=10_000)
    parser.add_argument("--per-shard", type=int, default=16)
    parser.add_argument("--chunk-size", type=int, default=512)
    parser.add_argument("--world", type=int, default=8)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--source", help=argparse.SUPPRESS)
    parser.add_argument("--plan-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(_measure(args.measure, args.source, args.plan_dir, args.chunk_size, args.world)))
        return

    args.dir.mkdir(parents=True, exist_ok=True)
    inputs = []
    for count in args.samples:
        path = args.dir / f"manifest-{count}.jsonl"
        if not path.is_file():
            write_jsonl(path, count)
        inputs.append((f"JSONL, {count:,} lines", str(path), count <= args.baseline_max))
    if args.parquet and args.samples:
        path = args.dir / f"table-{args.samples[0]}.parquet"
        if not path.is_file():
            write_parquet(path, args.samples[0])
        inputs.append((f"Parquet, {args.samples[0]:,} rows", str(path), False))
    if args.shards:
        folder = args.dir / f"shards-{args.shards}x{args.per_shard}"
        if not (folder / f"{args.shards - 1:06d}.tar").is_file():
            write_shards(folder, args.shards, args.per_shard)
        inputs.append((f"tar, {args.shards:,} shards x {args.per_shard}", str(folder), False))

    rows = [("import only (floor)", "", run_measure("import", "", args.dir / "none", args.chunk_size, args.world))]
    for label, source, baseline in inputs:
        plan_dir = args.dir / ("plan-" + Path(source).name)
        if baseline:
            rows.append((label, "read_manifest (before)", run_measure("read_manifest", source, plan_dir, args.chunk_size, args.world)))
        rows.append((label, "plan (index pass, once)", run_measure("plan", source, plan_dir, args.chunk_size, args.world)))
        rows.append((label, f"rank 0 of {args.world}: its chunks", run_measure("rank", source, plan_dir, args.chunk_size, args.world)))
        print(f"done: {label}", file=sys.stderr, flush=True)

    print("\n| input | step | samples | seconds | peak RSS (MB) |\n|---|---|---:|---:|---:|")
    for label, step, m in rows:
        print(f"| {label} | {step} | {m['samples']:,} | {m['seconds']:.1f} | {m['peak_rss_mb']:.0f} |")
    if args.out:
        args.out.write_text(json.dumps([{"input": l, "step": s, **m} for l, s, m in rows], indent=1))


if __name__ == "__main__":
    main()
