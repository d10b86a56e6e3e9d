"""The nvdec backend's reader (nemo_cosmos_tokenizer.data.nvdec over nemo_cosmos_tokenizer.media.nvdec).

On machines without NVDEC (CI), PyNvVideoCodec is replaced by a stand-in that hands out FFmpeg's decoded planes as
NV12 surfaces, which is what NVDEC returns (checked on the GPU by the CUDA test below): every sample of the shared
media must then come out exactly as the pyav backend reads it - frame plans, rotation, CPU fallback for what NVDEC
cannot take, failures and their reasons, order.
"""

from __future__ import annotations

import os
import types

import numpy as np
import pytest
import torch

from nemo_cosmos_tokenizer.data.build import BuildConfig
from nemo_cosmos_tokenizer.data.manifest import read_manifest
from nemo_cosmos_tokenizer.data.nvdec import NvdecReader
from nemo_cosmos_tokenizer.media.nvdec import probe_stream
from nemo_cosmos_tokenizer.data.video import read_sample
from nemo_cosmos_tokenizer.media.clips import ClipSpec

av = pytest.importorskip("av")

from nvdec_fake import FAKE_NVC, FakeSimpleDecoder as _FakeSimpleDecoder  # noqa: E402


@pytest.fixture(scope="module")
def media_dir(shared_media_dir):
    """These tests read the whole shared captions.jsonl and real-file properties (rotation, 4:4:4, several
    streams): the real ../shared/media files (skipped without them), never the generated stand-ins."""
    return shared_media_dir


@pytest.mark.parametrize("size", [(64, 96), (240, 426)])
def test_reader_gives_the_pyav_backend_samples(media_dir, size, caplog):
    samples = read_manifest(media_dir / "captions.jsonl").samples
    spec = ClipSpec(num_frames=9, clips_per_video=2, short_videos="shorten", height=size[0], width=size[1],
                    temporal_compression=8, spatial_compression=2)
    reader = NvdecReader(spec, "cpu", threads=3, decoder_module=FAKE_NVC)
    with caplog.at_level("INFO", logger="nemo_cosmos_tokenizer.data.nvdec"):
        got = list(reader.iter_samples(samples))
    assert f"{reader.counts['nvdec']} samples decoded on the GPU, {reader.counts['cpu']} read on the CPU" in caplog.text
    # each sample decoded on the stand-in made its thread's decoder or reconfigured it; a refused one may have done
    # either before failing, and a failure leaves its thread without a decoder (one more made later)
    created, reconfigured = reader.decoder_counts["decoders_created"], reader.decoder_counts["decoders_reconfigured"]
    assert 1 <= created <= 3 + len(reader.refused)
    assert reader.counts["nvdec"] <= created + reconfigured <= reader.counts["nvdec"] + len(reader.refused)
    assert f"decoders: {created} created, {reconfigured} reconfigured" in caplog.text
    # the GPU memory held by clips not yet handed over is bounded by 2 x threads + probe_threads samples, and logged
    sizes = sorted((sum(c.numel() for c in item.clips if isinstance(c, torch.Tensor)) for item in got), reverse=True)
    assert 0 < reader.peak_ahead_bytes <= sum(sizes[: 2 * reader.threads + reader.probe_threads])
    assert f"clips decoded ahead of the encoder: at most {reader.peak_ahead_bytes / 2**20:.0f} MiB" in caplog.text
    assert [item.sample.index for item in got] == [s.index for s in samples]
    for sample, item in zip(samples, got):
        want = read_sample(sample, spec, "pyav")
        if want.failure is not None:
            assert item.failure is not None and item.failure.reason == want.failure.reason, sample.id
            continue
        assert item.failure is None, (sample.id, item.failure)
        assert item.frame_indices == want.frame_indices, sample.id
        assert len(item.clips) == len(want.clips)
        for ours, theirs in zip(item.clips, want.clips):
            assert np.array_equal(np.asarray(ours), theirs), sample.id
    # most videos went through the decoder stand-in; 10-bit, 4:4:4, odd-sized, images and broken files did not
    assert reader.counts["nvdec"] >= 12 and reader.counts["cpu"] >= 10
    by_id = {item.sample.id: item.backend for item in got}
    assert by_id["keyboard_rot90_3frames.mov"] == "nvdec" and by_id["cockatoo_av1.mp4"] == "nvdec"
    assert by_id["pancake_hevc_main10.mp4"] == "pyav" and by_id["dog_odd_638x359.webm"] == "pyav"


