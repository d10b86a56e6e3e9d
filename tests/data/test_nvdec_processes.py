"""The nvdec backend's reader in processes of its own (nemo_cosmos_tokenizer.data.nvdec_processes).

The processes run the in-process reader (nemo_cosmos_tokenizer.data.nvdec.NvdecReader), so every sample must come
out exactly as that reader (in threads) gives it: order, failures and their reasons, backends, frame plans, clips.
On CPU, PyNvVideoCodec is replaced by the stand-in of tests/nvdec_fake.py (imported in each spawned process by its
"module:attribute" name); ``nvdec_fake:CRASHING_NVC`` makes a process die (``os._exit``, as PyNvVideoCodec's C++
abort does) on a chosen file, once or every time, for the restarts.
"""

from __future__ import annotations

import multiprocessing
import types

import numpy as np
import pytest
import torch

from nemo_cosmos_tokenizer.data import nvdec_processes
from nemo_cosmos_tokenizer.data.manifest import read_manifest
from nemo_cosmos_tokenizer.data.nvdec import NvdecReader
from nemo_cosmos_tokenizer.data.nvdec_processes import DEATHS_BEFORE_PYAV, NvdecProcessReader
from nemo_cosmos_tokenizer.media.clips import ClipSpec

av = pytest.importorskip("av")

import nvdec_fake  # noqa: E402
from nvdec_fake import FAKE_NVC  # noqa: E402

FAKE = "nvdec_fake:FAKE_NVC"
CRASHING = "nvdec_fake:CRASHING_NVC"
SPEC = ClipSpec(num_frames=9, clips_per_video=2, short_videos="shorten", height=32, width=48,
                temporal_compression=8, spatial_compression=2)
LOGGER = "nemo_cosmos_tokenizer.data.nvdec_processes"
#: Cheap samples of the shared media (the stand-in decodes whole files): videos the stand-in decodes (H.264, HEVC,
#: AV1, VP9, rotated, one frame, grey), videos read on the CPU (odd size, Matroska H.264, 10-bit), an image and a
#: broken file. The first is the one the crashing stand-in kills its process on: sample 0 of the sequence, so the
#: first one its process (process 0) reads.
CHEAP = ["keyboard_rot90_3frames.mov", "cockatoo_hevc.mp4", "cockatoo_av1.mp4", "dog_odd_638x359.webm",
         "keyboard_rot0_3frames.mov", "nasa_single_frame.mp4", "pancake_vp9_opus.webm", "pancake_gray_h264.mp4",
         "plant_tiny_64x48.mp4", "pancake_h264_opus.mkv", "cat_tiny_17x13.png", "broken_truncated.mp4"]
DOOMED = "keyboard_rot90"


@pytest.fixture(scope="module")
def samples(shared_media_dir):
    """Every sample of the shared media's captions.jsonl (the real files: skipped without them)."""
    return read_manifest(shared_media_dir / "captions.jsonl").samples


@pytest.fixture(scope="module")
def cheap(samples):
    by_id = {s.id: s for s in samples}
    return [by_id[name] for name in CHEAP]


@pytest.fixture(scope="module")
def thread_reader(samples):
    """The in-process reader (threads) after its pass over every sample."""
    reader = NvdecReader(SPEC, "cpu", threads=2, decoder_module=FAKE_NVC)
    reader.items = {item.sample.index: item for item in reader.iter_samples(samples)}
    return reader


@pytest.fixture(scope="module")
def threads_read(thread_reader):
    """The in-process reader's item of every sample, by sample index."""
    return thread_reader.items


@pytest.fixture
def fast_poll(monkeypatch):
    """A dead process is noticed within 0.1 s instead of a second (the same code path, sooner)."""
    monkeypatch.setattr(nvdec_processes, "POLL_SECONDS", 0.1)


@pytest.fixture
def crash(monkeypatch, tmp_path):
    """``crash(times=None, gate=None)``: the crashing stand-in kills its process when it is pointed at the
    :data:`DOOMED` file, at most ``times`` times (``None``: every time); returns the file counting the deaths."""

    def arm(times: int | None = None, gate=None):
        count = tmp_path / "deaths"
        count.write_text("0")
        monkeypatch.setenv(nvdec_fake.CRASH_ON, DOOMED)
        monkeypatch.setenv(nvdec_fake.CRASH_COUNT, str(count))
        if times is not None:
            monkeypatch.setenv(nvdec_fake.CRASH_TIMES, str(times))
        if gate is not None:
            monkeypatch.setenv(nvdec_fake.CRASH_GATE, str(gate))
        return count

    return arm


def _host(clip) -> np.ndarray:
    return clip.cpu().numpy() if isinstance(clip, torch.Tensor) else np.asarray(clip)


