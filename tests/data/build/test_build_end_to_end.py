"""End to end: shared media -> Megatron shards with the DV8x16x16 conformance model, read back by megatron-core.

One reference build (module fixture) of all 33 entries of ``shared/media/captions.jsonl`` at 32x32, 9 frames,
in chunks of 5 samples; the other tests resume, re-chunk, reorder and reconfigure against it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from nemo_cosmos_tokenizer.data import (
    BuildConfig,
    ConfigMismatchError,
    IncompleteBuildError,
    load_text_tokenizer,
    load_video_tokenizer,
    merge,
    prepare_build,
    read_manifest,
    read_sample,
    run_chunks,
)
from nemo_cosmos_tokenizer.data.build import run_build
from nemo_cosmos_tokenizer.data.reader import VideoTokenDataset, inspect_document
from nemo_cosmos_tokenizer.data.samples import train_sentencepiece
from nemo_cosmos_tokenizer.distributed import DistEnv

BROKEN = {"broken_truncated.mp4", "broken_empty.mp4", "broken_text.mp4", "audio_only.m4a", "missing_clip.mp4"}
TOO_SHORT = {"keyboard_rot0_3frames.mov", "keyboard_rot90_3frames.mov", "nasa_single_frame.mp4"}  # < 9 frames


@pytest.fixture(scope="module")
def media_dir(shared_media_dir):
    """The reference build is of all 33 shared entries, whose counts the tests check: the real ../shared/media
    files (skipped without them), never the generated stand-ins."""
    return shared_media_dir


@pytest.fixture(scope="module")
def work(tmp_path_factory, media_dir):
    """Text tokenizer trained on the captions, the conformance DV model saved in our format, a spied tokenizer."""
    from conformance_helpers import load_conformance_model

    from nemo_cosmos_tokenizer.hub.convert import save_pretrained

    root = tmp_path_factory.mktemp("builder")
    captions = [json.loads(line)["text"] for line in (media_dir / "captions.jsonl").read_text().splitlines()]
    spm = train_sentencepiece(captions, root / "spm")
    model_dir = save_pretrained(load_conformance_model("DV8x16x16"), root / "dv8x16x16")
    tokenizer = load_video_tokenizer(model_dir, "cpu", "float32")
    seen: dict[bytes, np.ndarray] = {}
    encode = tokenizer.encode_on_device  # what the builder calls (clips: a list of uint8 tensors)

    def spy(clips):
        grids = encode(clips)
        for clip, grid in zip(clips, grids):
            seen[np.ascontiguousarray(np.asarray(clip)).tobytes()] = grid.cpu().numpy()
        return grids

    tokenizer.encode_on_device = spy
    return {"root": root, "spm": spm, "model_dir": model_dir, "tokenizer": tokenizer, "seen": seen}


def _config(work, media_dir, prefix, **changes) -> BuildConfig:
    fields = dict(
        input=str(media_dir / "captions.jsonl"),
        output_prefix=str(prefix),
        text_tokenizer=str(work["spm"]),
        tokenizer=str(work["model_dir"]),
        resolution=[32, 32],
        num_frames=9,
        batch_size=4,
        chunk_size=5,
        progress=False,
        device="cpu",
    )
    fields.update(changes)
    return BuildConfig(**fields)


@pytest.fixture(scope="module")
def reference(work, media_dir):
    config = _config(work, media_dir, work["root"] / "ref" / "ds")
    summary = _build(config, video_tokenizer=work["tokenizer"])
    return config, summary


def _build(config, **tokenizers):
    """One process, whatever launcher this test runs under."""
    return run_build(config, env=DistEnv(), **tokenizers)


def _bytes(prefix) -> tuple[bytes, bytes]:
    return Path(f"{prefix}.bin").read_bytes(), Path(f"{prefix}.idx").read_bytes()


def test_build_reads_back_exactly(work, media_dir, reference):
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    config, summary = reference
    manifest = read_manifest(config.input)
    failed = BROKEN | TOO_SHORT
    written = [s for s in manifest.samples if s.id not in failed]
    assert (summary.samples, summary.written_samples, summary.failed_samples) == (33, 25, 8)
    assert summary.documents == len(written) == 25 and summary.chunks_total == summary.chunks_run == 7

    sidecar = json.loads(Path(f"{config.output_prefix}.json").read_text())
    layout = sidecar["layout"]
    assert sidecar["vocab_size"] == layout["vocab_size"] == load_text_tokenizer(work["spm"]).vocab_size + 8 + 64000
    assert sidecar["dtype"] == "uint16"  # 400 text + 8 specials + 64,000 codes < 65,500 (the emu3 test covers int32)
    assert sidecar["eod_id"] == layout["eod_id"]
    assert sidecar["video_tokenizer"]["encoder_sha256"] == work["tokenizer"].checksum
    assert sidecar["text_tokenizer"]["sha256"] == load_text_tokenizer(work["spm"]).checksum
    assert sidecar["frames"]["num_frames"] == 9 and (sidecar["frames"]["height"], sidecar["frames"]["width"]) == (32, 32)
    assert sidecar["counts"]["documents"] == 25 and sidecar["counts"]["tokens"] == summary.tokens

    # megatron-core reads it: one sequence per document, each ending with eod.
    ds = IndexedDataset(config.output_prefix)
    assert len(ds) == 25 and ds.document_indices.tolist() == list(range(26))
    text = load_text_tokenizer(work["spm"])
    reader = VideoTokenDataset(config.output_prefix)
    spec = prepare_build(config, video_tokenizer=work["tokenizer"]).clip_spec
    for i, sample in enumerate(written):
        tokens = ds[i]
        assert tokens[-1] == sidecar["eod_id"] and tokens.max() < sidecar["vocab_size"]
        doc = reader.layout.decode_document(tokens, text)
        assert doc.text == sample.text
        # The exact grid encode() produced for this sample's clip.
        clip = read_sample(sample, spec, config.video_backend).clips[0]
        expected = work["seen"][clip.tobytes()]
        np.testing.assert_array_equal(doc.grid, expected)
        assert doc.grid.shape == ((2 if clip.shape[0] == 9 else 1), 2, 2)  # 9 frames -> 1 + 8/8 latent frames

    # Broken files are in the failures file, with their reasons, and nowhere else.
    failures = [json.loads(line) for line in config.failures_path.read_text().splitlines()]
    assert {f["id"] for f in failures} == failed
    assert {f["reason"] for f in failures if f["id"] in TOO_SHORT} == {"too_short"}
    assert [f["index"] for f in failures] == sorted(f["index"] for f in failures)
    broken_texts = {s.text for s in manifest.samples if s.id in BROKEN}
    assert not broken_texts & {reader.decode(i).text for i in range(len(reader))}


def test_gpt_dataset_reads_the_build(reference, tmp_path):
    from megatron.core.datasets.blended_megatron_dataset_builder import BlendedMegatronDatasetBuilder
    from megatron.core.datasets.gpt_dataset import GPTDataset, GPTDatasetConfig

    config, _ = reference
    sidecar = json.loads(Path(f"{config.output_prefix}.json").read_text())

    class TokenizerStandIn:
        vocab_size = sidecar["vocab_size"]
        eod = sidecar["eod_id"]
        pad = sidecar["pad_id"]
        unique_identifiers = {"class": "TokenizerStandIn", "vocab_size": vocab_size, "eod": eod}

    gpt_config = GPTDatasetConfig(
        random_seed=1234,
        sequence_length=64,
        blend=([config.output_prefix], None),
        split="1,0,0",
        path_to_cache=str(tmp_path / "cache"),
        tokenizer=TokenizerStandIn(),
        reset_position_ids=False,
        reset_attention_mask=False,
        eod_mask_loss=False,
    )
    train, valid, test = BlendedMegatronDatasetBuilder(GPTDataset, [8, None, None], lambda: True, gpt_config).build()
    assert valid is None and test is None and len(train) >= 8
    samples = [train[i] for i in range(len(train))]
    assert all(s["tokens"].shape == (64,) and int(s["tokens"].max()) < sidecar["vocab_size"] for s in samples)
    assert any((s["tokens"] == sidecar["eod_id"]).any() for s in samples)  # documents end with eod


def _copy_output(config, destination: Path) -> BuildConfig:
    destination.mkdir(parents=True)
    src = Path(config.output_prefix)
    for path in src.parent.iterdir():
        target = destination / path.name
        shutil.copytree(path, target) if path.is_dir() else shutil.copy2(path, target)
    return BuildConfig(**{**vars(config), "output_prefix": str(destination / src.name)})


def test_resume_redoes_only_incomplete_chunks(work, reference, tmp_path):
    config, _ = reference
    copy = _copy_output(config, tmp_path / "out")
    chunk = Path(copy.chunk_prefix(3))
    Path(f"{chunk}.json").unlink()  # a chunk whose writer died before its record
    Path(f"{copy.chunk_prefix(5)}.bin").write_bytes(b"garbage")  # a chunk whose shard does not match its record
    for suffix in (".bin", ".idx", ".json"):
        Path(f"{copy.output_prefix}{suffix}").unlink()
    summary = _build(copy, video_tokenizer=work["tokenizer"])
    assert summary.chunks_run == 2 and summary.documents == 25
    assert _bytes(copy.output_prefix) == _bytes(config.output_prefix)
    # Two chunks were redone at other times: the sidecar, free of timings, is byte-identical all the same.
    assert Path(f"{copy.output_prefix}.json").read_bytes() == Path(f"{config.output_prefix}.json").read_bytes()
    # A finished build reruns as a no-op: no chunk, and the merged files are not rewritten.
    stamp = Path(f"{copy.output_prefix}.bin").stat().st_mtime_ns
    assert _build(copy, video_tokenizer=work["tokenizer"]).chunks_run == 0
    assert Path(f"{copy.output_prefix}.bin").stat().st_mtime_ns == stamp


def test_a_failed_shard_write_stops_the_build_and_the_rerun_completes_it(work, reference, tmp_path, monkeypatch):
    """Shards are written by a thread of their own while the next chunk is encoded: an error there stops the build
    with that error, the chunks written before it stay complete, the failed one has no record, and a rerun redoes
    only what is missing and gives the same bytes."""
    from nemo_cosmos_tokenizer.data.build import chunk as chunk_module

    config, _ = reference
    fresh = BuildConfig(**{**vars(config), "output_prefix": str(tmp_path / "fails" / "ds")})
    write = chunk_module._write_chunk

    def failing(context, tokens):
        if tokens.chunk_id == 2:
            raise OSError("disk full (injected)")
        return write(context, tokens)

    monkeypatch.setattr(chunk_module, "_write_chunk", failing)
    context = prepare_build(fresh, video_tokenizer=work["tokenizer"])
    total = len(context.pending_chunks())
    with pytest.raises(OSError, match="disk full"):
        run_chunks(context, context.pending_chunks())
    # chunk 3 was encoded while chunk 2 was being written, and is not written once chunk 2's write has failed
    assert context.pending_chunks() == list(range(2, total))
    monkeypatch.setattr(chunk_module, "_write_chunk", write)
    assert _build(fresh, video_tokenizer=work["tokenizer"]).chunks_run == total - 2
    assert _bytes(fresh.output_prefix) == _bytes(config.output_prefix)


def test_changed_configuration_is_refused(work, media_dir, reference, tmp_path):
    config, _ = reference
    copy = _copy_output(config, tmp_path / "out")
    with pytest.raises(ConfigMismatchError, match="token layout"):
        prepare_build(BuildConfig(**{**vars(copy), "layout": "emu3"}), video_tokenizer=work["tokenizer"])
    with pytest.raises(ConfigMismatchError, match="frame sampling"):
        prepare_build(BuildConfig(**{**vars(copy), "num_frames": 17}), video_tokenizer=work["tokenizer"])
    lines = (media_dir / "captions.jsonl").read_text().splitlines()
    edited = tmp_path / "captions.jsonl"
    edited.write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(ConfigMismatchError, match="manifest content"):
        prepare_build(BuildConfig(**{**vars(copy), "input": str(edited)}), video_tokenizer=work["tokenizer"])
    shutil.rmtree(copy.chunks_dir)  # even without the chunks, the merged sidecar remembers
    with pytest.raises(ConfigMismatchError, match="text tokenizer"):
        other = train_sentencepiece(["another corpus entirely"], tmp_path / "other")
        prepare_build(BuildConfig(**{**vars(copy), "text_tokenizer": str(other)}), video_tokenizer=work["tokenizer"])


def test_merge_is_independent_of_chunking_and_distribution(work, reference, tmp_path):
    config, _ = reference
    # One chunk holding everything, written in a single pass.
    single = BuildConfig(**{**vars(config), "output_prefix": str(tmp_path / "single" / "ds"), "chunk_size": 1000})
    _build(single, video_tokenizer=work["tokenizer"])
    assert _bytes(single.output_prefix) == _bytes(config.output_prefix)
    # Chunks of 2 spread over two "ranks" that run them in reverse order; merge refuses before all are done.
    spread = BuildConfig(**{**vars(config), "output_prefix": str(tmp_path / "spread" / "ds"), "chunk_size": 2})
    rank0 = prepare_build(spread, video_tokenizer=work["tokenizer"])
    rank1 = prepare_build(spread, video_tokenizer=work["tokenizer"])
    pending = rank0.pending_chunks()
    assert pending == list(range(17))
    run_chunks(rank1, pending[1::2][::-1])
    with pytest.raises(IncompleteBuildError, match="9 of 17 chunks"):
        merge(spread)
    run_chunks(rank0, pending[0::2][::-1])
    assert rank0.pending_chunks() == []
    merge(spread)
    assert _bytes(spread.output_prefix) == _bytes(config.output_prefix)


def test_emu3_both_orders_and_shorten(work, media_dir, tmp_path):
    rows = [
        {"path": str(media_dir / "keyboard_rot90_3frames.mov"), "text": "keys"},  # 3 frames -> one 1-frame clip
        {"path": str(media_dir / "pancake_vp9_opus.webm"), "text": "pancake"},  # 90 frames -> 2 clips of 9 at 10 fps
        {"path": str(media_dir / "cat_tiny_17x13.png"), "text": "cat"},
        {"path": str(media_dir / "broken_truncated.mp4"), "text": "cut off"},  # its failure crosses the worker pipe
    ]
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = _config(
        work, media_dir, tmp_path / "emu" / "ds", input=str(manifest), layout="emu3", template="both",
        short_videos="shorten", fps=10.0, clips_per_video=2, num_workers=1,  # decoding in a DataLoader worker
    )
    summary = _build(config, video_tokenizer=work["tokenizer"])
    assert (summary.clips, summary.documents) == (4, 8)
    assert summary.failures_by_reason == {"truncated": 1}
    reader = VideoTokenDataset(config.output_prefix)
    docs = [reader.decode(i) for i in range(len(reader))]
    assert [d.text for d in docs] == ["keys"] * 2 + ["pancake"] * 4 + ["cat"] * 2
    assert [d.caption_first for d in docs] == [True, False] * 4
    assert [d.grid.shape for d in docs[::2]] == [(1, 2, 2), (2, 2, 2), (2, 2, 2), (1, 2, 2)]
    tokens = reader.tokens(0)
    assert tokens[0] == 151849 and tokens[-1] == 151850 and reader.sidecar["vocab_size"] == 216854
    assert ((tokens >= 151854) & (tokens < 151854 + 64000)).sum() == 4  # one frame of 2x2 visual tokens


def test_inspector_decodes_a_document_to_video(work, reference, tmp_path):
    import av

    config, _ = reference
    info = inspect_document(config.output_prefix, 1, decoder=str(work["model_dir"]), output=tmp_path / "doc1.mp4")
    manifest = read_manifest(config.input)
    assert info["text"] == manifest.samples[1].text and info["grid_shape"] == [2, 2, 2]
    with av.open(info["video"]) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 9 and frames[0].shape == (32, 32, 3)  # 2 latent frames decode to 1 + 8


def test_image_tokenizer_encodes_every_frame(media_dir, tmp_path):
    from conformance_helpers import load_conformance_model

    from nemo_cosmos_tokenizer.data.video_tokenizer import wrap_network

    tokenizer = wrap_network(load_conformance_model("DI16x16"), "conformance-DI16x16", "cpu", "float32")
    rows = [{"path": str(media_dir / "plant_tiny_64x48.mp4"), "text": "plant"}, {"path": str(media_dir / "cat_chelsea.png"), "text": "cat"}]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    spm = train_sentencepiece(["plant", "cat"], tmp_path / "spm")
    config = BuildConfig(
        input=str(tmp_path / "m.jsonl"), output_prefix=str(tmp_path / "di" / "ds"), text_tokenizer=str(spm),
        num_frames=3, resolution=[32, 48], progress=False, batch_size=2,
    )
    _build(config, video_tokenizer=tokenizer)
    reader = VideoTokenDataset(config.output_prefix)
    video, image = reader.decode(0), reader.decode(1)
    assert video.grid.shape == (3, 2, 3) and image.grid.shape == (1, 2, 3)
    clip = read_sample(read_manifest(config.input).samples[0], _di_spec(), "auto").clips[0]
    np.testing.assert_array_equal(video.grid, tokenizer.encode(clip[None])[0])


def _di_spec():
    from nemo_cosmos_tokenizer.media.clips import ClipSpec

    return ClipSpec(num_frames=3, height=32, width=48, spatial_compression=16)
