"""NVIDIA's Cosmos-1.0-Autoregressive post-training data (``--layout cosmos_ar``): reading, preprocessing, layout.

What NVIDIA's ``prepare_dataset.py`` (cosmos1 ``autoregressive/nemo/post_training``) does to one video, step by
step, so that a build with ``layout="cosmos_ar"`` writes the documents it writes given the same frames and weights:

1. read every frame of the first video stream as RGB uint8 ``[T, h, w, 3]`` (``torchvision.io.read_video``:
   PyAV, ``rgb24``, in presentation order, no rotation metadata applied; a decoding error keeps the frames read
   before it);
2. ``float() / 255 * 2 - 1`` in float32;
3. the first ``num_frames`` frames (33), or all of them followed by the last one repeated up to ``num_frames``;
4. ``r = max(W / w, H / h)``, resize to ``(ceil(r * h), ceil(r * w))`` with torchvision's tensor ``resize``:
   bilinear, antialiased, ``align_corners=False``, on the float frames (no rounding to uint8);
5. centre crop to ``(H, W)`` (640 x 1024 by default) with torchvision's offsets ``int(round((h' - H) / 2))``
   (Python's round: halves go to the even neighbour);
6. encode ``[1, 3, T, H, W]``; the document is the FSQ indices flattened in ``T, H, W`` order, uint16, and nothing
   else (no text, no special tokens, no end of document).

Every document of a build therefore has the same length, ``T' * H' * W'`` (12,800 for DV8x16x16 at 33 x 640 x
1024), recorded in the sidecar as ``document_length``.

The build's defaults for this layout are NVIDIA's too (:data:`NVIDIA_SETTINGS`): the encoder runs in bfloat16
(their ``DiscreteVideoFSQJITTokenizer`` has ``is_bf16=True``), also on a CPU, one video per call, 250 videos per
chunk (their ``CHUNK_SIZE``), and the chunks are laid out as their folders (``<prefix>/.bin`` for one chunk,
``<prefix>/<k>/.bin`` otherwise). Explicit settings win; :func:`nvidia_differences` names what then differs, in
the log and in the sidecar (``nvidia.differences``).
"""

from __future__ import annotations

import dataclasses
import io
import math
import os
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import torch

from .manifest import Sample
from ..media.clips import ClipSpec
from ..media.failures import MediaError
from .video import SampleClips

__all__ = [
    "COSMOS_AR",
    "NVIDIA_SETTINGS",
    "nvidia_differences",
    "CosmosARLayout",
    "encode_unit_range",
    "preprocess_frames",
    "read_cosmos_ar_sample",
    "read_frames",
]

COSMOS_AR = "cosmos_ar"
#: NVIDIA's defaults (``prepare_dataset.py``: ``--num_context_frames 33 --height 640 --width 1024``).
DEFAULT_NUM_FRAMES = 33
DEFAULT_RESOLUTION = (640, 1024)
#: What NVIDIA's ``prepare_dataset.py`` does beyond the frames, and so the build's defaults for ``cosmos_ar``:
#: bfloat16 encoding (``is_bf16=True``, on the GPU they require), one video per encoder call, ``CHUNK_SIZE = 250``
#: videos per folder, the folders ``<out>/<k>/`` (``<out>/`` for a single chunk).
NVIDIA_SETTINGS = {"dtype": "bfloat16", "batch_size": 1, "chunk_size": 250, "nvidia_folders": True, "fast": False}


def nvidia_differences(settings: Mapping[str, Any]) -> list[str]:
    """The settings of ``settings`` (``dtype``, ``batch_size``, ``chunk_size``, ``nvidia_folders``, ``fast``; the
    resolved ones) that differ from NVIDIA's (:data:`NVIDIA_SETTINGS`), each with what it changes; empty: a build
    NVIDIA's scripts would have written, given the same frames, weights and GPU arithmetic."""
    effects = {
        "dtype": "tokens (another rounding of every activation)",
        "batch_size": "tokens can change (bf16 kernels may round a batch differently)",
        "chunk_size": "which videos share a folder, and so megatron-core's per-folder splits",
        "nvidia_folders": "no <prefix>/ folders for NVIDIA's general.py",
        "fast": "tokens (the compiled path rounds differently in bf16)",
    }
    out = []
    for name, expected in NVIDIA_SETTINGS.items():
        value = settings.get(name)
        if name == "dtype":
            value = str(value).removeprefix("torch.")
        if value != expected:
            out.append(f"{name}={value!r} (NVIDIA: {expected!r}): {effects[name]}")
    return out


