"""The discrete video (or image) tokenizer the dataset builder runs: uint8 clips in, FSQ index grids out.

Everything that loads a model goes through :func:`load_video_tokenizer`, which resolves its argument with the
resolver every command uses (:func:`nemo_cosmos_tokenizer.hub.sources.resolve_tokenizer_source`) and takes

* a built-in name (no download): ``tiny-random-dv8x16x16`` (video) or ``tiny-random-di8x8`` (images), reduced-width
  DV8x16x16 / DI8x8 architectures with deterministic seeded random weights. Their tokens exercise the whole
  pipeline and the Megatron format, but they carry **no visual meaning**; use a released model for real data;
* a released name or alias (``Cosmos-1.0-Tokenizer-DV8x16x16``, ``nvidia/...``, ``Cosmos-Tokenizer-DV4x8x8``),
  downloaded once into the Hugging Face cache (only the files needed);
* a local directory: our safetensors format (``config.json`` + ``model.safetensors``) or a folder of NVIDIA's
  ``.jit`` files (the architecture comes from a ``config.json``, a released name in the path, or the weights), or
  a single ``.jit`` file.

Only discrete families (DV, DI) give tokens. An image tokenizer (DI) encodes every frame of a clip on its own.
"""

from __future__ import annotations

import hashlib
import os
from typing import Sequence

import numpy as np
import torch

from ..config import TokenizerConfig
from ..devices import default_dtype, resolve_device, resolve_dtype
from ..registry import BUILTIN_MODELS, get_builtin_spec

#: Built-in tokenizers (name -> architecture): the rows of :data:`nemo_cosmos_tokenizer.registry.BUILTIN_MODELS`.
BUILTIN_TOKENIZERS: dict[str, TokenizerConfig] = {name: spec.config for name, spec in BUILTIN_MODELS.items()}
DEFAULT_TOKENIZER = "tiny-random-dv8x16x16"


def is_builtin_tokenizer(name: str) -> bool:
    return get_builtin_spec(name) is not None


def build_builtin_network(name: str):
    """The network of a built-in tokenizer (float32, CPU), weights from a fixed seed (see :mod:`..hub.sources`)."""
    from ..hub.sources import build_builtin_network as build

    return build(name)


def _as_clips(clips: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Check uint8 ``[B, T, H, W, 3]`` clips; a tensor view of them."""
    pixels = torch.as_tensor(clips)
    if pixels.dtype != torch.uint8 or pixels.ndim != 5 or pixels.shape[-1] != 3:
        raise ValueError(f"expected uint8 [B, T, H, W, 3] clips, got {pixels.dtype} {tuple(pixels.shape)}")
    return pixels


def state_dict_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over names, dtypes, shapes and bytes of ``tensors`` in key order."""
    digest = hashlib.sha256()
    for name, tensor in tensors.items():
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}\n".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


class _PinnedStaging:
    """Ring of page-locked host buffers for batches on their way to the GPU.

    A batch is stacked straight into a pinned buffer (one host copy) and copied to the GPU asynchronously (a copy
    from pageable memory would block the host until it is done); a buffer is reused only once the copy that read it
    has finished (its event), so with three slots the host runs up to two batches ahead of the GPU.
    """

    def __init__(self, slots: int = 3) -> None:
        self.buffers: list[torch.Tensor | None] = [None] * slots
        self.events: list[torch.cuda.Event | None] = [None] * slots
        self.next = 0

    def to_device(self, clips: Sequence[torch.Tensor], device: torch.device) -> torch.Tensor:
        if device.type != "cuda":
            return torch.stack(list(clips)).to(device)
        i = self.next
        self.next = (i + 1) % len(self.buffers)
        shape = (len(clips), *clips[0].shape)
        if self.buffers[i] is None or tuple(self.buffers[i].shape) != shape:
            self.buffers[i] = torch.empty(shape, dtype=torch.uint8, pin_memory=True)
        elif self.events[i] is not None:
            self.events[i].synchronize()
        torch.stack(list(clips), out=self.buffers[i])
        out = self.buffers[i].to(device, non_blocking=True)
        self.events[i] = torch.cuda.Event()
        self.events[i].record()
        return out


