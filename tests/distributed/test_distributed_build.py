"""Scale-out on CPU with gloo: the merged bytes do not depend on processes, nodes, kills or restarts.

Every layout is compared with ``reference`` (one process, in this process): ``torchrun`` with 2 processes, two
``torchrun`` "nodes" rendezvousing on 127.0.0.1, and a run whose rank 1 is SIGKILLed half-way through a chunk,
then resumed by rerunning the same command. A changed manifest or tokenizer on resume is refused; a chunk that
raises is reported and retried by the next run; ``--no-merge`` lists the chunk shards for Megatron.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from scaleout_helpers import (
    SCRIPT,
    build_config,
    cli_args,
    clean_env,
    dataset_bytes,
    free_port,
    run_command,
    torchrun_command,
)

from nemo_cosmos_tokenizer.data import ConfigMismatchError
from nemo_cosmos_tokenizer.data.build import (
    BuildAbortedError,
    ChunkFailedError,
    data_paths_path,
    run_build,
    summary_path,
)
from nemo_cosmos_tokenizer.distributed import DistEnv

HERE = Path(__file__).resolve().parent


def _documents(prefixes) -> list[np.ndarray]:
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    docs = []
    for prefix in prefixes:
        ds = IndexedDataset(str(prefix))
        docs += [np.array(ds[i], copy=True) for i in range(len(ds))]  # ds[i] views the mmap closed with ds
    return docs


def _copy_output(config, destination: Path):
    """A copy of a finished build (merged files, sidecars, chunks) under another prefix."""
    destination.mkdir(parents=True)
    src = Path(config.output_prefix)
    for path in src.parent.iterdir():
        target = destination / path.name
        shutil.copytree(path, target) if path.is_dir() else shutil.copy2(path, target)
    return type(config)(**{**vars(config), "output_prefix": str(destination / src.name)})


def _written_indices(chunks_dir: Path) -> list[int]:
    """Sample indices written by every complete chunk, in chunk order (duplicates kept)."""
    records = [json.loads(p.read_text()) for p in sorted(chunks_dir.glob("chunk-*.json"))]
    return [w["index"] for r in records for w in r["written"]]


def test_reference_build_and_summary(dist_work, reference):
    config, summary = reference
    assert summary.status == "complete" and summary.world_size == 1
    assert (summary.samples, summary.written_samples, summary.failed_samples) == (9, 8, 1)
    assert summary.documents == 8 and (summary.chunks_total, summary.chunks_run, summary.chunks_skipped) == (5, 5, 0)
    assert summary.data_path == [config.output_prefix] and summary.merged
    saved = json.loads(summary_path(config.output_prefix).read_text())
    assert saved["documents"] == 8 and saved["ranks"][0]["chunks"] == [0, 1, 2, 3, 4]
    assert saved["tokens_per_second"] > 0 and saved["per_gpu"]["clips_per_second"] == saved["clips_per_second"]
    failures = [json.loads(line) for line in config.failures_path.read_text().splitlines()]
    assert [(f["id"], f["reason"]) for f in failures] == [("missing.mp4", "missing")]
    assert _written_indices(config.chunks_dir) == [0, 1, 2, 3, 4, 5, 6, 8]


def test_two_processes_give_the_same_bytes(dist_work, reference, tmp_path):
    ref_config, _ = reference
    prefix = tmp_path / "out" / "ds"
    done = run_command(torchrun_command(2, SCRIPT, cli_args(dist_work, prefix)), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-4000:]
    assert dataset_bytes(prefix) == dataset_bytes(ref_config.output_prefix)
    # The sidecar holds only what the build determines (no times, hosts or process counts): identical bytes.
    assert Path(f"{prefix}.json").read_bytes() == Path(f"{ref_config.output_prefix}.json").read_bytes()
    assert "wrote 8 documents" in done.stdout and done.stdout.count("wrote 8 documents") == 1  # rank 0 only
    summary = json.loads(summary_path(prefix).read_text())
    assert summary["world_size"] == 2 and summary["backend"] == "gloo" and summary["num_nodes"] == 1
    assert [r["chunks"] for r in summary["ranks"]] == [[0, 2, 4], [1, 3]]  # round-robin of the pending chunks
    assert summary["run_clips"] == summary["clips"] == 8
    assert summary["per_gpu"]["clips_per_second"] == pytest.approx(summary["clips_per_second"] / 2)


def test_two_nodes_give_the_same_bytes(dist_work, reference, tmp_path):
    ref_config, _ = reference
    prefix = tmp_path / "out" / "ds"
    endpoint = f"127.0.0.1:{free_port()}"
    rdzv_id = f"nct-{tmp_path.name}"
    nodes = [
        subprocess.Popen(
            torchrun_command(1, SCRIPT, cli_args(dist_work, prefix), nnodes=2, node_rank=rank, endpoint=endpoint,
                             rdzv_id=rdzv_id),
            cwd=tmp_path, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for rank in (0, 1)
    ]
    outputs = [node.communicate(timeout=240) for node in nodes]
    for node, (_, err) in zip(nodes, outputs):
        assert node.returncode == 0, err[-4000:]
    assert dataset_bytes(prefix) == dataset_bytes(ref_config.output_prefix)
    summary = json.loads(summary_path(prefix).read_text())
    assert summary["world_size"] == 2 and summary["num_nodes"] == 2
    assert sorted(c for r in summary["ranks"] for c in r["chunks"]) == [0, 1, 2, 3, 4]


def test_killed_worker_then_resume(dist_work, reference, tmp_path):
    ref_config, _ = reference
    prefix = tmp_path / "out" / "ds"
    chunks = Path(f"{prefix}.chunks")
    marker = tmp_path / "paused.pid"
    args = cli_args(dist_work, prefix)
    job = subprocess.Popen(
        torchrun_command(2, HERE / "pausing_build.py", args), cwd=tmp_path,
        env=clean_env(NCT_TEST_PAUSE_RANK="1", NCT_TEST_PAUSE_MARKER=str(marker)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 180
        while not marker.is_file() or not marker.read_text():
            assert job.poll() is None, job.communicate()[1][-4000:]
            assert time.monotonic() < deadline, "rank 1 never reached its second chunk"
            time.sleep(0.2)
        os.kill(int(marker.read_text()), signal.SIGKILL)  # rank 1 dies with chunk 1 complete and chunk 3 half-written
        _, err = job.communicate(timeout=120)
    finally:
        if job.poll() is None:
            job.kill()
    assert job.returncode != 0  # torchrun saw its worker die and stopped the job
    assert not Path(f"{prefix}.bin").exists()
    assert (chunks / "chunk-000001.json").is_file() and not (chunks / "chunk-000003.json").exists()
    assert list(chunks.glob("chunk-000003.tmp-*.bin")), "expected the killed writer's temporary shard"

    # Rerunning the same command (the real script) skips complete chunks and redoes the rest.
    done = run_command(torchrun_command(2, SCRIPT, args), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-4000:]
    assert dataset_bytes(prefix) == dataset_bytes(ref_config.output_prefix)
    summary = json.loads(summary_path(prefix).read_text())
    assert summary["chunks_skipped"] >= 2 and summary["chunks_skipped"] + summary["chunks_run"] == 5
    assert 3 in [c for r in summary["ranks"] for c in r["chunks"]]
    assert summary["documents"] == 8
    assert _written_indices(chunks) == [0, 1, 2, 3, 4, 5, 6, 8]  # no sample missing or written twice
    assert not list(chunks.glob("*.tmp-*")), "temporary files of the killed writer were not cleaned up"
    assert len(_documents([prefix])) == 8


def test_changed_manifest_is_refused_by_every_rank(dist_work, reference, tmp_path):
    ref_config, _ = reference
    copy = _copy_output(ref_config, tmp_path / "out")
    edited = tmp_path / "manifest.jsonl"
    lines = Path(dist_work["manifest"]).read_text().splitlines()
    edited.write_text("\n".join(lines[:-1]) + "\n")  # paths resolve against the manifest's folder
    for name in {json.loads(line)["path"] for line in lines} - {"missing.mp4"}:
        (tmp_path / name).symlink_to(Path(dist_work["manifest"]).parent / name)
    before = dataset_bytes(copy.output_prefix)
    done = run_command(torchrun_command(2, SCRIPT, cli_args(dist_work, copy.output_prefix, manifest=edited)),
                       cwd=tmp_path)
    assert done.returncode != 0
    # Every rank refuses after comparing (rank 0 may be reported before torchrun stops the other).
    assert "the manifest content changed" in done.stderr, done.stderr[-4000:]
    assert dataset_bytes(copy.output_prefix) == before


def test_changed_tokenizer_is_refused(dist_work, reference, tmp_path):
    ref_config, _ = reference
    copy = _copy_output(ref_config, tmp_path / "out")
    changed = type(copy)(**{**vars(copy), "tokenizer": "tiny-random-dv8x16x16"})
    with pytest.raises(ConfigMismatchError, match="video tokenizer"):
        run_build(changed, env=DistEnv())
    shutil.rmtree(copy.chunks_dir)  # the merged sidecar alone still remembers
    with pytest.raises(ConfigMismatchError, match="video tokenizer"):
        run_build(changed, env=DistEnv())


def test_no_merge_lists_the_chunk_shards(dist_work, reference, tmp_path):
    ref_config, _ = reference
    copy = _copy_output(ref_config, tmp_path / "out")
    for suffix in (".bin", ".idx"):
        Path(f"{copy.output_prefix}{suffix}").unlink()
    summary = run_build(copy, merge=False, env=DistEnv())
    assert summary.chunks_run == 0 and summary.chunks_skipped == 5 and not summary.merged
    assert not Path(f"{copy.output_prefix}.bin").exists()
    listed = data_paths_path(copy.output_prefix).read_text().split()
    assert listed == summary.data_path and len(listed) == 5 and all(Path(p).is_absolute() for p in listed)
    assert listed == sorted(listed)  # chunk order = manifest order
    sidecar = json.loads(Path(f"{copy.output_prefix}.json").read_text())
    assert sidecar["megatron"]["data_path"] == [f"ds.chunks/chunk-{c:06d}" for c in range(5)]
    ref_docs, docs = _documents([ref_config.output_prefix]), _documents(listed)
    assert len(docs) == len(ref_docs) == 8 and all(np.array_equal(a, b) for a, b in zip(docs, ref_docs))
    assert "--data-path $(cat" in summary.format()


def test_failed_chunk_is_reported_then_retried(dist_work, reference, tmp_path):
    from nemo_cosmos_tokenizer.data import load_video_tokenizer

    ref_config, _ = reference
    config = build_config(dist_work, tmp_path / "out" / "ds")
    tokenizer = load_video_tokenizer(dist_work["model_dir"], "cpu", "float32")
    encode, calls = tokenizer.encode_on_device, []  # what the builder calls per batch

    def flaky(clips):
        calls.append(len(clips))
        if len(calls) == 2:  # the first batch of chunk 1
            raise RuntimeError("CUDA out of memory (simulated)")
        return encode(clips)

    tokenizer.encode_on_device = flaky
    with pytest.raises(ChunkFailedError, match="rerun the same command"):
        run_build(config, video_tokenizer=tokenizer, env=DistEnv())
    saved = json.loads(summary_path(config.output_prefix).read_text())
    assert saved["status"] == "chunks_failed" and saved["chunks_failed"] == [1]
    assert "simulated" in saved["chunk_errors"][0]["error"] and saved["chunks_run"] == 4
    assert not Path(f"{config.output_prefix}.bin").exists()

    summary = run_build(config, env=DistEnv())  # the same settings: only chunk 1 runs
    assert (summary.chunks_run, summary.chunks_skipped) == (1, 4)
    assert dataset_bytes(config.output_prefix) == dataset_bytes(ref_config.output_prefix)


def test_error_of_the_code_stops_the_build(dist_work, reference, tmp_path):
    """A TypeError (what ``--fast --temporal-mode whole`` raised from StreamingEncoder) would repeat on every
    chunk: the build stops at the first one instead of recording all five as failed, says so, and resumes."""
    from nemo_cosmos_tokenizer.data import load_video_tokenizer

    ref_config, _ = reference
    config = build_config(dist_work, tmp_path / "out" / "ds")
    tokenizer = load_video_tokenizer(dist_work["model_dir"], "cpu", "float32")
    calls = []

    def wrong_type(clips):
        calls.append(len(clips))
        raise TypeError("encode_on_device takes a list of uint8 tensors (simulated)")

    tokenizer.encode_on_device = wrong_type
    with pytest.raises(BuildAbortedError, match="would repeat on every chunk") as raised:
        run_build(config, video_tokenizer=tokenizer, env=DistEnv())
    assert isinstance(raised.value.__cause__, TypeError)  # the original error, with its traceback
    assert len(calls) == 1  # one batch of chunk 0, then nothing more
    saved = json.loads(summary_path(config.output_prefix).read_text())
    assert saved["status"] == "aborted" and saved["chunks_failed"] == [0] and saved["chunks_run"] == 0
    assert "simulated" in saved["chunk_errors"][0]["error"] and saved["chunk_errors"][0]["fatal"]
    assert not Path(f"{config.output_prefix}.bin").exists() and not list(config.chunks_dir.glob("chunk-*.json"))

    summary = run_build(config, env=DistEnv())  # fixed: the same command builds everything
    assert (summary.status, summary.chunks_run) == ("complete", 5)
    assert dataset_bytes(config.output_prefix) == dataset_bytes(ref_config.output_prefix)


def test_cosmos_ar_bytes_do_not_depend_on_the_process_count(dist_work, tmp_path):
    """``--layout cosmos_ar`` keeps the builder's guarantees: 1 process and ``torchrun`` with 2 write the same
    merged shards, sidecar and NVIDIA folders."""
    ar = ["--layout", "cosmos_ar", "--nvidia-folders"]
    one = build_config(dist_work, tmp_path / "one" / "ds", layout="cosmos_ar", nvidia_folders=True)
    summary = run_build(one, env=DistEnv())
    assert summary.documents == 8 and summary.vocab_size == 64000
    two = tmp_path / "two" / "ds"
    done = run_command(torchrun_command(2, SCRIPT, cli_args(dist_work, two) + ar), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-4000:]
    assert dataset_bytes(two) == dataset_bytes(one.output_prefix)
    assert Path(f"{two}.json").read_bytes() == Path(f"{one.output_prefix}.json").read_bytes()
    folders = sorted(p.relative_to(two) for p in two.rglob("*") if p.is_file())
    assert folders == sorted(p.relative_to(one.output_prefix) for p in Path(one.output_prefix).rglob("*") if p.is_file())
    assert len(folders) == 2 * 5 and all((two / f).read_bytes() == (Path(one.output_prefix) / f).read_bytes()
                                         for f in folders)
    assert {len(d) for d in _documents([two])} == {json.loads(Path(f"{two}.json").read_text())["document_length"]}


def test_video2world_bytes_do_not_depend_on_the_process_count(dist_work, tmp_path):
    """The Video2World export of a cosmos_ar build: 1 process and ``torchrun`` with 2 write the same files."""
    pytest.importorskip("transformers")
    import torch
    from transformers import T5Config, T5EncoderModel, T5TokenizerFast

    from nemo_cosmos_tokenizer.data.video2world import export_video2world

    config = build_config(dist_work, tmp_path / "ar" / "ds", layout="cosmos_ar")
    run_build(config, env=DistEnv())
    t5 = tmp_path / "t5"  # a tiny random T5 encoder, the captions' sentencepiece model as its vocabulary
    tokenizer = T5TokenizerFast(vocab_file=str(dist_work["spm"]), extra_ids=0)
    torch.manual_seed(0)
    T5EncoderModel(T5Config(vocab_size=tokenizer.vocab_size, d_model=16, d_kv=4, d_ff=32, num_layers=1,
                            num_heads=2)).save_pretrained(t5)
    tokenizer.save_pretrained(t5)
    options = ["--t5", str(t5), "--split", "4,2,2", "--max-length", "32", "--device", "cpu", "--local-files-only"]
    one = export_video2world(config.output_prefix, tmp_path / "one", t5=str(t5), split="4,2,2", max_length=32,
                             device="cpu", local_files_only=True, env=DistEnv())
    assert (one.train_samples, one.test_samples, one.val_samples) == (4, 2, 2)  # 8 of the 9 samples decode
    # torchrun runs a module with "-m" in place of the script
    module = ["nemo_cosmos_tokenizer.data.video2world", config.output_prefix, str(tmp_path / "two"), *options]
    done = run_command(torchrun_command(2, "-m", module), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-4000:]
    files = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert len(files) == 2 * 8 + 2 and sorted(p.name for p in (tmp_path / "two").iterdir()) == files
    assert all((tmp_path / "one" / f).read_bytes() == (tmp_path / "two" / f).read_bytes() for f in files)