def _decoder_key(sample) -> tuple[str, int, int]:
    info = probe_stream(str(sample.path))
    return info.codec, info.width, info.height


def test_a_thread_reconfigures_its_one_decoder_for_every_kind(media_dir):
    """Alternating codecs and sizes (as in a mixed corpus) reuse the thread's one decoder: PyNvVideoCodec's
    reconfigure_decoder keeps its own decoders per kind, and more of ours per thread ended in NVDEC errors."""
    samples = {s.id: s for s in read_manifest(media_dir / "captions.jsonl").samples}
    a, b = samples["keyboard_rot90_3frames.mov"], samples["cockatoo_av1.mp4"]
    assert _decoder_key(a) != _decoder_key(b)
    spec = ClipSpec(num_frames=1, height=32, width=32, temporal_compression=8, spatial_compression=2)
    reader = NvdecReader(spec, "cpu", threads=1, decoder_module=FAKE_NVC)
    got = list(reader.iter_samples([a, b, a, b, a]))
    assert [g.backend for g in got] == ["nvdec"] * 5
    assert (reader.decoder_counts["decoders_created"], reader.decoder_counts["decoders_reconfigured"]) == (1, 4)


def test_a_failed_decode_drops_the_decoder_and_pyav_gives_the_same_clips(media_dir):
    """NVDEC failing on a stream it takes (run 10 on an H100: cuvidMapVideoFrame error 208) must not change the
    tokens: the sample is decoded by PyAV at its own size and resized like NVDEC's frames, and the thread's decoder,
    which may be left in a bad state, is not used again."""
    made = []

    class FailingOnce(_FakeSimpleDecoder):
        calls = 0

        def __init__(self, *args, **kwargs):
            made.append(self)
            super().__init__(*args, **kwargs)

        def get_batch_frames(self, count):
            FailingOnce.calls += 1
            if FailingOnce.calls == 2:
                raise RuntimeError("cuvidMapVideoFrame returned error 208")
            return super().get_batch_frames(count)

    nvc = types.SimpleNamespace(SimpleDecoder=FailingOnce, OutputColorType=FAKE_NVC.OutputColorType)
    samples = {s.id: s for s in read_manifest(media_dir / "captions.jsonl").samples}
    a, b = samples["keyboard_rot90_3frames.mov"], samples["cockatoo_hevc.mp4"]
    # a resize from the source size, as in a real build: the fallback must resize as the NVDEC path does
    spec = ClipSpec(num_frames=1, height=40, width=56, temporal_compression=8, spatial_compression=2)
    group = [a, b, a, b]
    clean = list(NvdecReader(spec, "cpu", threads=1, decoder_module=FAKE_NVC).iter_samples(group))
    reader = NvdecReader(spec, "cpu", threads=1, decoder_module=nvc)
    got = list(reader.iter_samples(group))
    assert [g.backend for g in got] == ["nvdec", "pyav", "nvdec", "nvdec"]
    assert list(reader.refused) == [b.id] and "error 208" in reader.refused[b.id]
    assert (reader.counts["nvdec"], reader.counts["cpu"]) == (3, 1)
    assert len(made) == 2  # the decoder that failed was dropped; the next sample made a new one
    for ours, theirs in zip(got, clean):
        assert ours.frame_indices == theirs.frame_indices
        for x, y in zip(ours.clips, theirs.clips):
            assert torch.equal(x, y), ours.sample.id