def _assert_as_threads(got, samples, threads_read, refused=()):
    """``got`` is the thread reader's items of ``samples``, in order; samples in ``refused`` (kept from the decoder)
    were decoded by PyAV, into the same clips."""
    assert [item.sample.index for item in got] == [s.index for s in samples]
    for item in got:
        want = threads_read[item.sample.index]
        name = item.sample.id
        assert (item.failure and item.failure.reason) == (want.failure and want.failure.reason), name
        assert item.backend == ("pyav" if name in refused and want.backend == "nvdec" else want.backend), name
        assert item.frame_indices == want.frame_indices, name
        assert len(item.clips) == len(want.clips), name
        for ours, theirs in zip(item.clips, want.clips):
            ours, theirs = _host(ours), _host(theirs)
            assert ours.dtype == theirs.dtype and ours.shape == theirs.shape, name
            assert np.array_equal(ours, theirs), name


def _live_readers() -> list:
    """Reader processes still running (``active_children`` also reaps the ones that ended)."""
    return [p for p in multiprocessing.active_children() if p.name.startswith("nvdec-reader-")]


def _reader(**kwargs) -> NvdecProcessReader:
    kwargs.setdefault("decoder_module", FAKE)
    return NvdecProcessReader(SPEC, "cpu", processes=2, threads=2, probe_threads=2, **kwargs)


# ---------------------------------------------------------------------------------------------- no process dies
def test_processes_give_the_thread_readers_samples(samples, thread_reader, threads_read, caplog):
    """Every sample of the shared media through 2 processes: the thread reader's items, in order, and its counts
    (summed over the processes), logged under the processes' name."""
    reader = NvdecProcessReader(SPEC, "cpu", processes=2, threads=4, decoder_module=FAKE)
    with caplog.at_level("INFO", logger=LOGGER):
        got = list(reader.iter_samples(samples))
    _assert_as_threads(got, samples, threads_read)
    assert reader.counts == thread_reader.counts and reader.counts["nvdec"] > 0 and reader.counts["cpu"] > 0
    assert sum(reader.counts.values()) == sum(thread_reader.counts.values())
    assert reader.refused == thread_reader.refused and reader.restarts == 0
    assert reader.seconds["decode"] > 0 and reader.seconds["probe"] > 0
    assert (f"nvdec (2 processes): {reader.counts['nvdec']} samples decoded on the GPU, {reader.counts['cpu']} read "
            "on the CPU") in caplog.text
    assert "0 processes restarted" in caplog.text and "nvdec processes' threads' time: probe" in caplog.text
    assert reader._procs is None and not _live_readers()  # not started with start(): stopped after the pass


def test_work_is_divided_among_the_processes():
    """threads, decodes and probe threads are totals, divided among the processes (rounded up, at least 1); a
    process is sent more samples than its reader reads ahead; nothing starts before the first pass."""
    reader = NvdecProcessReader(SPEC, "cpu", processes=3, threads=8, max_decodes=4, probe_threads=5,
                                decoder_module=FAKE)
    options = reader.options
    assert (options.threads, options.max_decodes, options.probe_threads) == (3, 2, 2)
    assert reader.ahead == 2 * options.threads + options.probe_threads + 1
    assert reader._procs is None
    assert NvdecProcessReader(SPEC, "cpu", processes=2, threads=1, max_decodes=8, probe_threads=1,
                              decoder_module=FAKE).options.max_decodes == 1  # a process's threads bound its decodes
    with pytest.raises(ValueError, match="processes must be >= 1"):
        NvdecProcessReader(SPEC, "cpu", processes=0, decoder_module=FAKE)
    with pytest.raises(ValueError, match="decodes on the GPU"):
        NvdecProcessReader(SPEC, "cpu", processes=2)


def test_started_processes_serve_several_passes(cheap, threads_read):
    """start(): the same processes read pass after pass (counts add up over the passes, as one reader's do);
    close() stops them."""
    first, second = cheap[:5], cheap[5:]
    thread_reader = NvdecReader(SPEC, "cpu", threads=2, decoder_module=FAKE_NVC)
    for part in (first, second):
        list(thread_reader.iter_samples(part))
    reader = _reader().start()
    try:
        procs = [p.process for p in reader._procs]
        pids = [p.pid for p in procs]
        _assert_as_threads(list(reader.iter_samples(first)), first, threads_read)
        assert [p.process.pid for p in reader._procs] == pids and all(p.is_alive() for p in procs)
        _assert_as_threads(list(reader.iter_samples(second)), second, threads_read)
        assert [p.process.pid for p in reader._procs] == pids and all(p.is_alive() for p in procs)
        assert reader.counts == thread_reader.counts and reader.restarts == 0
    finally:
        reader.close()
    assert not any(p.is_alive() for p in procs) and reader._procs is None
    assert all(p.exitcode == 0 for p in procs)  # told to exit between passes, not terminated


