"""A stand-in for PyNvVideoCodec on machines without NVDEC (CI): FFmpeg's decoded planes as NV12 surfaces, which is
what NVDEC returns (checked on the GPU by the CUDA tests of tests/data/test_nvdec.py)."""

from __future__ import annotations

import io
import os
import time
import types

import numpy as np
import torch


class FakeSimpleDecoder:
    """PyNvVideoCodec.SimpleDecoder's interface over PyAV (a path or the file's bytes): NV12 surfaces [3H/2, W], by
    index or sequentially from a position that ``seek_to_index`` sets and ``reconfigure_decoder`` resets."""

    def __init__(self, source, gpu_id=0, use_device_memory=True, output_color_type=None, cuda_stream=0):
        self.reconfigure_decoder(source)

    def reconfigure_decoder(self, source):
        import av

        opened = io.BytesIO(source) if isinstance(source, bytes) else source
        with av.open(opened) as container:  # raises on broken files, as NVDEC's demuxer does
            self.surfaces = []
            for frame in container.decode(video=0):
                y, u, v = (np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width] for p in frame.planes)
                uv = np.stack([u, v], -1).reshape(u.shape[0], -1)  # interleaved U/V rows
                self.surfaces.append(torch.from_numpy(np.ascontiguousarray(np.concatenate([y, uv]))))
        self.position = 0
        self.seeks = 0

    def get_batch_frames_by_index(self, indices):
        return [self.surfaces[i] for i in indices]

    def seek_to_index(self, index):
        self.position = index
        self.seeks += 1

    def get_batch_frames(self, count):
        batch = self.surfaces[self.position : self.position + count]
        self.position += len(batch)
        return batch


FAKE_NVC = types.SimpleNamespace(SimpleDecoder=FakeSimpleDecoder, OutputColorType=types.SimpleNamespace(NATIVE=0))


#: Environment variables of :data:`CRASHING_NVC` (read when a decoder is pointed at a file, so spawned reader
#: processes, which inherit the environment, see what the test set).
CRASH_ON = "NCT_FAKE_NVDEC_CRASH_ON"
"""The process dies when the decoder is pointed at a file whose name contains this text (unset: never)."""
CRASH_COUNT = "NCT_FAKE_NVDEC_CRASH_COUNT"
"""A file holding the number of deaths so far (missing or empty: 0); incremented before each death."""
CRASH_TIMES = "NCT_FAKE_NVDEC_CRASH_TIMES"
"""The most deaths, counted in :data:`CRASH_COUNT`'s file (unset: every time)."""
CRASH_GATE = "NCT_FAKE_NVDEC_CRASH_GATE"
"""A file whose appearance the doomed decoder waits for before it dies (unset: it dies at once): lets a test put the
process's state (results it already sent, say) where it wants it first."""
CRASH_EXIT_CODE = 3


def _crash_here(source) -> bool:
    target = os.environ.get(CRASH_ON)
    if not target or isinstance(source, bytes) or target not in os.path.basename(str(source)):
        return False
    limit, count_file = os.environ.get(CRASH_TIMES), os.environ.get(CRASH_COUNT)
    deaths = 0
    if count_file and os.path.exists(count_file):
        with open(count_file) as f:
            deaths = int(f.read().strip() or 0)
    if limit is not None and deaths >= int(limit):
        return False
    if count_file:
        with open(count_file, "w") as f:
            f.write(str(deaths + 1))
    return True


class CrashingSimpleDecoder(FakeSimpleDecoder):
    """:class:`FakeSimpleDecoder` whose process dies at once (``os._exit``, as PyNvVideoCodec's C++ abort on NVDEC
    error 208 kills it) when pointed at a file named as :data:`CRASH_ON` says, at most :data:`CRASH_TIMES` times."""

    def reconfigure_decoder(self, source):  # SimpleDecoder(...) comes here too
        if _crash_here(source):
            gate, deadline = os.environ.get(CRASH_GATE), time.monotonic() + 120
            while gate and not os.path.exists(gate) and time.monotonic() < deadline:
                time.sleep(0.01)
            os._exit(CRASH_EXIT_CODE)
        super().reconfigure_decoder(source)


CRASHING_NVC = types.SimpleNamespace(SimpleDecoder=CrashingSimpleDecoder, OutputColorType=FAKE_NVC.OutputColorType)
"""A stand-in for PyNvVideoCodec whose process dies on chosen files (:class:`CrashingSimpleDecoder`): for the reader
processes' restarts (tests/data/test_nvdec_processes.py)."""