def test_decodes_in_flight_are_capped(media_dir):
    """``max_decodes`` (BuildConfig.nvdec_decodes) bounds the NVDEC calls running at once, whatever the threads."""
    import threading
    import time

    running, most, lock = [0], [0], threading.Lock()

    class SlowDecoder(_FakeSimpleDecoder):
        def get_batch_frames(self, count):
            with lock:
                running[0] += 1
                most[0] = max(most[0], running[0])
            time.sleep(0.05)  # long enough for the other threads to try to decode meanwhile
            with lock:
                running[0] -= 1
            return super().get_batch_frames(count)

    nvc = types.SimpleNamespace(SimpleDecoder=SlowDecoder, OutputColorType=FAKE_NVC.OutputColorType)
    samples = {s.id: s for s in read_manifest(media_dir / "captions.jsonl").samples}
    group = [samples["keyboard_rot90_3frames.mov"]] * 8
    spec = ClipSpec(num_frames=1, height=32, width=32, temporal_compression=8, spatial_compression=2)
    reader = NvdecReader(spec, "cpu", threads=6, decoder_module=nvc, max_decodes=2)
    assert reader.max_decodes == 2
    assert [item.backend for item in reader.iter_samples(group)] == ["nvdec"] * 8
    assert 1 <= most[0] <= 2
    assert NvdecReader(spec, "cpu", threads=16, decoder_module=nvc).max_decodes == 7  # the default: an H100's engines
    assert NvdecReader(spec, "cpu", threads=3, decoder_module=nvc, max_decodes=8).max_decodes == 3  # threads bound it


def test_needs_a_gpu_and_the_backend_is_a_build_option():
    spec = ClipSpec(num_frames=1, height=16, width=16)
    with pytest.raises(ValueError, match="decodes on the GPU"):
        NvdecReader(spec, "cpu")
    assert BuildConfig(video_backend="nvdec").video_backend == "nvdec"
    with pytest.raises(ValueError, match="video_backend"):
        BuildConfig(video_backend="nvjpeg")


def _host(clip) -> np.ndarray:
    """A clip as numpy: CUDA tensors from NVDEC, numpy arrays from the CPU fallback."""
    return clip.cpu().numpy() if isinstance(clip, torch.Tensor) else np.asarray(clip)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA and NVDEC")
def test_real_nvdec_equals_pyav(media_dir):
    pytest.importorskip("PyNvVideoCodec")
    samples = {s.id: s for s in read_manifest(media_dir / "captions.jsonl").samples}
    small = ClipSpec(num_frames=9, clips_per_video=2, short_videos="shorten", height=64, width=96,
                     temporal_compression=8, spatial_compression=2)
    native = {"cockatoo_1080p_1.5s.mp4": (1080, 1920), "cockatoo_hevc.mp4": (360, 640), "cockatoo_av1.mp4": (270, 480),
              "pancake_vp9_opus.webm": (240, 426), "keyboard_rot90_3frames.mov": (568, 320),
              "pancake_gray_h264.mp4": (240, 426), "windowsill_plant_aac.mp4": (240, 320),
              "dog_fireplace_vfr_aac.mp4": (720, 1280)}
    report, backends = {}, {}
    for name, (h, w) in native.items():
        exact = ClipSpec(num_frames=9, short_videos="shorten", height=h, width=w, temporal_compression=8)
        reader = NvdecReader(exact, "cuda", threads=1)
        item, want = reader.read(samples[name]), read_sample(samples[name], exact, "pyav")
        backends[name] = (item.backend, reader.refused)
        equal = len(item.clips) == len(want.clips) and all(
            np.array_equal(_host(o), t) for o, t in zip(item.clips, want.clips))
        # after a resize (float32 on the GPU vs uint8 on the CPU): at most one level apart
        resized, cpu = NvdecReader(small, "cuda", threads=1).read(samples[name]), read_sample(samples[name], small, "pyav")
        off = max(int(np.abs(_host(o).astype(int) - t).max()) for o, t in zip(resized.clips, cpu.clips))
        report[name] = (equal, off)
    print(report, backends)
    assert all(equal and off <= 1 for equal, off in report.values()), report
    # H.264 (rotated ones too), HEVC and VP9 must really go through NVDEC. The H100's NVDEC refuses AV1 and this
    # 4:0:0 (grey) H.264 ("codec not supported on this GPU"): those are read on the CPU, and the refusal recorded.
    cpu_ok = {"cockatoo_av1.mp4", "pancake_gray_h264.mp4"}
    assert all(backends[n][0] == "nvdec" for n in native if n not in cpu_ok), backends
    assert all(backends[n][1] for n in cpu_ok if backends[n][0] == "pyav"), backends


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA and NVDEC")
def test_real_nvdec_failure_gives_the_clips_nvdec_would(media_dir, monkeypatch):
    """Where NVDEC fails on a stream it takes, PyAV decodes it at its size and the GPU resizes it: bit for bit the
    clips NVDEC gives, so a transient NVDEC error does not change a build's bytes."""
    pytest.importorskip("PyNvVideoCodec")
    samples = {s.id: s for s in read_manifest(media_dir / "captions.jsonl").samples}
    spec = ClipSpec(num_frames=9, clips_per_video=2, short_videos="shorten", height=64, width=96,
                    temporal_compression=8, spatial_compression=2)
    names = ["cockatoo_1080p_1.5s.mp4", "cockatoo_hevc.mp4", "keyboard_rot90_3frames.mov", "dog_fireplace_vfr_aac.mp4"]
    want = [NvdecReader(spec, "cuda", threads=1).read(samples[n]) for n in names]
    assert [w.backend for w in want] == ["nvdec"] * len(names)
    reader = NvdecReader(spec, "cuda", threads=1)

    def failing(path, indices, info):
        raise RuntimeError("cuvidMapVideoFrame returned error 208 (injected)")

    monkeypatch.setattr(reader, "_decode", failing)
    got = [reader.read(samples[n]) for n in names]
    assert [g.backend for g in got] == ["pyav"] * len(names) and sorted(reader.refused) == sorted(names)
    for g, w in zip(got, want):
        assert g.frame_indices == w.frame_indices and len(g.clips) == len(w.clips)
        for x, y in zip(g.clips, w.clips):
            assert x.device.type == "cuda" and torch.equal(x, y), g.sample.id