@dataclass(frozen=True)
class CosmosARLayout:
    """The ``cosmos_ar`` token layout: a document is a clip's raw FSQ indices in ``T, H, W`` order, nothing else.

    Ids are the tokenizer's indices ``[0, codebook_size)`` (64,000 for the DV models), so ``vocab_size`` is the
    codebook size; there is no end-of-document or padding id (NVIDIA's trainer gets document boundaries from the
    index file and every document has the same length).
    """

    codebook_size: int
    grid: tuple[int, int, int]
    """``(T', H', W')`` of every document."""
    preset: str = COSMOS_AR

    def __post_init__(self) -> None:
        if self.preset != COSMOS_AR:
            raise ValueError(f"CosmosARLayout preset must be {COSMOS_AR!r}, got {self.preset!r}")
        object.__setattr__(self, "grid", tuple(int(v) for v in self.grid))

    @property
    def vocab_size(self) -> int:
        return self.codebook_size

    @property
    def document_length(self) -> int:
        t, h, w = self.grid
        return t * h * w

    @property
    def dtype(self) -> type:
        return np.uint16 if self.codebook_size <= np.iinfo(np.uint16).max + 1 else np.int32

    eod_id = None
    pad_id = None

    def encode_clip(self, text_tokenizer: Any, text: str | None, grid: np.ndarray) -> Iterator[np.ndarray]:
        """The one document of a clip: ``grid`` ``[T', H', W']`` flattened (caption and text tokenizer unused)."""
        if tuple(grid.shape) != self.grid:
            raise ValueError(f"cosmos_ar documents are {self.grid} grids, got {tuple(grid.shape)}")
        yield np.ascontiguousarray(grid, dtype=np.int64).reshape(-1)  # [T' * H' * W'] in T, H, W order

    def to_dict(self) -> dict[str, Any]:
        return {"preset": self.preset, "codebook_size": self.codebook_size, "grid": list(self.grid),
                "document_length": self.document_length, "vocab_size": self.vocab_size,
                "dtype": np.dtype(self.dtype).name}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "CosmosARLayout":
        return cls(codebook_size=int(data["codebook_size"]), grid=tuple(data["grid"]))


# ---------------------------------------------------------------------------------------------- reading
def read_frames(path: str | os.PathLike | io.BytesIO, max_frames: int) -> np.ndarray:
    """The first ``max_frames`` frames of the first video stream, RGB uint8 ``[T, h, w, 3]`` (``T >= 1``), read as
    ``torchvision.io.read_video`` reads them (PyAV, ``rgb24``, rotation metadata not applied). A decoding error
    after the first frame ends the video there (as torchvision does); raises :class:`MediaError` otherwise."""
    import av

    frames: list[np.ndarray] = []
    try:
        with av.open(path if isinstance(path, io.BytesIO) else str(path)) as container:
            if not container.streams.video:
                raise MediaError("no_video_stream", "the file holds no video stream")
            stream = container.streams.video[0]
            try:
                for frame in container.decode(stream):
                    frames.append(frame.to_ndarray(format="rgb24"))
                    if len(frames) == max_frames:
                        break
            except av.error.FFmpegError:
                if not frames:
                    raise
    except MediaError:
        raise
    except Exception as err:  # noqa: BLE001 - PyAV's errors, reported per sample
        raise MediaError("unreadable", f"pyav: {str(err).splitlines()[-1] if str(err) else type(err).__name__}") from err
    if not frames:
        raise MediaError("unreadable", "no frame could be decoded")
    return np.stack(frames)  # [T, h, w, 3]


