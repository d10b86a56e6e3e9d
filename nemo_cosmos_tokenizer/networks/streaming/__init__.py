"""Exact streaming encode and decode of arbitrarily long videos (CV and DV models) in bounded memory.

Every operation of the video networks is causal in time: causal convolutions that replicate frame 0, per-frame
norms, per-frame spatial attention and causal temporal attention. So a clip can be fed chunk by chunk, each layer
keeping only what it needs from the previous chunk, and the result is the result of encoding the whole clip at
once (not the 17-frame windows of the reference, each restarting with its own replicated first frame). There is
no second walk of the network: a stream calls the model's own forward with a
:class:`~nemo_cosmos_tokenizer.modules.cache.StreamCache`, and each stateful module keeps what it needs in it:

* every causal conv keeps its last ``kt - 1`` input frames (the stride-2 temporal conv of a down-sampler keeps
  the stride phase: whatever input frame its next output window starts at);
* the Haar patcher repeats frame 0, and the unpatcher drops the repeated frames, in the first chunk only; the
  temporal up-sampler drops its first frame in the first chunk only;
* the causal temporal attention of the mid block keeps the keys and values of earlier latent frames.

Chunk sizes: the encoder takes ``1 + k*t`` frames first (``t`` = temporal compression, ``k >= 0``), then any
positive multiple of ``t`` frames per chunk, and returns the latent frames each chunk completes (``1 + k``, then
``m`` for ``m*t`` frames). The decoder takes any positive number of latent frames per chunk and returns
``1 + (n-1)*t`` frames for the first chunk, ``n*t`` afterwards. Concatenated outputs equal
``model.encode`` / ``model.decode`` of the whole clip (float32: up to kernel rounding, ~1e-6; FSQ indices equal).

**Maximum context** (``max_context_frames=N``, default ``None`` = unlimited): the key/value cache of the temporal
attention is the only state that grows with the clip (``2 * C * h * w`` values per latent frame, e.g. 29 MB per
latent frame for a 720p CV8x8x8 model in bf16). With ``N`` set, latent frame ``i`` attends to latent frames
``i-N+1 .. i`` only (a sliding window, independent of the chunking) and memory is bounded. This is the one place
where streamed results can differ from whole-clip encoding: they are equal when the clip has at most ``N`` latent
frames (``1 + (N-1)*t`` input frames), and the first ``N`` latent frames are always equal.

**Spatial tiling** (``tiling=SpatialTiling(...)``, off by default; :mod:`.tiling`) splits very large frames into
overlapping tiles, each streamed with its own cache, and blends the overlaps. It is **not exact**.

**Fast path**: a :class:`~nemo_cosmos_tokenizer.fast.FastCosmosTokenizer` streams the same way (its layers take
the same cache), within the fast path's tolerance of the plain result.

Streaming is for inference: the caches are detached, so no gradient flows from one chunk into earlier ones.

Example::

    enc = StreamingEncoder(model)                       # CV or DV CosmosTokenizer (or its fast.optimize())
    latents = [enc.encode_chunk(video[:, :, :17])[0]]   # 1 + 2*8 frames first
    for start in range(17, video.shape[2], 16):         # then 16 at a time
        latents.append(enc.encode_chunk(video[:, :, start:start + 16])[0])
    # == model.encode(video)[0] when concatenated along dim 2
    latent, = stream_encode(model, video, chunk_frames=16)   # the same in one call (also takes an iterable)
"""

from ...modules.cache import StreamCache
from .calls import iter_decode, iter_encode, stream_decode, stream_encode
from .streams import StreamingDecoder, StreamingEncoder
from .tiling import SpatialTiling

__all__ = [
    "SpatialTiling",
    "StreamCache",
    "StreamingDecoder",
    "StreamingEncoder",
    "iter_decode",
    "iter_encode",
    "stream_decode",
    "stream_encode",
]
