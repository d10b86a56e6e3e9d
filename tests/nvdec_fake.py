"""A stand-in for PyNvVideoCodec on machines without NVDEC (CI): FFmpeg's decoded planes as NV12 surfaces, which is
what NVDEC returns (checked on the GPU by the CUDA tests of tests/data/test_nvdec.py)."""

from __future__ import annotations

import io
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