def test_builder_refuses_nvdec_off_the_gpu(tmp_path, media_dir):
    from media_build_inputs import make_build_inputs

    from nemo_cosmos_tokenizer.data.build import prepare_build

    pytest.importorskip("sentencepiece")
    root, manifest, spm, model_dir = make_build_inputs(tmp_path, media_dir, ("plant_tiny_64x48.mp4",))
    fields = dict(input=str(manifest), output_prefix=str(root / "ds"), text_tokenizer=str(spm),
                  tokenizer=str(model_dir), resolution=[32, 32], num_frames=9, progress=False, video_backend="nvdec")
    with pytest.raises(ValueError, match="--device cuda or --video-backend pyav"):
        BuildConfig(**fields, device="cpu")  # an explicit CPU device: refused by the config itself
    if torch.cuda.is_available():
        return
    with pytest.raises(ValueError, match="--device cuda or --video-backend pyav"):
        prepare_build(BuildConfig(**fields, device="auto"))  # auto resolves to the CPU: refused before encoding
    assert not (root / "ds.chunks").exists()  # refused before any work was recorded


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA and NVDEC")
@pytest.mark.parametrize("temporal_mode", ["windows", "whole"])
def test_real_nvdec_build_writes_the_pyav_bytes(tmp_path, media_dir, temporal_mode):
    """Whole builds on the GPU: nvdec and pyav backends give byte-identical shards (426x240 sources cropped to
    416x240 need no interpolation, so the pixels are equal); broken files are failures in both."""
    pytest.importorskip("PyNvVideoCodec")
    pytest.importorskip("sentencepiece")
    from media_build_inputs import make_build_inputs

    from nemo_cosmos_tokenizer.data.build import run_build
    from nemo_cosmos_tokenizer.distributed import DistEnv

    videos = ("pancake_h264_opus.mkv", "pancake_vp9_opus.webm", "broken_truncated.mp4", "broken_text.mp4")  # mkv: CPU
    root, manifest, spm, model_dir = make_build_inputs(tmp_path, media_dir, videos)
    digests = {}
    for backend in ("pyav", "nvdec"):
        config = BuildConfig(input=str(manifest), output_prefix=str(root / backend / "ds"), text_tokenizer=str(spm),
                             tokenizer=str(model_dir), resolution=[240, 416], num_frames=17, clips_per_video=2,
                             batch_size=2, progress=False, device="cuda", dtype="float32", video_backend=backend,
                             temporal_mode=temporal_mode, num_workers=2)
        summary = run_build(config, env=DistEnv())
        assert summary.failed_samples == 2 and summary.written_samples == 2, summary.format()
        digests[backend] = (root / backend / "ds.bin").read_bytes()
    assert digests["nvdec"] == digests["pyav"]