@pytest.mark.parametrize("length", ["all sent", "more to send"])
def test_an_early_stop_leaves_no_process(cheap, length):
    """A consumer that stops after one sample (an error downstream, Ctrl-C) stops the processes of a reader that
    start() did not start: whether or not every sample was already sent to them."""
    # all sent: 4 samples (a process is sent up to reader.ahead = 4), decoded by the stand-in (small messages)
    group = cheap[:3] + cheap[4:5] if length == "all sent" else cheap * 3
    reader = _reader()
    gen = reader.iter_samples(group)
    assert next(gen).sample.index == group[0].index
    procs = [p.process for p in reader._procs]
    assert all(p.is_alive() for p in procs)
    assert all(p.ended for p in reader._procs) == (length == "all sent")
    gen.close()
    assert not any(p.is_alive() for p in procs) and reader._procs is None
    assert not _live_readers()


# ---------------------------------------------------------------------------------------------- processes die
def test_a_process_that_dies_is_restarted(cheap, threads_read, crash, fast_poll, caplog):
    """Process 0 dies once, on its first sample (before it sent anything): a new one is sent its samples again;
    every sample comes out as the thread reader gives it, none kept from the decoder."""
    deaths = crash(times=1)
    reader = _reader(decoder_module=CRASHING)
    with caplog.at_level("INFO", logger=LOGGER):
        got = list(reader.iter_samples(cheap))
    assert deaths.read_text() == "1"
    _assert_as_threads(got, cheap, threads_read)
    assert reader.restarts == 1 and reader.refused == {}
    warnings = [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelname == "WARNING"]
    assert len(warnings) == 1 and "nvdec reader process 0 died (exit code 3)" in warnings[0], warnings
    assert "restarting it (1 of 4 restarts)" in warnings[0] and "PyAV" not in warnings[0]
    assert "1 processes restarted" in caplog.text
    assert not _live_readers()


def test_a_sample_that_kills_its_process_every_time_goes_to_pyav(cheap, threads_read, crash, fast_poll, caplog):
    """A sample unanswered in DEATHS_BEFORE_PYAV deaths of its process is decoded by PyAV there (and so are the
    other samples its process owed at both deaths): the same clips."""
    assert DEATHS_BEFORE_PYAV == 2  # the restarts counted below
    deaths = crash(times=None)
    reader = _reader(decoder_module=CRASHING)
    with caplog.at_level("WARNING", logger=LOGGER):
        got = list(reader.iter_samples(cheap))
    assert deaths.read_text() == str(DEATHS_BEFORE_PYAV)
    assert reader.restarts == DEATHS_BEFORE_PYAV
    doomed = cheap[0].id
    assert reader.deaths[doomed] == DEATHS_BEFORE_PYAV
    assert doomed in reader.refused and f"process died {DEATHS_BEFORE_PYAV} times" in reader.refused[doomed]
    assert all("process died" in why for why in reader.refused.values()), reader.refused
    assert {item.sample.id: item.backend for item in got}[doomed] == "pyav"
    _assert_as_threads(got, cheap, threads_read, refused=reader.refused)
    warnings = [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelname == "WARNING"]
    assert [w.count("died (exit code 3)") for w in warnings] == [1, 1]
    assert [w.count("go to PyAV") for w in warnings] == [0, 1], warnings
    assert not _live_readers()


def test_too_many_deaths_fail_the_read_and_stop_every_process(cheap, crash, fast_poll):
    """After max_restarts restarts the read fails (with what to do: run the build again, fewer decodes), and no
    reader process is left running."""
    crash(times=None)
    reader = _reader(decoder_module=CRASHING, max_restarts=1)
    with pytest.raises(RuntimeError, match="running the build again resumes it") as failed:
        list(reader.iter_samples(cheap))
    assert "--nvdec-decodes" in str(failed.value) and "exit code 3" in str(failed.value)
    assert reader.restarts == 2 and reader._procs is None
    assert not _live_readers()


def test_results_sent_before_a_death_are_still_taken(cheap, threads_read, crash, fast_poll, tmp_path):
    """Process 0 sends results, then dies before the consumer takes them (the usual case: a process is up to
    ``ahead`` samples ahead): a new process, and still every sample as the thread reader gives it.

    The crashing stand-in waits for a gate file before it dies (doomed sample: process 0's third), opened once
    the consumer has taken sample 0 and process 0's next result (sample 2, a tensor from the stand-in) is
    waiting in its queue."""
    gate = tmp_path / "die-now"
    crash(times=1, gate=gate)
    rest = [s for s in cheap if DOOMED not in s.id]
    group = [rest[0], rest[1], rest[3], rest[2], cheap[0]] + rest[4:]  # process 0: positions 0, 2, 4 (doomed)
    assert threads_read[group[2].index].backend == "nvdec"
    reader = _reader(decoder_module=CRASHING)
    gen = reader.iter_samples(group)
    try:
        got = [next(gen)]
        doomed = reader._procs[0]
        assert doomed.results._reader.poll(60), "process 0 sent nothing after sample 0"
        gate.touch()
        doomed.process.join(60)
        assert doomed.process.exitcode == nvdec_fake.CRASH_EXIT_CODE
        got += list(gen)
    finally:
        gen.close()
        reader.close()
    _assert_as_threads(got, group, threads_read)
    assert reader.restarts == 1


