"""Reading media: demux, CPU decoders (decord, PyAV), the NVDEC decoder, colour conversion, resize, clip planning,
images. Used by the dataset builder (:mod:`nemo_cosmos_tokenizer.data`), evaluation and the encode / reconstruct
commands (:mod:`nemo_cosmos_tokenizer.media_files`); it imports none of them.

Modules: :mod:`.failures` (:class:`MediaError` and its reason codes), :mod:`.clips` (:class:`ClipSpec`, frame ranges
and clip plans), :mod:`.images` (images as sRGB), :mod:`.decode` (opening videos with decord or PyAV, frames by
index), :mod:`.resize` (cover + crop / fit + pad, antialiased bilinear), :mod:`.yuv` (FFmpeg's YUV 4:2:0 -> RGB
arithmetic in torch), :mod:`.nvdec` (PyNvVideoCodec: which streams NVDEC takes, decoder sessions, sequential
decode of frame runs), :mod:`.fused` (one GPU kernel from NV12 surfaces to resized RGB clips, Triton).

Heavy optional packages (decord, PyAV, Pillow, PyNvVideoCodec, Triton) are imported only when used.
"""

from .clips import ClipSpec, frame_range, plan_clips
from .failures import FAILURE_REASONS, MediaError

__all__ = ["FAILURE_REASONS", "ClipSpec", "MediaError", "frame_range", "plan_clips"]