def test_reader_takes_tar_members_from_memory(media_dir, tmp_path):
    """Tar members (bytes in memory): probed by PyAV from the bytes, handed to the decoder as bytes (no temporary
    file left behind), same clips as the pyav backend reading the same tar."""
    import glob
    import tempfile

    from corpus_inputs import write_shards

    from nemo_cosmos_tokenizer.data.sources import InputSpec, plan_inputs

    names = ["plant_tiny_64x48.mp4", "keyboard_rot90_3frames.mov", "cat_tiny_17x13.png", "broken_truncated.mp4"]
    write_shards([{"path": n, "text": n} for n in names], media_dir, tmp_path / "shards", per_shard=2)
    samples = list(plan_inputs(InputSpec(str(tmp_path / "shards")), tmp_path / "plan", 8).iter_samples())
    spec = ClipSpec(num_frames=1, height=32, width=48, temporal_compression=8, spatial_compression=2)
    leftovers = lambda: set(glob.glob(os.path.join("/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir(), "nct-nvdec-*")))  # noqa: E731
    before = leftovers()
    got = list(NvdecReader(spec, "cpu", threads=2, decoder_module=FAKE_NVC).iter_samples(samples))
    assert leftovers() == before
    assert [item.backend for item in got[:2]] == ["nvdec", "nvdec"]
    for sample, item in zip(samples, got):
        want = read_sample(sample, spec, "pyav")
        assert (item.failure and item.failure.reason) == (want.failure and want.failure.reason), sample.id
        for ours, theirs in zip(item.clips, want.clips):
            assert np.array_equal(np.asarray(ours), theirs), sample.id


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA and NVDEC")
def test_real_reader_fused_resize_equals_exact(media_dir):
    """The reader with ``resize="fused"`` (one Triton kernel) gives the ``exact`` path's clips bit for bit, through
    many threads at once (clips handed over by CUDA events, no host synchronization per sample)."""
    pytest.importorskip("PyNvVideoCodec")
    pytest.importorskip("triton")
    samples = read_manifest(media_dir / "captions.jsonl").samples
    spec = ClipSpec(num_frames=9, clips_per_video=2, short_videos="shorten", height=64, width=96,
                    temporal_compression=8, spatial_compression=2)
    exact = list(NvdecReader(spec, "cuda", threads=7, resize="exact").iter_samples(samples))
    reader = NvdecReader(spec, "cuda", threads=7, resize="fused")
    fused = list(reader.iter_samples(samples))
    assert reader.peak_ahead_bytes > 0
    for a, b in zip(exact, fused):
        assert (a.failure and a.failure.reason) == (b.failure and b.failure.reason), a.sample.id
        assert a.backend == b.backend and a.frame_indices == b.frame_indices, a.sample.id
        for x, y in zip(a.clips, b.clips):
            assert torch.equal(torch.as_tensor(x).cpu(), torch.as_tensor(y).cpu()), a.sample.id


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA and NVDEC")
def test_real_reader_without_the_host_wait_gives_the_same_clips(media_dir, monkeypatch):
    """Without a decoder thread's host wait for its previous sample's conversion (``WAIT_FOR_PREVIOUS``), the
    decoder refills its surfaces only after the copies queued on the thread's stream: the clips are the same, read
    many times over by 7 threads so that decodes and conversions overlap."""
    pytest.importorskip("PyNvVideoCodec")
    from nemo_cosmos_tokenizer.data import nvdec as nvdec_module

    samples = [s for s in read_manifest(media_dir / "captions.jsonl").samples if s.path.endswith(".mp4")] * 4
    spec = ClipSpec(num_frames=9, clips_per_video=2, short_videos="shorten", height=64, width=96,
                    temporal_compression=8, spatial_compression=2)
    waited = list(NvdecReader(spec, "cuda", threads=7).iter_samples(samples))
    monkeypatch.setattr(nvdec_module, "WAIT_FOR_PREVIOUS", False)
    unwaited = list(NvdecReader(spec, "cuda", threads=7).iter_samples(samples))
    for a, b in zip(waited, unwaited):
        assert (a.failure and a.failure.reason) == (b.failure and b.failure.reason), a.sample.id
        assert a.backend == b.backend and a.frame_indices == b.frame_indices, a.sample.id
        for x, y in zip(a.clips, b.clips):
            assert torch.equal(torch.as_tensor(x).cpu(), torch.as_tensor(y).cpu()), a.sample.id


def test_one_reader_reads_across_chunks_and_logs_its_threads(media_dir, monkeypatch, caplog):
    """A build's chunks share one nvdec reader (its threads read the next chunk while this one is encoded and
    written): each chunk gets exactly its own samples, in order, as the pyav backend reads them; the reader is made
    once, and its pass ends with the log of what it read and where its threads' time went."""
    import functools

    from nemo_cosmos_tokenizer.data import nvdec as nvdec_module
    from nemo_cosmos_tokenizer.data.build import chunk as chunk_module

    made = []

    def reader(*args, **kwargs):
        made.append(NvdecReader(*args, decoder_module=FAKE_NVC, **kwargs))
        return made[-1]

    monkeypatch.setattr(nvdec_module, "NvdecReader", reader)
    samples = read_manifest(media_dir / "captions.jsonl").samples[:9]
    chunks = {0: samples[:3], 1: samples[3:5], 2: samples[5:]}
    spec = ClipSpec(num_frames=9, clips_per_video=2, short_videos="shorten", height=32, width=48,
                    temporal_compression=8, spatial_compression=2)
    config = types.SimpleNamespace(video_backend="nvdec", num_workers=2, nvdec_decodes=None, nvdec_resize="exact",
                                   nvdec_probe_threads=2, nvdec_processes=0,
                                   storage=lambda: None)
    context = types.SimpleNamespace(config=config, clip_spec=spec, chunk_samples=chunks.__getitem__,
                                    video_tokenizer=types.SimpleNamespace(device=torch.device("cpu")))
    shared = chunk_module._ChunkReader(context, [0, 1, 2])
    with caplog.at_level("INFO", logger="nemo_cosmos_tokenizer.data.nvdec"):
        for chunk_id, chunk_samples in chunks.items():
            items = shared.items(chunk_samples)
            for sample in chunk_samples:
                item, want = next(items), read_sample(sample, spec, "pyav")
                assert item.sample.index == sample.index
                assert (item.failure and item.failure.reason) == (want.failure and want.failure.reason), sample.id
                assert all(np.array_equal(np.asarray(a), b) for a, b in zip(item.clips, want.clips)), sample.id
        shared.finish()
    assert len(made) == 1 and sum(made[0].counts.values()) == len(samples) and made[0].probe_threads == 2
    assert "nvdec threads' time: probe" in caplog.text and "the consumer waited" in caplog.text
    assert made[0].seconds["decode"] > 0 and made[0].consumer_wait >= 0


def test_probes_run_in_their_own_threads_ahead_of_the_decoders(media_dir, monkeypatch):
    """PyAV's probe (CPU work) runs in the probe threads, the decoder sessions only in the decode threads, so a
    decoder thread never waits on a probe of its own; the clips are those of reading one sample at a time."""
    import threading

    from nemo_cosmos_tokenizer.data import nvdec as nvdec_module

    opened, decoded = [], []
    real_open, real_decode = nvdec_module.pyav_open, NvdecReader._decode

    def spy_open(*args, **kwargs):
        opened.append(threading.current_thread().name)
        return real_open(*args, **kwargs)

    def spy_decode(self, *args, **kwargs):
        decoded.append(threading.current_thread().name)
        return real_decode(self, *args, **kwargs)

    monkeypatch.setattr(nvdec_module, "pyav_open", spy_open)
    monkeypatch.setattr(NvdecReader, "_decode", spy_decode)
    samples = [s for s in read_manifest(media_dir / "captions.jsonl").samples if s.path.endswith(".mp4")][:6]
    spec = ClipSpec(num_frames=1, height=32, width=48, temporal_compression=8, spatial_compression=2)
    reader = NvdecReader(spec, "cpu", threads=2, probe_threads=3, decoder_module=FAKE_NVC)
    got = list(reader.iter_samples(samples))
    assert opened and all(name.startswith("nvdec-probe") for name in opened)
    assert decoded and all(name.startswith("nvdec_") for name in decoded), decoded
    one_by_one = NvdecReader(spec, "cpu", threads=1, decoder_module=FAKE_NVC)
    for item, sample in zip(got, samples):
        want = one_by_one.read(sample)
        assert (item.failure and item.failure.reason) == (want.failure and want.failure.reason)
        assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(item.clips, want.clips)), sample.id