class VideoTokenizer:
    """A loaded discrete tokenizer for dataset building (wraps the inference API's tokenizer object).

    ``encode(uint8 [B, T, H, W, 3]) -> int32 [B, T', H', W']`` and, when decoder weights were loaded,
    ``decode(int32 [B, T', H', W']) -> uint8 [B, T, H, W, 3]``.
    """

    def __init__(self, inference, name: str) -> None:
        config = inference.config
        if config is None or not config.is_discrete:
            family = config.family if config is not None else "unknown"
            raise ValueError(
                f"{name} is a {family} tokenizer; tokens need a discrete one (DV for video, DI for images), "
                "e.g. Cosmos-1.0-Tokenizer-DV8x16x16"
            )
        self.inference = inference
        self.name = name
        self.config: TokenizerConfig = config
        self._checksum: str | None = None

    @property
    def device(self) -> torch.device:
        return self.inference.device

    @property
    def dtype(self) -> torch.dtype:
        return self.inference.dtype

    @property
    def codebook_size(self) -> int:
        return self.config.codebook_size

    @property
    def temporal_compression(self) -> int:
        return self.config.temporal_compression  # 1 for image families (TokenizerConfig checks it)

    @property
    def spatial_compression(self) -> int:
        return self.config.spatial_compression

    @property
    def checksum(self) -> str:
        """sha256 of the encoder weights as run (names, dtypes, shapes, bytes), whatever file they came from."""
        if self._checksum is None:
            self._checksum = state_dict_sha256(self.inference.network.cosmos_state_dict("encoder"))
        return self._checksum

    def grid_shape(self, num_frames: int, height: int, width: int) -> tuple[int, int, int]:
        """``(T', H', W')`` of a clip."""
        s = self.spatial_compression
        t = 1 + (num_frames - 1) // self.temporal_compression if self.config.is_video else num_frames
        return t, height // s, width // s

    def describe(self) -> dict[str, object]:
        """What the sidecar records about this tokenizer."""
        return {
            "name": self.name,
            "family": self.config.family,
            "config": self.config.to_dict(),
            "codebook_size": self.codebook_size,
            "encoder_sha256": self.checksum,
            "dtype": str(self.dtype).removeprefix("torch."),
        }

    def use_fast(self, **options) -> None:
        """Swap the network for :func:`nemo_cosmos_tokenizer.fast.optimize`'s (``--fast``), in place, once.

        The weight checksum is taken first (the fast module holds the same weights in another layout). The fast
        path checks its first encode against the eager network and falls back to it by itself. On CPU it runs
        uncompiled unless ``compile`` is given.
        """
        from ..fast import FastCosmosTokenizer, optimize

        if isinstance(self.inference.network, FastCosmosTokenizer):
            return
        if self.inference.network is None:
            raise ValueError(f"{self.name}: the fast path needs the PyTorch network (not NVIDIA's .jit modules)")
        self.checksum  # noqa: B018  (hash of the plain weights, before the swap)
        options.setdefault("compile", self.device.type == "cuda")
        self.inference.network = optimize(self.inference.network, **options)

    @property
    def is_fast(self) -> bool:
        from ..fast import FastCosmosTokenizer

        return isinstance(self.inference.network, FastCosmosTokenizer)

    @torch.no_grad()
    def encode(self, clips: np.ndarray | torch.Tensor) -> np.ndarray:
        """uint8 ``[B, T, H, W, 3]`` clips -> int32 FSQ indices ``[B, T', H', W']`` (numpy, CPU)."""
        return self.encode_on_device(clips).cpu().numpy()

    @torch.no_grad()
    def encode_on_device(self, clips: np.ndarray | torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        """:meth:`encode` without waiting for the result: int32 indices ``[B, T', H', W']`` on the model's device.

        ``clips`` may also be a list of uint8 ``[T, H, W, 3]`` tensors, stacked straight into a pinned staging buffer
        (or, when they are on the GPU already, as the nvdec backend delivers them, stacked there).
        On CUDA nothing here synchronises: the copy to the GPU is asynchronous and the indices stay there, so the
        caller can read and stack the next batch while the GPU encodes this one (the builder reads them back once
        per chunk).
        """
        from ..inference.preprocess import to_unit_range

        if isinstance(clips, (list, tuple)):
            clips = [_as_clips(c[None])[0] for c in clips]
            if any(clip.device.type != "cpu" for clip in clips):  # decoded on the GPU (nvdec backend): no staging
                pixels = torch.stack([clip.to(self.device) for clip in clips])
            else:
                pixels = self._staging.to_device(clips, self.device)
        else:
            pixels = _as_clips(clips)
            pixels = self._staging.to_device(list(pixels), self.device) if self.device.type == "cuda" else pixels
        b, t = pixels.shape[:2]
        if self.config.is_video:
            indices = self.inference.encode(to_unit_range(pixels, self.dtype))[0]  # [B, T', H', W']
        else:
            flat = pixels.reshape(b * t, *pixels.shape[2:])  # frames as images [B*T, H, W, 3]
            indices = self.inference.encode(to_unit_range(flat, self.dtype))[0]  # [B*T, H', W']
            indices = indices.reshape(b, t, *indices.shape[1:])
        return indices.to(torch.int32)

    @property
    def _staging(self) -> "_PinnedStaging":
        if self.__dict__.get("_staging_ring") is None:
            self._staging_ring = _PinnedStaging()
        return self._staging_ring

    @torch.no_grad()
    def encode_streaming(self, clips: np.ndarray | torch.Tensor, chunk_frames: int = 16) -> np.ndarray:
        """:meth:`encode` with each clip as one causal sequence streamed through the encoder (``--temporal-mode
        whole``): ``1 + chunk_frames`` frames first, then ``chunk_frames`` at a time (rounded to the temporal
        compression), so memory does not grow with the clip length; the tokens are those of encoding the clip at
        once (equal in float32). Image tokenizers fall back to :meth:`encode`."""
        if not self.config.is_video:
            return self.encode(clips)
        pixels = _as_clips(clips)
        t = self.temporal_compression
        chunk = max(t, chunk_frames // t * t)
        indices = self.inference.encode_uint8(pixels, mode="streaming", chunk_frames=chunk)[0]  # [B, T', H', W']
        return indices.to(torch.int32).numpy()

    @torch.no_grad()
    def decode(self, grids: np.ndarray | torch.Tensor) -> np.ndarray:
        """int FSQ indices ``[B, T', H', W']`` -> uint8 ``[B, T, H, W, 3]`` (needs decoder weights)."""
        from ..inference.preprocess import to_uint8

        indices = torch.as_tensor(np.asarray(grids), dtype=torch.int32).to(self.device)
        b, t = indices.shape[:2]
        if self.config.is_video:
            return to_uint8(self.inference.decode(indices)).cpu().numpy()  # [B, T, H, W, 3]
        frames = to_uint8(self.inference.decode(indices.reshape(b * t, *indices.shape[2:])))  # [B*T, H, W, 3]
        return frames.reshape(b, t, *frames.shape[1:]).cpu().numpy()


def _resolve_device_dtype(device, dtype) -> tuple[torch.device, torch.dtype]:
    dev = resolve_device(None if device in (None, "auto") else device)
    dt = default_dtype(dev) if dtype in (None, "auto") else resolve_dtype(dtype)
    return dev, dt


def load_video_tokenizer(
    name_or_path: str | os.PathLike,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    *,
    parts: Sequence[str] = ("encoder",),
    local_files_only: bool = False,
) -> VideoTokenizer:
    """Load a discrete tokenizer for the dataset builder (or the inspector).

    Args:
        name_or_path: a built-in name (:data:`BUILTIN_TOKENIZERS`), a released name or alias, a Hub repo id, or a
            local directory (safetensors format or NVIDIA ``.jit`` files).
        device: ``"cuda"``, ``"cpu"``, ... (``None``/``"auto"``: CUDA when available).
        dtype: compute dtype (``None``/``"auto"``: bfloat16 on CUDA, float32 on CPU). FSQ rounds in float32.
        parts: ``("encoder",)`` to tokenize, ``("decoder",)`` to reconstruct, or both.
        local_files_only: never download (use the Hugging Face cache only).
    """
    from ..hub.sources import resolve_tokenizer_source
    from ..inference.from_source import load_tokenizer

    source = resolve_tokenizer_source(name_or_path)  # the one resolver every command uses
    dev, dt = _resolve_device_dtype(device, dtype)
    inference = load_tokenizer(source, parts=parts, device=dev, dtype=dt, mode=None if source.kind == "builtin"
                               else "torch", local_files_only=local_files_only)
    return VideoTokenizer(inference, inference.name or source.value)


def wrap_network(network, name: str, device=None, dtype=None, parts: Sequence[str] = ("encoder", "decoder")) -> VideoTokenizer:
    """A :class:`VideoTokenizer` around an already built and loaded ``CosmosTokenizer`` (tests, notebooks)."""
    from ..inference.tokenizers import tokenizer_class

    dev, dt = _resolve_device_dtype(device, dtype)
    cls = tokenizer_class(network.config.family)
    return VideoTokenizer(cls.from_network(network, parts=tuple(parts), device=dev, dtype=dt, name=name), name)
