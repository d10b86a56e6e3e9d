"""NVDEC pieces below the builder's reader (nemo_cosmos_tokenizer.media.nvdec): which streams NVDEC takes, the one
probe (frame counts from the MP4/MOV index), decoder sessions decoding runs of frames, PyAV's NV12 for a failed
decode. PyNvVideoCodec is replaced by a stand-in over PyAV on machines without NVDEC (tests/nvdec_fake.py)."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch

from nemo_cosmos_tokenizer.media.decode import MediaError, pyav_open
from nemo_cosmos_tokenizer.media.nvdec import NvdecSession, frame_runs, probe_stream, pyav_nv12

av = pytest.importorskip("av")

from nvdec_fake import FAKE_NVC, FakeSimpleDecoder  # noqa: E402


def test_probe_names_what_nvdec_cannot_take(media_dir):
    def problem(name):
        return probe_stream(str(media_dir / name)).nvdec_problem()

    assert problem("cockatoo_hevc.mp4") is None
    assert "pixel format yuv420p10le" in problem("pancake_hevc_main10.mp4")
    assert "pixel format yuv444p" in problem("cockatoo_yuv444_mp3.mp4")
    assert "odd size" in problem("dog_odd_638x359.webm")
    assert "codec mjpeg" in problem("pancake_mjpeg_pcm.avi")
    assert "h264 in matroska" in problem("pancake_h264_opus.mkv") and problem("pancake_vp9_opus.webm") is None
    assert probe_stream(str(media_dir / "keyboard_rot90_3frames.mov")).rotation == -90


def test_one_open_describes_the_frames_as_decoding_does(media_dir):
    """``pyav_open(describe=True)`` reads format, matrix, range and rotation without decoding where PyAV allows
    (>= 19: display matrix in ``coded_side_data``): the values must be those of the first decoded frame."""
    checked = 0
    for path in sorted(media_dir.iterdir()):
        try:
            source = pyav_open(str(path), describe=True)
        except MediaError:
            continue
        with av.open(str(path)) as container:
            frame = next(container.decode(container.streams[source._handle[1]]))
        want = {"pix_fmt": frame.format.name, "width": frame.width, "height": frame.height,
                "colorspace": int(frame.colorspace), "color_range": int(frame.color_range),
                "rotation": int(frame.rotation or 0)}
        assert {k: source.description[k] for k in want} == want, path.name
        checked += 1
    assert checked >= 20




def test_frame_runs_merge_small_gaps():
    assert frame_runs([0, 1, 2, 3]) == [(0, 4)]
    assert frame_runs([0, 2, 4, 40, 41], max_gap=2) == [(0, 5), (40, 42)]
    # 9 after 5 skips 3 frames (6, 7, 8): decoded through from max_gap 3 on
    assert frame_runs([5, 9], max_gap=2) == [(5, 6), (9, 10)] and frame_runs([5, 9], max_gap=3) == [(5, 10)]
    assert frame_runs([]) == []


def test_index_count_is_the_demux_count(media_dir):
    """The NVDEC probe takes MP4/MOV frame counts from the index (no demux): on every such file of the shared media
    that opens, the same count and description as demuxing; other containers are still demuxed."""
    checked, by_index = 0, 0
    for path in sorted(media_dir.iterdir()):
        data = path.read_bytes()  # as the reader gets tar members (FFmpeg names some formats by path otherwise)
        try:
            demuxed = pyav_open(data, describe=True)
        except MediaError as err:  # a broken file fails the same way (a cut-off index end is demuxed in full)
            with pytest.raises(MediaError) as again:
                pyav_open(data, describe=True, counting="index")
            assert again.value.reason == err.reason, path.name
            continue
        indexed = pyav_open(data, describe=True, counting="index")
        assert (indexed.num_frames, indexed.fps, indexed.description) == (
            demuxed.num_frames, demuxed.fps, demuxed.description), path.name
        checked += "mp4" in demuxed.description["container"]
        by_index += indexed.counted == "index"
        assert indexed.counted == "demux" or "mp4" in demuxed.description["container"], path.name
    assert checked >= 10 and by_index >= checked - 2, (checked, by_index)  # the index served nearly all of them
    with pytest.raises(MediaError, match="header promises"):
        pyav_open((media_dir / "broken_truncated.mp4").read_bytes(), counting="index")


def _all_surfaces(path) -> list[torch.Tensor]:
    return FakeSimpleDecoder(str(path)).surfaces


def test_session_decodes_runs_sequentially_and_seeks_only_between_runs(media_dir):
    path = media_dir / "cockatoo_1080p_1.5s.mp4"
    every = _all_surfaces(path)
    assert len(every) >= 30
    made = []

    class Counting(FakeSimpleDecoder):
        def __init__(self, *args, **kwargs):
            made.append(self)
            super().__init__(*args, **kwargs)

    nvc = types.SimpleNamespace(SimpleDecoder=Counting, OutputColorType=FAKE_NVC.OutputColorType)
    session = NvdecSession(nvc, torch.device("cpu"), None, max_gap=4, memory_input="bytes")
    wanted = [0, 1, 2, 4, 6, 20, 21, 29]
    nv12 = session.decode(str(path), wanted)  # [N, 3H/2, W]
    assert torch.equal(nv12, torch.stack([every[i] for i in wanted]))
    assert made[0].seeks == 2  # runs [0, 7), [20, 22), [29, 30): no seek to the first, one to each of the others
    # the same decoder, pointed at the file's bytes (a tar member): reconfigured, from frame 0 again
    nv12 = session.decode(path.read_bytes(), [3, 4, 5])
    assert torch.equal(nv12, torch.stack(every[3:6])) and made[0].seeks == 1
    assert (session.created, session.reconfigured, len(made)) == (1, 1, 1)


def test_session_switches_to_a_file_when_the_decoder_takes_paths_only(media_dir):
    """A PyNvVideoCodec whose reconfigure_decoder takes paths only (pybind11 raises TypeError for bytes): the sample
    is retried through a temporary file (removed after), and so are the next ones, without a failure."""
    import glob
    import os

    class PathsOnly(FakeSimpleDecoder):
        def reconfigure_decoder(self, source):
            if isinstance(source, bytes) and hasattr(self, "surfaces"):
                raise TypeError("reconfigure_decoder(): incompatible function arguments")
            super().reconfigure_decoder(source)

    path = media_dir / "plant_tiny_64x48.mp4"
    every = _all_surfaces(path)
    session = NvdecSession(types.SimpleNamespace(SimpleDecoder=PathsOnly, OutputColorType=FAKE_NVC.OutputColorType),
                           torch.device("cpu"), None, memory_input="bytes")
    before = set(glob.glob("/dev/shm/nct-nvdec-*") + glob.glob(os.path.join("/tmp", "nct-nvdec-*")))
    for _ in range(3):  # made from bytes, then reconfigured: refused once, then files
        assert torch.equal(session.decode(path.read_bytes(), [0, 1]), torch.stack(every[:2]))
    assert not session.from_memory and (session.created, session.reconfigured) == (1, 2)
    assert set(glob.glob("/dev/shm/nct-nvdec-*") + glob.glob(os.path.join("/tmp", "nct-nvdec-*"))) == before


def test_index_access_gives_the_same_surfaces(media_dir):
    path = media_dir / "cockatoo_hevc.mp4"
    every = _all_surfaces(path)
    session = NvdecSession(FAKE_NVC, torch.device("cpu"), None, access="index")
    assert torch.equal(session.decode(str(path), [1, 5, 30]), torch.stack([every[i] for i in (1, 5, 30)]))
    with pytest.raises(ValueError, match="frame access"):
        NvdecSession(FAKE_NVC, torch.device("cpu"), None, access="random")


def test_session_reports_a_short_stream():
    class Short(FakeSimpleDecoder):
        def __init__(self, *args, **kwargs):
            self.surfaces, self.position, self.seeks = [torch.zeros(6, 4, dtype=torch.uint8)] * 3, 0, 0

    session = NvdecSession(types.SimpleNamespace(SimpleDecoder=Short, OutputColorType=FAKE_NVC.OutputColorType),
                           torch.device("cpu"), None)
    with pytest.raises(RuntimeError, match="NVDEC stopped at frame 3"):
        session.decode("any.mp4", [1, 2, 3, 4])


def test_pyav_nv12_is_what_nvdec_gives(media_dir):
    """A stream NVDEC failed on is decoded by PyAV into NV12: the stand-in's surfaces (FFmpeg's planes, which the
    CUDA tests found equal to NVDEC's)."""
    for name in ("keyboard_rot90_3frames.mov", "cockatoo_hevc.mp4"):
        path = media_dir / name
        source = pyav_open(path.read_bytes(), describe=True)
        every = _all_surfaces(path)
        wanted = [0, 2] if len(every) > 2 else [0]
        assert np.array_equal(pyav_nv12(source, wanted), torch.stack([every[i] for i in wanted]).numpy()), name


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA and NVDEC")
@pytest.mark.parametrize("max_gap,access", [(0, "runs"), (32, "runs"), (0, "index")])
def test_real_session_gives_pyav_planes_with_and_without_seeks(media_dir, max_gap, access):
    """NVDEC sessions on the GPU: runs of frames decoded after ``seek_to_index`` (max_gap 0: every gap is a seek) or
    straight through, one session over files of several codecs and sizes (reconfigured, from bytes and from paths):
    the NV12 planes PyAV decodes, bit for bit."""
    from nemo_cosmos_tokenizer.media.nvdec import require_nvdec, stream_info

    nvc = require_nvdec()
    stream = torch.cuda.Stream()
    session = NvdecSession(nvc, torch.device("cuda", torch.cuda.current_device()), stream, max_gap=max_gap,
                           access=access)
    names = ["cockatoo_1080p_1.5s.mp4", "cockatoo_hevc.mp4", "dog_fireplace_vfr_aac.mp4", "windowsill_plant_aac.mp4",
             "keyboard_rot90_3frames.mov", "pancake_vp9_opus.webm", "cockatoo_1080p_1.5s.mp4"]
    for k, name in enumerate(names):
        path = media_dir / name
        source = pyav_open(str(path), describe=True)
        assert stream_info(source).nvdec_problem() is None, name
        n = source.num_frames
        wanted = sorted({0, 1, 2, n // 3, n // 3 + 1, n // 2 + 3, n - 2, n - 1} & set(range(n)))
        media = path.read_bytes() if k % 2 else str(path)
        with torch.cuda.stream(stream):
            got = session.decode(media, wanted).cpu().numpy()
        assert np.array_equal(got, pyav_nv12(source, wanted)), (name, wanted)
    print(f"sessions: created {session.created}, reconfigured {session.reconfigured}, from memory {session.from_memory}")