def preprocess_frames(frames: np.ndarray | torch.Tensor, num_frames: int, height: int, width: int) -> torch.Tensor:
    """uint8 ``[T, h, w, 3]`` -> float32 ``[3, num_frames, height, width]`` in [-1, 1], as NVIDIA's
    ``read_input_videos`` (steps 2-5 of the module docstring)."""
    video = torch.as_tensor(np.asarray(frames))  # [T, h, w, 3] uint8
    video = video.float() / 255.0
    video = video * 2 - 1
    if video.shape[0] < num_frames:  # repeat the last frame
        video = torch.cat([video, video[-1:].repeat(num_frames - video.shape[0], 1, 1, 1)], dim=0)
    video = video[:num_frames].permute(0, 3, 1, 2)  # [T, 3, h, w]
    h, w = video.shape[-2:]
    ratio = max(width / w, height / h)
    size = (int(math.ceil(ratio * h)), int(math.ceil(ratio * w)))
    if size != (h, w):  # torchvision's resize returns its input unchanged at the same size
        video = torch.nn.functional.interpolate(video, size=size, mode="bilinear", align_corners=False,
                                                antialias=True)  # [T, 3, h', w']
    top = int(round((size[0] - height) / 2.0))
    left = int(round((size[1] - width) / 2.0))
    video = video[..., top : top + height, left : left + width]  # [T, 3, H, W]
    return video.transpose(0, 1).contiguous()  # [3, T, H, W]


def read_cosmos_ar_sample(sample: Sample, spec: ClipSpec, backend: str = "pyav", storage=None) -> SampleClips:
    """One clip of a sample for ``layout="cosmos_ar"``: float32 ``[3, T, H, W]`` in [-1, 1] (see the module
    docstring), or the reason it failed. The caption is not needed; ``start``/``end`` of the manifest are not
    applied (NVIDIA reads each file from its first frame). Never raises for bad media."""
    try:
        from .sources.media import load_media

        media = load_media(sample, storage)  # a local path, or the bytes of a tar member / remote object
        frames = read_frames(media if isinstance(media, str) else io.BytesIO(media), spec.num_frames)
        clip = preprocess_frames(frames, spec.num_frames, spec.height, spec.width).numpy()
        return SampleClips(sample, [clip], [list(range(min(len(frames), spec.num_frames)))], backend="pyav")
    except MediaError as err:
        return SampleClips(sample, failure=err)


# --------------------------------------------------------------------------------------------- encoding
@torch.no_grad()
def encode_unit_range(tokenizer: Any, clips: Sequence[torch.Tensor]) -> torch.Tensor:
    """float ``[3, T, H, W]`` clips in [-1, 1] -> int32 indices ``[B, T', H', W']`` on the tokenizer's device (cast to
    its compute dtype there, as NVIDIA's tokenizer casts its input)."""
    x = torch.stack([torch.as_tensor(c) for c in clips]).to(tokenizer.device)  # [B, 3, T, H, W]
    return tokenizer.inference.encode(x.to(tokenizer.dtype))[0].to(torch.int32)


def check_config(config: Any) -> None:
    """Refuse settings that ``layout="cosmos_ar"`` cannot honour, naming the fix (called by ``BuildConfig``)."""
    wrong = {
        "template": (config.template != "caption_first", "there is no caption in a cosmos_ar document"),
        "fps": (config.fps is not None, "NVIDIA takes the first frames at the source rate"),
        "stride": (config.stride is not None, "NVIDIA takes consecutive frames"),
        "clips_per_video": (config.clips_per_video != 1, "one document per video"),
        "short_videos": (config.short_videos != "skip", "short videos are always padded with their last frame"),
        "resize_mode": (config.resize_mode != "crop", "NVIDIA resizes to cover and centre-crops"),
        "video_backend": (config.video_backend not in ("auto", "pyav"), "frames are read with PyAV as torchvision does"),
        "temporal_mode": (config.temporal_mode != "windows", "each clip is encoded in one call"),
    }
    for name, (bad, why) in wrong.items():
        if bad:
            default = {f.name: f.default for f in dataclasses.fields(config)}[name]
            raise ValueError(f"layout cosmos_ar does not take {name}={getattr(config, name)!r} ({why}); "
                             f"leave --{name.replace('_', '-')} at its default ({default!r})")