# ---------------------------------------------------------------------------------------------- the builder
def test_builder_config_refuses_negative_processes():
    from nemo_cosmos_tokenizer.data.build import BuildConfig

    assert BuildConfig().nvdec_processes == 0
    assert BuildConfig(video_backend="nvdec", nvdec_processes=2).nvdec_processes == 2
    with pytest.raises(ValueError, match="nvdec_processes must be >= 0"):
        BuildConfig(nvdec_processes=-1)


def _recording(monkeypatch) -> list:
    made = []

    def factory(*args, **kwargs):
        made.append(NvdecProcessReader(*args, decoder_module=FAKE, **kwargs))
        return made[-1]

    monkeypatch.setattr(nvdec_processes, "NvdecProcessReader", factory)
    return made


def test_builder_reads_in_processes_when_asked(cheap, threads_read, monkeypatch):
    """_iter_samples(..., nvdec_processes=2) is the process reader's pass: num_workers threads in all."""
    from nemo_cosmos_tokenizer.data.build.chunk import _iter_samples

    made = _recording(monkeypatch)
    group = cheap[:6]
    items = _iter_samples(group, SPEC, "nvdec", 2, torch.device("cpu"), nvdec_processes=2)
    assert len(made) == 1 and made[0]._procs is None  # nothing started before the first item is asked for
    _assert_as_threads(list(items), group, threads_read)
    assert made[0].processes == 2 and made[0].options.threads == 1
    assert sum(made[0].counts.values()) == len(group)
    assert not _live_readers()


def test_the_chunk_reader_passes_the_processes_on(cheap, monkeypatch):
    """The build's shared reader (one pass over every chunk) is the process reader when config.nvdec_processes is
    set (made, not started: nothing is read before the first chunk's items are asked for)."""
    from nemo_cosmos_tokenizer.data.build import chunk as chunk_module

    made = _recording(monkeypatch)
    config = types.SimpleNamespace(video_backend="nvdec", num_workers=4, nvdec_decodes=None, nvdec_resize="exact",
                                   nvdec_probe_threads=2, nvdec_processes=2, storage=lambda: None)
    context = types.SimpleNamespace(config=config, clip_spec=SPEC, chunk_samples={0: cheap[:2]}.__getitem__,
                                    video_tokenizer=types.SimpleNamespace(device=torch.device("cpu")))
    shared = chunk_module._ChunkReader(context, [0])
    try:
        assert len(made) == 1 and made[0].processes == 2 and made[0]._procs is None
        assert (made[0].options.threads, made[0].options.probe_threads) == (2, 1)
    finally:
        shared.close()
    assert made[0]._procs is None and not _live_readers()


# ---------------------------------------------------------------------------------------------- on the GPU
@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA and NVDEC")
def test_real_nvdec_processes_give_the_thread_readers_clips(samples):
    """PyNvVideoCodec in 2 processes, clips handed over by CUDA IPC and copied on a receiving stream: bit for bit
    the in-process reader's clips, in order, on this process's GPU."""
    pytest.importorskip("PyNvVideoCodec")
    want = list(NvdecReader(SPEC, "cuda", threads=4).iter_samples(samples))
    reader = NvdecProcessReader(SPEC, "cuda", processes=2, threads=4)
    got = list(reader.iter_samples(samples))
    assert [g.sample.index for g in got] == [s.index for s in samples]
    assert reader.restarts == 0 and reader.counts["nvdec"] > 0
    for a, b in zip(got, want):
        assert (a.failure and a.failure.reason) == (b.failure and b.failure.reason), a.sample.id
        assert a.backend == b.backend and a.frame_indices == b.frame_indices, a.sample.id
        assert len(a.clips) == len(b.clips), a.sample.id
        for x, y in zip(a.clips, b.clips):
            if isinstance(y, torch.Tensor):
                assert isinstance(x, torch.Tensor) and x.device == y.device, a.sample.id
            x, y = torch.as_tensor(x).cpu(), torch.as_tensor(y).cpu()
            assert x.dtype == y.dtype and torch.equal(x, y), a.sample.id
    assert not _live_readers()
