#!/usr/bin/env python3
"""Real-world end to end: WebDataset tar shards of 1080p / 4K / HEVC / portrait sources -> 720p-class clips ->
Megatron shards, NVDEC decode + the DV8x16x16 fast path, against the encoder-only rate in the same process; from
local files, from local tar shards and from tar shards on a local S3 server (moto).

1. Writes synthetic sources (PyAV, several processes): ``--num-1080p`` 1920x1080 H.264, ``--num-4k`` 3840x2160
   H.264, ``--num-hevc`` 1920x1080 HEVC (libx265, H.264 when PyAV's FFmpeg lacks it) and ``--num-portrait``
   1080x1920 H.264 videos of ``--frames`` frames (drifting textured colour fields, as in ``benchmark_e2e.py``),
   interleaved so every shard mixes kinds; packs them into tar shards of ``--per-shard`` samples (``.mp4`` +
   ``.txt``) and uploads the shards to a moto S3 server on 127.0.0.1.
2. Builds a real-size DV8x16x16 with random weights on the fast path (compiled and verified once, before timing).
3. Times the encoder alone on GPU-resident ``--resolution`` windows, then ``build(fast=True, video_backend="nvdec")``
   for each input: ``files`` (the mp4 files + a JSONL manifest), ``tar`` (local shards) and ``s3`` (the same shards
   from the S3 server); every build resizes to ``--resolution`` (crop) on the GPU. All builds must write
   byte-identical shards (digests printed; when they differ, the differing documents by source kind). An input
   named twice (``files,tar,files``) is built twice. Builds of separate processes agree with the default
   ``--deterministic``; with ``--no-deterministic`` (kernels timed per process) they differed on an H100
   (BENCHMARKS.md, runs 9 and 10). ``--fail-nvdec-every K`` makes every K-th NVDEC decode fail: the bytes must not
   change.

Needs, beyond the ``[data]`` extra: ``[nvdec]`` (PyNvVideoCodec), ``[cloud]`` (fsspec, s3fs) and ``moto[server]``.

Example (one H100, 16 cores; ~4 minutes)::

    python scripts/benchmark_corpus_e2e.py --dir /tmp/corpus-e2e
    # reproducibility across processes: run twice (the sources are reused), compare the printed digests
    python scripts/benchmark_corpus_e2e.py --dir /tmp/corpus-e2e --inputs files,tar --log-level INFO
    # NVDEC failures (PyAV decodes those samples): same digests as the builds without failures
    python scripts/benchmark_corpus_e2e.py --dir /tmp/corpus-e2e --inputs tar --fail-nvdec-every 5 --log-level INFO
    # CPU dry run of the plumbing: tiny model, small sources, PyAV instead of NVDEC
    python scripts/benchmark_corpus_e2e.py --dir /tmp/corpus-dry --device cpu --dtype float32 --channels 8 \\
        --backend pyav --num-1080p 2 --num-4k 0 --num-hevc 1 --num-portrait 1 --frames 9 --num-frames 9 \\
        --clips-per-video 1 --inputs files,tar --stages --diagnose \\
        --resolution 64 64 --batch 2 --no-compile --scale 0.25
    # the decode ceiling (GPU): NVDEC alone with 1-14 concurrent sessions per source kind, nvidia-smi dmon's dec %
    python scripts/benchmark_corpus_e2e.py --dir /tmp/corpus-e2e --ceiling
    # where the time goes (GPU): reader alone and NVDEC alone per source kind, before the builds
    python scripts/benchmark_corpus_e2e.py --dir /tmp/corpus-e2e --inputs tar --stages --log-level INFO
    # where differences between processes come from (GPU): reader twice, encoder twice and shifted by one position
    python scripts/benchmark_corpus_e2e.py --dir /tmp/corpus-e2e --inputs files --diagnose
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
import os
import sys
import tarfile
import time
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import nemo_cosmos_tokenizer as nct  # noqa: E402
from benchmark_e2e import _frames  # noqa: E402
from nemo_cosmos_tokenizer.fast.profiling import time_cuda  # noqa: E402

KINDS = {  # name: (codec, height, width)
    "1080p": ("libx264", 1080, 1920),
    "4k": ("libx264", 2160, 3840),
    "hevc": ("libx265", 1080, 1920),
    "portrait": ("libx264", 1920, 1080),
}


def _write_one(job: tuple[str, str, int, int, int, int]) -> str:
    """One mp4 (veryfast / ultrafast for HEVC, crf 20, yuv420p); returns the codec used."""
    import av
    from fractions import Fraction

    path, codec, seed, count, height, width = job
    if codec not in av.codecs_available:
        codec = "libx264"
    with av.open(path, mode="w") as container:
        stream = container.add_stream(codec, rate=Fraction(24))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "20", "preset": "ultrafast" if codec == "libx265" else "veryfast", "threads": "1"}
        if codec == "libx265":
            stream.codec_context.codec_tag = "hvc1"
        for frame in _frames(seed, count, height, width):
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return codec


def make_sources(root: Path, counts: dict[str, int], frames: int, scale: float, per_shard: int, procs: int) -> dict[str, Any]:
    from nemo_cosmos_tokenizer.data.samples import train_sentencepiece

    videos, shards = root / "videos", root / "shards"
    manifest, model = videos / "captions.jsonl", root / "text_tokenizer.model"
    if manifest.is_file() and model.is_file():
        rows = [json.loads(line) for line in manifest.read_text().splitlines()]
        return {"manifest": manifest, "shards": sorted(shards.glob("*.tar")), "text_tokenizer": model, "rows": rows, "seconds": 0.0}
    started = time.perf_counter()
    videos.mkdir(parents=True, exist_ok=True)
    order = []  # interleave kinds so that every shard mixes them
    remaining = dict(counts)
    while any(remaining.values()):
        for kind in KINDS:
            if remaining.get(kind, 0):
                order.append(kind)
                remaining[kind] -= 1
    jobs = []
    for i, kind in enumerate(order):
        h, w = _scaled_size(kind, scale)
        jobs.append((str(videos / f"{i:05d}-{kind}.mp4"), KINDS[kind][0], i, frames, h, w))
    with get_context("spawn").Pool(procs) as pool:
        codecs = pool.map(_write_one, jobs, chunksize=1)
    rows = [{"path": Path(j[0]).name, "text": f"clip {i}: a {order[i]} scene of drifting colour bands ({codecs[i]})"}
            for i, j in enumerate(jobs)]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    shards.mkdir(exist_ok=True)
    for s, at in enumerate(range(0, len(rows), per_shard)):
        with tarfile.open(shards / f"{s:06d}.tar", "w") as tar:
            for k, row in enumerate(rows[at : at + per_shard]):
                for name, data in ((f"s{at + k:05d}.mp4", (videos / row["path"]).read_bytes()),
                                   (f"s{at + k:05d}.txt", row["text"].encode())):
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    train_sentencepiece([r["text"] for r in rows], root / "text_tokenizer")
    return {"manifest": manifest, "shards": sorted(shards.glob("*.tar")), "text_tokenizer": model, "rows": rows,
            "seconds": time.perf_counter() - started}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", required=True)
    p.add_argument("--model", default="Cosmos-1.0-Tokenizer-DV8x16x16")
    p.add_argument("--num-1080p", type=int, default=240)
    p.add_argument("--num-4k", type=int, default=16)
    p.add_argument("--num-hevc", type=int, default=32)
    p.add_argument("--num-portrait", type=int, default=32)
    p.add_argument("--frames", type=int, default=34, help="frames per source video")
    p.add_argument("--clips-per-video", type=int, default=2)
    p.add_argument("--num-frames", type=int, default=17, help="frames per clip")
    p.add_argument("--resolution", type=int, nargs=2, default=[720, 1280], metavar=("H", "W"))
    p.add_argument("--scale", type=float, default=1.0, help="shrink the sources (dry runs)")
    p.add_argument("--per-shard", type=int, default=32)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--backend", default="nvdec")
    p.add_argument("--workers", type=int, default=8, help="nvdec decoder threads (or DataLoader processes)")
    p.add_argument("--inputs", default="files,tar,s3", help="comma list of files, tar, s3")
    p.add_argument("--device", default="cuda")
    p.add_argument("--dtype", default="bfloat16")
    p.add_argument("--channels", type=int, default=None)
    p.add_argument("--no-compile", action="store_true")
    p.add_argument("--make-procs", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    p.add_argument("--out", default=None)
    p.add_argument("--deterministic", action=argparse.BooleanOptionalAction, default=True,
                   help="kernels chosen without timing (BuildConfig.deterministic, the default); --no-deterministic "
                        "times them (cudnn.benchmark, Inductor autotuning), which made builds of separate processes differ")
    p.add_argument("--decode-slots", type=int, default=None,
                   help="NVDEC decodes in flight at once (BuildConfig.nvdec_decodes, default 7, one per engine of an "
                        "H100)")
    p.add_argument("--frame-access", default="runs", choices=("runs", "index"),
                   help="--stages only: how the reader's NVDEC sessions fetch frames (runs: sequential runs of "
                        "frames; index: get_batch_frames_by_index, the reader of runs 7-10)")
    p.add_argument("--nvdec-resize", default="auto", choices=("auto", "exact", "fused"),
                   help="BuildConfig.nvdec_resize: auto (fused where Triton is installed), exact (YUV->RGB, then "
                        "torch's resize) or fused (one Triton kernel); the same bytes")
    p.add_argument("--ceiling", action="store_true",
                   help="only measure the decode ceiling: every source kind decoded sequentially by 1, 2, 4, 7, 8, 14 "
                        "concurrent decoder sessions (NV12 only, no conversion), with nvidia-smi dmon's dec %%; no "
                        "model, no builds (with --backend pyav: the same on the CPU, a dry run)")
    p.add_argument("--ceiling-sessions", default="1,2,4,7,8,14", help="session counts for --ceiling")
    p.add_argument("--ceiling-processes", type=int, default=0,
                   help="--ceiling: spread each measurement's sessions over this many processes (0: threads of one "
                        "process), to tell the engines' limit from one interpreter's")
    p.add_argument("--ceiling-seconds", type=float, default=3.0,
                   help="each --ceiling measurement decodes (cycling over the kind's files) for at least this long")
    p.add_argument("--stages", action="store_true",
                   help="before the builds, time the reader alone (decode + convert + resize, no encoder) and, with "
                        "--backend nvdec, NVDEC decode alone (NV12 surfaces, no conversion), per source kind")
    p.add_argument("--diagnose", action="store_true",
                   help="before the builds, read samples twice and encode one batch twice and shifted by one position, "
                        "comparing bits: where a difference between builds comes from")
    p.add_argument("--fail-nvdec-every", type=int, default=0, metavar="K",
                   help="make every K-th NVDEC decode of the builds fail (fault injection): such samples are decoded by "
                        "PyAV and resized on the GPU, and the build must still write the same bytes")
    p.add_argument("--contention", action="store_true",
                   help="before the builds: whether the reader's GPU steps wait for other queued work "
                        "(scripts/decode_contention.py)")
    p.add_argument("--gil", action="store_true",
                   help="only probe which of the reader's library calls (new SimpleDecoder, reconfigure_decoder, "
                        "get_batch_frames[_by_index], the PyAV probe, the conversion launch) hold the GIL, beside a "
                        "Python ticker and a CUDA launch loop, on the first 1080p and 4K sources; no model, no builds "
                        "(scripts/decode_contention.py run_gil; with --backend pyav: without PyNvVideoCodec, a dry run)")
    p.add_argument("--consumer-streams", default="side",
                   help="comma list: where the builds encode, 'side' (a stream of their own) and/or 'current' (the "
                        "default stream); each value is built (see chunk.CONSUMER_STREAM)")
    p.add_argument("--reader-priorities", default="-1",
                   help="comma list of CUDA priorities of the decode threads' streams, each built (-1 high, 0 normal)")
    p.add_argument("--probe-threads", default=None,
                   help="comma list of nvdec probe thread counts, each built (default: the reader's PROBE_THREADS)")
    p.add_argument("--decode-slots-list", default=None,
                   help="comma list of --decode-slots values, each built (the first one is used by --stages)")
    p.add_argument("--switch-intervals", default=None,
                   help="comma list of Python switch intervals in ms (sys.setswitchinterval), each built; default "
                        "Python's 5 ms. A smaller one lets the encoder's thread take the GIL back sooner from the "
                        "reader's threads (the convoy effect --gil measures)")
    p.add_argument("--wait-previous", default="1",
                   help="comma list of 1/0, each built: whether a decoder thread waits on the host for its previous "
                        "sample's conversion before decoding the next (nvdec.WAIT_FOR_PREVIOUS; the bytes must not "
                        "change)")
    p.add_argument("--reader-processes", default="0",
                   help="comma list of BuildConfig.nvdec_processes values, each built: the reader in N processes of "
                        "its own (clips handed over by CUDA IPC), 0 threads of the builder's process; the first one "
                        "is used by --stages (its processes started before the timing)")
    p.add_argument("--repeat", type=int, default=1,
                   help="list every source this many times in the files input (a longer build of the same mix, for "
                        "its steady rate: start-up and the last batches weigh less)")
    p.add_argument("--memory-inputs", default="file",
                   help="comma list for tar/s3 inputs: how members reach NVDEC, 'file' (/dev/shm) and/or 'bytes'")
    p.add_argument("--log-level", default="WARNING", type=str.upper, choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                   help="INFO prints how many samples NVDEC decoded and refused")
    args = p.parse_args(argv)
    if args.switch_intervals:
        try:
            bad = [v for v in args.switch_intervals.split(",") if v and not float(v) > 0]
        except ValueError:
            bad = [args.switch_intervals]
        if bad:
            p.error(f"--switch-intervals takes positive milliseconds, e.g. 5,0.5; got {bad}")
    if args.decode_slots_list and not args.decode_slots:
        args.decode_slots = int(args.decode_slots_list.split(",")[0])
    if args.ceiling and _session_counts(args.ceiling_sessions) is None:
        p.error(f"--ceiling-sessions takes a comma list of positive counts (e.g. 1,2,4,7,8,14), got {args.ceiling_sessions!r}")
    if args.fail_nvdec_every < 0:
        p.error(f"--fail-nvdec-every must be >= 0 (0: no failures), got {args.fail_nvdec_every}")
    logging.basicConfig(level=getattr(logging, args.log_level), format="%(name)s: %(message)s")
    logging.getLogger("megatron").setLevel(logging.WARNING)

    from nemo_cosmos_tokenizer.data import nvdec as nvdec_module
    from nemo_cosmos_tokenizer.data.build import BuildConfig, chunk as chunk_module, run_build
    from nemo_cosmos_tokenizer.data.video_tokenizer import wrap_network
    from nemo_cosmos_tokenizer.data.writer import require_megatron
    from nemo_cosmos_tokenizer.distributed import DistEnv

    require_megatron()
    root = Path(args.dir)
    counts = {"1080p": args.num_1080p, "4k": args.num_4k, "hevc": args.num_hevc, "portrait": args.num_portrait}
    src = make_sources(root, counts, args.frames, args.scale, args.per_shard, args.make_procs)
    total_mb = sum(p.stat().st_size for p in src["shards"]) / 1e6
    print(f"# sources: {counts} x {args.frames} frames, {len(src['shards'])} shards, {total_mb:.0f} MB "
          f"(written in {src['seconds']:.1f} s)", flush=True)

    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    if args.ceiling:
        return run_ceiling(root, src["rows"], args, device)
    if args.gil:
        from decode_contention import run_gil

        return run_gil(root, src["rows"], args, device)
    if args.deterministic:
        from nemo_cosmos_tokenizer.devices import deterministic_kernels

        print(f"# deterministic kernels: {deterministic_kernels()}", flush=True)
    else:
        torch.backends.cudnn.benchmark = True
    config = nct.get_config(args.model)
    if args.channels:
        config = config.replace(channels=args.channels)
    torch.manual_seed(0)
    vt = wrap_network(nct.build_tokenizer(config), args.model, device=device, dtype=dtype, parts=("encoder",))
    vt.use_fast(compile=not args.no_compile, cudnn_benchmark=not args.deterministic, eager_numerics=args.deterministic)
    height, width = args.resolution
    clips = np.random.default_rng(0).integers(0, 256, size=(args.batch, args.num_frames, height, width, 3), dtype=np.uint8)
    t0 = time.perf_counter()
    vt.encode(clips)  # compile + verify, once
    print(f"# compile + verify: {time.perf_counter() - t0:.1f} s", flush=True)
    x = torch.from_numpy(clips).to(device).movedim(-1, 1).to(dtype) / 127.5 - 1  # [B, 3, T, H, W]
    t = time_cuda(lambda: vt.inference.network.encode(x), warmup=1, reps=5)
    enc_fps = args.batch * args.num_frames / (t.median_ms * 1e-3)
    results: dict[str, Any] = {"args": vars(args), "encoder_only_fps": enc_fps, "runs": []}
    print(f"encoder only (GPU-resident {height}x{width}, batch {args.batch}): {enc_fps:.1f} frames/s "
          f"({enc_fps / args.num_frames:.1f} clips/s)", flush=True)

    server = None
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    if args.contention:
        results["contention"] = run_contention(root, src["rows"], vt, args, device)
    if args.stages:
        results["stages"] = time_stages(root, src["rows"], vt, args, device, sync)
    if args.diagnose:
        results["diagnose"] = diagnose_determinism(root, vt, args, device)
    if args.fail_nvdec_every:
        _inject_nvdec_failures(args.fail_nvdec_every)
    builds = root / ("builds" if args.repeat == 1 else f"builds-x{args.repeat}")  # digests compare builds of one folder
    try:
        kinds = [k for k in args.inputs.split(",") if k]
        if args.repeat > 1 and kinds != ["files"]:
            raise SystemExit("--repeat applies to --inputs files only")
        default_switch = sys.getswitchinterval()
        for kind, (stream, priority, memory, probes, slots, switch_ms, procs, wait) in _variants(kinds, args):
            chunk_module.CONSUMER_STREAM, nvdec_module.STREAM_PRIORITY, nvdec_module.MEMORY_INPUT = stream, priority, memory
            nvdec_module.WAIT_FOR_PREVIOUS = wait
            # How often a thread that wants the GIL takes it from one that holds it: the encoder's thread gives it up
            # at every kernel launch, and with 20 reader threads busy may wait up to one interval to get it back.
            sys.setswitchinterval(switch_ms / 1e3 if switch_ms else default_switch)
            variant = (f"stream={stream} priority={priority} probe_threads={probes} decode_slots={slots}"
                       + (f" switch={switch_ms:g}ms" if switch_ms else "")
                       + (f" processes={procs}" if procs else "") + ("" if wait else " no-wait-previous")
                       + (f" memory={memory}" if kind != "files" else ""))
            # A fresh folder per build, also across runs with the same --dir (a finished build would only be resumed,
            # in no time); the digests and differing documents then compare every build ever made there.
            name = next(c for c in (kind, *(f"{kind}-{k}" for k in range(2, 10_000))) if not (builds / c).exists())
            options: dict[str, Any] = {}
            if kind == "files":
                source = str(src["manifest"] if args.repeat == 1 else _repeated_manifest(src["manifest"], args.repeat))
            elif kind == "tar":
                source = str(root / "shards")
            elif kind == "s3":
                if server is None:
                    server, endpoint = _start_s3(src["shards"])
                options = {"endpoint_url": endpoint, "key": "testing", "secret": "testing"}
                source = f"s3://corpus/shards/{{000000..{len(src['shards']) - 1:06d}}}.tar"
            else:
                raise SystemExit(f"unknown input {kind!r}")
            prefix = builds / name / "data"
            cfg = BuildConfig(input=source, output_prefix=str(prefix), text_tokenizer=str(src["text_tokenizer"]),
                              tokenizer=args.model, video_backend=args.backend, num_frames=args.num_frames,
                              clips_per_video=args.clips_per_video, resolution=[height, width], device=str(device),
                              dtype=args.dtype, batch_size=args.batch, num_workers=args.workers, chunk_size=100000,
                              progress=False, fast=True, storage_options=options, deterministic=args.deterministic,
                              nvdec_resize=args.nvdec_resize,
                              nvdec_probe_threads=probes, nvdec_processes=procs,
                              **({"nvdec_decodes": slots} if slots else {}))
            sync()
            summary = run_build(cfg, video_tokenizer=vt, env=DistEnv())
            sync()
            records = [json.loads(q.read_text()) for q in sorted(Path(f"{prefix}.chunks").glob("chunk-*.json"))]
            chunk_s = sum(r["seconds"] for r in records)
            # Whole build: index the input, read, decode, encode, write, merge (what a user waits for).
            fps = summary.frames / summary.seconds
            r = {"input": name, "variant": variant, "seconds": summary.seconds, "clips": summary.clips, "frames": summary.frames,
                 "clips_per_s": summary.clips / summary.seconds, "frames_per_s": fps, "of_encoder_only": fps / enc_fps,
                 "failed": summary.failed_samples, "chunk_frames_per_s": summary.frames / chunk_s,
                 "chunk_of_encoder_only": summary.frames / chunk_s / enc_fps}
            results["runs"].append(r)
            print(f"{name:6s} {args.backend}:{args.workers} {variant}: {r['clips']} clips {r['frames']} frames in {r['seconds']:.1f} s: "
                  f"{r['clips_per_s']:.1f} clips/s {r['frames_per_s']:.1f} frames/s = {r['of_encoder_only']:.0%} of "
                  f"encoder-only (chunk loop: {r['chunk_frames_per_s']:.1f} frames/s = {r['chunk_of_encoder_only']:.0%}), "
                  f"failed {r['failed']}", flush=True)
    finally:
        sys.setswitchinterval(default_switch)
        if server is not None:
            server.stop()
    digests = {b.parent.name: hashlib.sha256(b.read_bytes()).hexdigest()[:16] for b in sorted(builds.glob("*/data.bin"))}
    results["bin_sha256"] = digests
    print(f"# shard digests (must be equal): {digests}", flush=True)
    if len(set(digests.values())) > 1 and args.repeat == 1:
        results["differing_documents"] = _differing_documents(root, src["rows"], args.clips_per_video)
    out = args.out or (os.path.join(os.environ["OUT"], "benchmark-corpus-e2e.json") if os.environ.get("OUT") else None)
    if out:
        Path(out).write_text(json.dumps(results, indent=1, default=str))
        print(f"# wrote {out}")
    return 0


def _repeated_manifest(manifest: Path, repeat: int) -> Path:
    """``manifest`` with its rows listed ``repeat`` times (each a sample of its own), beside it."""
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    path = manifest.with_name(f"captions-x{repeat}.jsonl")
    path.write_text("".join(json.dumps({**row, "id": f"{k}/{row['path']}"}) + "\n" for k in range(repeat) for row in rows))
    return path


def _variants(kinds: list[str], args) -> list[tuple[str, tuple[str, int, str, int, int | None, float | None, int, bool]]]:
    """(input kind, (consumer stream, reader priority, memory input, probe threads, decode slots, switch interval in
    ms or None for Python's, reader processes, wait for the previous sample)) for each build: every combination of
    the listed values, the memory inputs only for inputs held in memory (tar, s3)."""
    from nemo_cosmos_tokenizer.data import nvdec

    streams = [v for v in args.consumer_streams.split(",") if v]
    priorities = [int(v) for v in args.reader_priorities.split(",") if v]
    memories = [v for v in args.memory_inputs.split(",") if v]
    probes = [int(v) for v in (args.probe_threads or str(nvdec.PROBE_THREADS)).split(",") if v]
    slots = [int(v) for v in args.decode_slots_list.split(",") if v] if args.decode_slots_list else [args.decode_slots]
    switches = [float(v) for v in args.switch_intervals.split(",") if v] if args.switch_intervals else [None]
    processes = _reader_processes(args)
    waits = [v.strip() not in ("0", "false", "no") for v in args.wait_previous.split(",") if v.strip()] or [True]
    return [(kind, (stream, priority, memory, probe, slot, switch, procs, wait)) for kind in kinds for stream in streams
            for priority in priorities for memory in (memories if kind != "files" else memories[:1])
            for probe in probes for slot in slots for switch in switches for procs in processes for wait in waits]


def _reader_processes(args) -> list[int]:
    return [int(v) for v in args.reader_processes.split(",") if v] or [0]


def run_contention(root: Path, rows: list[dict], vt, args, device: torch.device) -> list[dict[str, Any]]:
    """``--contention``: :func:`decode_contention.probe` on a 1080p H.264 file, reconfigured for a 4K one."""
    from decode_contention import probe

    from nemo_cosmos_tokenizer.media.decode import pyav_open
    from nemo_cosmos_tokenizer.media.nvdec import nv12_to_clip, stream_info

    paths = {Path(r["path"]).stem.split("-", 1)[1]: str(root / "videos" / r["path"]) for r in rows}
    order = [paths[k] for k in ("1080p", "4k", "hevc") if k in paths]
    infos = {p: stream_info(pyav_open(p, describe=True)) for p in order}
    height, width = args.resolution
    return probe(order[:2], lambda nv12, path: nv12_to_clip(nv12, infos[path], height, width, "crop", args.nvdec_resize),
                 device.index or 0)


def run_ceiling(root: Path, rows: list[dict], args, device: torch.device) -> int:
    """``--ceiling``: the decode ceiling per source kind and session count (:mod:`decode_ceiling`); JSON to ``--out``
    (or ``$OUT/benchmark-corpus-ceiling.json``)."""
    from decode_ceiling import measure_ceiling

    by_kind: dict[str, list[str]] = {}
    for row in rows:
        by_kind.setdefault(Path(row["path"]).stem.split("-", 1)[1], []).append(str(root / "videos" / row["path"]))
    sessions = _session_counts(args.ceiling_sessions)
    result = {"args": vars(args), "ceiling": measure_ceiling(
        by_kind, lambda path: _source_pixels(path, args.scale), backend=args.backend, sessions=sessions,
        min_seconds=args.ceiling_seconds, device_index=device.index or 0, processes=args.ceiling_processes)}
    out = args.out or (os.path.join(os.environ["OUT"], "benchmark-corpus-ceiling.json") if os.environ.get("OUT") else None)
    if out:
        Path(out).write_text(json.dumps(result, indent=1, default=str))
        print(f"# wrote {out}")
    return 0


def _session_counts(text: str) -> list[int] | None:
    try:
        counts = [int(n) for n in text.split(",") if n]
    except ValueError:
        return None
    return counts if counts and min(counts) >= 1 else None


def _inject_nvdec_failures(every: int) -> None:
    """Every ``every``-th NVDEC decode from now on raises, as NVDEC did in run 10 (``cuvidMapVideoFrame`` error 208)."""
    import threading

    from nemo_cosmos_tokenizer.data.nvdec import NvdecReader

    decode, calls, lock = NvdecReader._decode, [0], threading.Lock()

    def failing(self, media, wanted, info):
        with lock:
            calls[0] += 1
            fail = calls[0] % every == 0
        if fail:
            raise RuntimeError(f"injected NVDEC failure (decode {calls[0]})")
        return decode(self, media, wanted, info)

    NvdecReader._decode = failing
    print(f"# every {every}th NVDEC decode of the builds fails (injected)", flush=True)


def _scaled_size(kind: str, scale: float) -> tuple[int, int]:
    """Height and width of the sources of ``kind`` shrunk by ``scale`` (even, at least 16)."""
    h, w = KINDS[kind][1:]
    return max(16, int(h * scale) // 2 * 2), max(16, int(w * scale) // 2 * 2)


def _source_pixels(path: str, scale: float) -> int:
    """Pixels of one frame of a source written by :func:`make_sources` (its kind is in its name)."""
    h, w = _scaled_size(Path(path).stem.split("-", 1)[1], scale)
    return h * w


def _clip_spec(vt, args):
    """The ClipSpec the builds use (BuildConfig's defaults, this script's frames, clips and resolution)."""
    from nemo_cosmos_tokenizer.media.clips import ClipSpec

    height, width = args.resolution
    return ClipSpec(num_frames=args.num_frames, clips_per_video=args.clips_per_video, height=height, width=width,
                    resize_mode="crop", temporal_compression=vt.temporal_compression,
                    spatial_compression=vt.spatial_compression)


def diagnose_determinism(root: Path, vt, args, device: torch.device) -> dict[str, Any]:
    """Tell apart the causes of builds that differ between runs (run 9: the last window of every batch of 8):
    (1) the reader: the first ``4 x --batch`` samples read twice, clips compared bit for bit (a decode or
    conversion race would show here); (2) the encoder: one batch of real clips encoded twice, and once rotated by
    one position, so each clip is encoded at another batch position (a result that depends on the position, or on
    the run, shows here)."""
    from nemo_cosmos_tokenizer.data.build.chunk import _iter_samples
    from nemo_cosmos_tokenizer.data.manifest import read_manifest

    spec = _clip_spec(vt, args)
    samples = read_manifest(root / "videos" / "captions.jsonl").samples[: 4 * args.batch]
    first, second = (list(_iter_samples(samples, spec, args.backend, args.workers, device, nvdec_decodes=args.decode_slots,
                                   nvdec_resize=args.nvdec_resize)) for _ in range(2))
    reader_diffs = []
    for a, b in zip(first, second):
        for c, (x, y) in enumerate(zip(a.clips, b.clips)):
            x, y = torch.as_tensor(x).cpu(), torch.as_tensor(y).cpu()  # [T, H, W, 3] uint8
            if not torch.equal(x, y):
                frames = (x != y).flatten(1).any(1).nonzero().flatten().tolist()
                reader_diffs.append({"sample": a.sample.index, "clip": c, "frames": frames})
    clips = [clip for item in first for clip in item.clips][: args.batch]
    base = vt.encode_on_device(clips).cpu()  # [B, T', H', W']
    again = vt.encode_on_device(clips).cpu()
    rotated = vt.encode_on_device(clips[1:] + clips[:1]).cpu()  # clip i at position i - 1
    n = len(clips)
    rerun_diffs = [i for i in range(n) if not torch.equal(base[i], again[i])]
    position_diffs = {i: int((base[i] != rotated[(i - 1) % n]).sum()) for i in range(n)
                      if not torch.equal(base[i], rotated[(i - 1) % n])}
    out = {"reader_samples": len(samples), "reader_differing_clips": reader_diffs,
           "encoder_rerun_differing_positions": rerun_diffs,
           "encoder_moved_differing_tokens_by_clip": position_diffs}
    print(f"# diagnose: reader twice over {len(samples)} samples: {len(reader_diffs)} clips differ "
          f"{reader_diffs[:5]}; encoder, same batch twice: positions {rerun_diffs} differ; each clip moved one batch "
          f"position: differing tokens by clip {position_diffs}", flush=True)
    return out


def time_stages(root: Path, rows: list[dict], vt, args, device: torch.device, sync) -> list[dict[str, Any]]:
    """Where a build's time goes, per source kind, on the mp4 files: the builder's reader alone (``read``: decode,
    NV12->RGB, rotate, resize to ``--resolution``; clips left on the GPU, no encoder) and, for ``--backend nvdec``,
    NVDEC alone (``decode``: every planned frame as NV12 surfaces, one fresh decoder per file, as many files in
    flight as the reader allows). Frames/s of source frames and their pixel rate (Gpx/s), the number that decides
    whether NVDEC can feed the encoder: at ``r`` encoder frames/s a build needs ``r`` x the sources' pixels per
    frame."""
    from concurrent.futures import ThreadPoolExecutor

    from nemo_cosmos_tokenizer.data.build.chunk import _iter_samples
    from nemo_cosmos_tokenizer.data.manifest import read_manifest

    spec = _clip_spec(vt, args)
    samples = read_manifest(root / "videos" / "captions.jsonl").samples
    by_kind: dict[str, list] = {}
    for sample, row in zip(samples, rows):
        by_kind.setdefault(Path(row["path"]).stem.split("-", 1)[1], []).append(sample)
    by_kind["all"] = list(samples)
    out = []
    processes = _reader_processes(args)[0]
    process_reader = None
    if args.backend == "nvdec" and processes:
        from nemo_cosmos_tokenizer.data.nvdec_processes import NvdecProcessReader

        t0 = time.perf_counter()
        process_reader = NvdecProcessReader(spec, device, processes, args.workers, max_decodes=args.decode_slots,
                                            resize=args.nvdec_resize, frame_access=args.frame_access).start()
        first = list(process_reader.iter_samples(by_kind["all"][:processes]))  # each process up, CUDA ready
        print(f"# {processes} reader processes started and warm in {time.perf_counter() - t0:.1f} s "
              f"({len(first)} samples)", flush=True)
    for kind, group in by_kind.items():
        pixels = 0
        sync()
        t0 = time.perf_counter()
        frames = 0
        if process_reader is not None:
            items = process_reader.iter_samples(group)
        elif args.backend == "nvdec":  # the builder's reader, with the frame access asked for
            from nemo_cosmos_tokenizer.data.nvdec import NvdecReader

            items = NvdecReader(spec, device, args.workers, max_decodes=args.decode_slots, resize=args.nvdec_resize,
                                frame_access=args.frame_access).iter_samples(group)
        else:
            items = _iter_samples(group, spec, args.backend, args.workers, device)
        for item in items:
            if item.failure is not None:
                raise SystemExit(f"--stages: {item.sample.path} failed: {item.failure}")
            n = sum(len(plan) for plan in item.frame_indices)
            frames += n
            pixels += n * _source_pixels(item.sample.path, args.scale)
        sync()
        read_s = time.perf_counter() - t0
        row = {"kind": kind, "samples": len(group), "frames": frames, "read_fps": frames / read_s,
               "read_gpx_s": pixels / read_s / 1e9}
        if args.backend == "nvdec":
            from nemo_cosmos_tokenizer.data import nvdec
            from nemo_cosmos_tokenizer.media.nvdec import require_nvdec

            nvc = require_nvdec()
            wanted = list(range(min(args.frames, args.num_frames * args.clips_per_video)))  # what the plans take

            def decode(path: str) -> tuple[int, int]:
                stream = torch.cuda.Stream(device)
                decoder = nvc.SimpleDecoder(path, gpu_id=device.index or 0, use_device_memory=True,
                                            output_color_type=nvc.OutputColorType.NATIVE, cuda_stream=stream.cuda_stream)
                surfaces = decoder.get_batch_frames_by_index(wanted)
                stream.synchronize()
                return len(surfaces), len(surfaces) * _source_pixels(path, args.scale)

            sync()
            t0 = time.perf_counter()
            with ThreadPoolExecutor(min(args.workers, args.decode_slots or nvdec.MAX_CONCURRENT_DECODES)) as pool:
                decoded, decoded_pixels = np.sum(list(pool.map(decode, [s.path for s in group])), axis=0)
            decode_s = time.perf_counter() - t0
            row.update(decode_fps=float(decoded) / decode_s, decode_gpx_s=float(decoded_pixels) / decode_s / 1e9)
        out.append(row)
        print(f"stage {kind:8s} {len(group):4d} samples: reader{f' ({processes} processes)' if processes else ''} "
              f"{row['read_fps']:8.1f} frames/s "
              f"({row['read_gpx_s']:.2f} Gpx/s of sources)"
              + (f", NVDEC alone {row['decode_fps']:8.1f} frames/s ({row['decode_gpx_s']:.2f} Gpx/s)"
                 if "decode_fps" in row else ""), flush=True)
    if process_reader is not None:
        process_reader.close()
    return out


def _differing_documents(root: Path, rows: list[dict], clips_per_video: int) -> dict[str, Any]:
    """Which documents differ from the first build's, by source kind (documents are in manifest order, one per
    clip), to tell a decode or resize difference in some kinds from run-to-run nondeterminism."""
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    builds = sorted((root / "builds").glob("*/data.bin"))
    first = IndexedDataset(str(builds[0].with_suffix("")))
    out: dict[str, Any] = {}
    for path in builds[1:]:
        other = IndexedDataset(str(path.with_suffix("")))
        differing = [i for i in range(min(len(first), len(other))) if not np.array_equal(first[i], other[i])]
        kinds: dict[str, int] = {}
        for i in differing:
            kind = rows[i // clips_per_video]["path"].split("-", 1)[1].split(".")[0] if i // clips_per_video < len(rows) else "?"
            kinds[kind] = kinds.get(kind, 0) + 1
        # Where in a document the tokens differ (as a fraction of its length: the video grid is in T, H, W order, so
        # a difference confined to the end is one in the last latent frames) and how many.
        where = []
        for i in differing[:32]:
            a, b = np.asarray(first[i]), np.asarray(other[i])
            pos = np.flatnonzero(a != b) if len(a) == len(b) else np.arange(min(len(a), len(b)))
            where.append({"document": i, "tokens": int(len(pos)), "length": int(len(a)),
                          "first": round(float(pos[0]) / len(a), 3) if len(pos) else None,
                          "last": round(float(pos[-1]) / len(a), 3) if len(pos) else None})
        out[path.parent.name] = {"against": builds[0].parent.name, "documents": len(other), "differing": len(differing),
                                 "by_kind": kinds, "first": differing[:10], "where": where}
        print(f"# {path.parent.name} vs {builds[0].parent.name}: {len(differing)} of {len(other)} documents differ "
              f"{kinds}; first {differing[:10]}; where (document, tokens, first/last as a fraction of its length): "
              f"{[(w['document'], w['tokens'], w['first'], w['last']) for w in where[:8]]}", flush=True)
    return out


class _MotoProcess:
    """``python -m moto.server`` on 127.0.0.1 in a process of its own: a server thread inside the benchmark's process
    (moto's ``ThreadedMotoServer``) would compete for the GIL with the reader threads it serves."""

    def __init__(self) -> None:
        import socket
        import subprocess
        import urllib.error
        import urllib.request

        with socket.socket() as probe:  # a free port (released just before the server binds it)
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(self.endpoint, timeout=1).close()
                return
            except urllib.error.HTTPError:  # an HTTP answer of any status: the server is up
                return
            except OSError:  # not listening yet
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise SystemExit(f"the moto S3 server did not start on {self.endpoint}: pip install 'moto[server]'")
                time.sleep(0.2)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except Exception:  # noqa: BLE001 - a server that ignores SIGTERM
            self.process.kill()


def _start_s3(shards: list[Path]):
    """A moto S3 server on 127.0.0.1 (its own process) holding the shards under s3://corpus/shards/."""
    import boto3

    server = _MotoProcess()
    endpoint = server.endpoint
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing")
    client.create_bucket(Bucket="corpus")
    t0 = time.perf_counter()
    for shard in shards:
        client.upload_file(str(shard), "corpus", f"shards/{shard.name}")
    print(f"# uploaded {len(shards)} shards to {endpoint} in {time.perf_counter() - t0:.1f} s", flush=True)
    return server, endpoint


if __name__ == "__main__":
    raise SystemExit(main())
