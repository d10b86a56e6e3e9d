"""``CausalVideoTokenizer`` and ``ImageTokenizer``: the inference API of the original Cosmos-Tokenizer README.

Both call styles of that README work unchanged::

    enc = CausalVideoTokenizer(checkpoint_enc="ckpts/Cosmos-0.1-Tokenizer-DV4x8x8/encoder.jit")
    (indices, codes) = enc.encode(x)              # x: [B, 3, T, H, W] in [-1, 1]
    dec = CausalVideoTokenizer(checkpoint_dec="ckpts/Cosmos-0.1-Tokenizer-DV4x8x8/decoder.jit")
    y = dec.decode(indices)

    tok = CausalVideoTokenizer.from_pretrained("Cosmos-0.1-Tokenizer-CV4x8x8")
    (latent,) = tok.encode(x)

Each object wraps either our :class:`~nemo_cosmos_tokenizer.networks.CosmosTokenizer` with the checkpoint's weights
(``mode="torch"``, the default: it reproduces the TorchScript files exactly, and runs on any device and dtype), or
NVIDIA's TorchScript modules as they are (``mode="jit"``). ``device`` and ``dtype`` are chosen once here; inputs are
moved and cast at this boundary, so callers may pass CPU float32 tensors to a CUDA bfloat16 tokenizer.

Layout: :mod:`.loading` (files, released names, built networks -> weights on a device), :mod:`.backends` (native /
jit behind one encode / decode), this module (the tensor and uint8 API and the two public classes).
"""

from __future__ import annotations

import os
from typing import Any, Iterator, Mapping

import numpy as np
import torch

from ..config import TokenizerConfig
from ..devices import resolve_device, resolve_dtype  # noqa: F401  (re-exported: public here before)
from . import preprocess as pp
from .loading import TokenizerLoader, normalise_mode

__all__ = ["CausalVideoTokenizer", "ImageTokenizer", "resolve_device", "resolve_dtype", "tokenizer_class"]

# Alignments the reference uses for every model; only needed when a JIT file's architecture is unknown.
_FALLBACK_SPATIAL_ALIGN = 16
_FALLBACK_TEMPORAL_ALIGN = 8


def _temporal_mode(mode: str) -> str:
    """``"windows"`` (each call encodes its input in one network pass) or ``"streaming"`` (exact chunked encoding)."""
    if mode not in ("windows", "streaming"):
        raise ValueError(f'mode must be "windows" or "streaming", got {mode!r}')
    return mode


class _CosmosInference(TokenizerLoader):
    """Shared implementation; use :class:`CausalVideoTokenizer` or :class:`ImageTokenizer`."""

    def __init__(
        self,
        checkpoint: str | os.PathLike | None = None,
        checkpoint_enc: str | os.PathLike | None = None,
        checkpoint_dec: str | os.PathLike | None = None,
        tokenizer_config: TokenizerConfig | Mapping[str, Any] | str | None = None,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype = "bfloat16",
        mode: str | None = None,
    ) -> None:
        """Load a tokenizer from checkpoint files.

        Args:
            checkpoint: the full model (``autoencoder.jit``), used by :meth:`autoencode`; in native mode it also
                provides the encoder and decoder weights.
            checkpoint_enc: ``encoder.jit`` (enables :meth:`encode`).
            checkpoint_dec: ``decoder.jit`` (enables :meth:`decode`).
                Each of the three may also be a directory: our safetensors format (``config.json`` +
                ``model.safetensors``, all parts) or a folder holding the matching ``.jit`` file.
            tokenizer_config: the architecture (a :class:`TokenizerConfig`, a released name, or NVIDIA's
                reference kwargs dict). Optional: otherwise read from a ``config.json`` next to the files, a
                released name in their path, or matched from the weights' key names and shapes.
            device: ``"cuda"``, ``"cpu"``, ... (default: CUDA when available, else CPU).
            dtype: compute dtype of the network (``"bfloat16"`` default, as the reference; ``"float32"`` for
                exact comparisons). FSQ always rounds in float32. In jit mode the files run in the dtype they
                were traced in (their graphs cast to it), and inputs are cast to that dtype.
            mode: ``"torch"`` (native, our network with the checkpoint's weights) or ``"jit"`` (run the TorchScript
                files as they are, on their traced code paths). Default: native, or jit when the architecture
                cannot be determined.
        """
        super().__init__()
        self._init_empty(device, dtype)
        files = {"autoencoder": checkpoint, "encoder": checkpoint_enc, "decoder": checkpoint_dec}
        files = {part: path for part, path in files.items() if path is not None}
        if not files:
            raise ValueError(
                f"{type(self).__name__} needs checkpoint, checkpoint_enc and/or checkpoint_dec; to download a released "
                f"model use {type(self).__name__}.from_pretrained(name)"
            )
        config = None
        if tokenizer_config is not None:
            from ..hub.resolve import parse_tokenizer_config

            config = parse_tokenizer_config(tokenizer_config)
        self._load_files(files, config, normalise_mode(mode))

    @property
    def is_discrete(self) -> bool:
        if self.config is not None:
            return self.config.is_discrete
        return self.backend.is_discrete()

    @property
    def spatial_multiple(self) -> int:
        """H and W are padded to multiples of this (the model's spatial compression)."""
        return self.config.spatial_compression if self.config is not None else _FALLBACK_SPATIAL_ALIGN

    @property
    def temporal_multiple(self) -> int:
        """Videos are padded to ``1 + k * temporal_multiple`` frames (the model's temporal compression)."""
        return self.config.temporal_compression if self.config is not None else _FALLBACK_TEMPORAL_ALIGN


    # --------------------------------------------------------------------------------------- tensor API
    def _require(self, side: str) -> None:
        if not getattr(self, f"_has_{side}"):
            flag = {"encoder": "checkpoint_enc (from_pretrained: load_encoder=True)",
                    "decoder": "checkpoint_dec (from_pretrained: load_decoder=True)",
                    "autoencoder": "checkpoint (from_pretrained: load_full_model=True)"}[side]
            raise RuntimeError(f"this {type(self).__name__} was loaded without {side} weights; pass {flag}")

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        ndim = 5 if self.FAMILIES[0].endswith("V") else 4
        layout = "B x 3 x T x H x W" if ndim == 5 else "B x 3 x H x W"
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"expected a tensor {layout} in [-1, 1], got {type(x).__name__} (use forward() for uint8 arrays)")
        if x.ndim != ndim:
            raise ValueError(f"{type(self).__name__} takes {layout} input, got shape {tuple(x.shape)}")
        return x.to(device=self.device, dtype=self.dtype)

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Encode ``x`` (``[B, 3, T, H, W]`` video / ``[B, 3, H, W]`` image, values in [-1, 1], any device/dtype).

        Returns ``(latent,)`` for continuous models (``[B, 16, (t), h, w]`` in the tokenizer's dtype) and
        ``(indices, codes)`` for discrete ones (int32 ``[B, (t), h, w]`` and float ``[B, 6, (t), h, w]``), on the
        tokenizer's device. H, W must be multiples of the spatial compression and T ``1 + k * temporal``
        compression; :meth:`forward` pads for you.
        """
        self._require("encoder")
        return self.backend.encode(self._input(x))

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Decode a latent (continuous) or integer indices (discrete) to a reconstruction in about [-1, 1]
        (``[B, 3, (T), H, W]``, not clamped, tokenizer dtype and device)."""
        self._require("decoder")
        if z.is_floating_point():
            z = z.to(device=self.device, dtype=self.dtype)
        else:
            z = z.to(device=self.device)
        return self.backend.decode(z)

    @torch.no_grad()
    def autoencode(self, x: torch.Tensor) -> torch.Tensor:
        """``decode(encode(x)[0])`` (or the full ``autoencoder.jit`` when loaded in jit mode)."""
        out = self.backend.autoencode(self._input(x))
        if out is not None:
            return out
        if not (self._has_encoder and self._has_decoder):
            self._require("autoencoder")
        return self.decode(self.encode(x)[0])

    # ------------------------------------------------------------------------------------- latent statistics
    def _latent_stats(self):
        """The loaded statistics in this tokenizer's dtype (as cosmos-predict1's VAEs hold them), or a clear error."""
        if self.is_discrete:
            raise TypeError(f"{self!r} is discrete: its tokens are integer indices, which are not normalised; "
                            "latent statistics (mean_std.pt) are for continuous models")
        if self.latent_stats is None:
            raise ValueError(
                f"{self!r} has no latent statistics. NVIDIA publishes them (mean_std.pt) for "
                "Cosmos-Tokenize1-CV8x8x8-720p, loaded by from_pretrained; for other files set "
                "tok.latent_stats = nemo_cosmos_tokenizer.inference.latent_stats.LatentStats.load(path, channels)"
            )
        return self.latent_stats.to(self.dtype)

    def normalize_latent(self, latent: torch.Tensor, chunk_latent_frames: int | None = None) -> torch.Tensor:
        """``(latent - mean) / std`` with NVIDIA's ``mean_std.pt``, as cosmos-predict1's diffusion models see latents.

        ``latent``: ``[B, C, t, h, w]`` from :meth:`encode` (any float dtype; the result keeps it). The statistics
        are per channel and per latent frame position: a latent of ``t`` frames is ``t / chunk_latent_frames``
        chunks (default: one chunk of ``t``), each normalised with the statistics of positions
        ``0 .. chunk_latent_frames - 1`` (cosmos-predict1 uses chunks of ``1 + (pixel_chunk_duration - 1) / 8``
        latent frames, 16 for its 121-frame chunks). See :mod:`nemo_cosmos_tokenizer.inference.latent_stats`.
        """
        return self._latent_stats().normalize(latent, chunk_latent_frames)

    def denormalize_latent(self, latent: torch.Tensor, chunk_latent_frames: int | None = None) -> torch.Tensor:
        """``latent * std + mean``: a normalised latent (e.g. a diffusion model's output) back to what
        :meth:`decode` takes. Same arguments as :meth:`normalize_latent`."""
        return self._latent_stats().denormalize(latent, chunk_latent_frames)

    # ---------------------------------------------------------------------------------------- uint8 API
    def _autoencode_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 channel-last pixels already padded -> uint8 reconstruction (same shape), on the CPU."""
        x = pp.to_unit_range(pixels.to(self.device, non_blocking=True), self.dtype)
        return pp.to_uint8(self.autoencode(x)).cpu()

    def __repr__(self) -> str:
        what = self.name or (self.config.family if self.config else "?")
        return f"{type(self).__name__}({what}, mode={self.mode}, device={self.device}, dtype={self.dtype})"


class CausalVideoTokenizer(_CosmosInference):
    """Causal video tokenizer (CV: continuous latents, DV: discrete FSQ indices)."""

    FAMILIES = ("CV", "DV")
    DEFAULT_MODEL = "Cosmos-Tokenizer-DV4x8x8"  # NeMo's default for from_pretrained()

    # ------------------------------------------------------------------------------ exact streaming (long clips)
    def _streaming_network(self, side: str):
        self._require(side)
        if self.network is None:
            raise ValueError('mode="streaming" needs the native network; this tokenizer runs TorchScript files '
                             "(jit mode): use .to_native() first")
        return self.network

    @torch.no_grad()
    def encode(self, x: torch.Tensor, mode: str = "windows", *, chunk_frames: int = 16,
               max_context_frames: int | None = None) -> tuple[torch.Tensor, ...]:
        """Encode ``x`` ``[B, 3, T, H, W]`` in [-1, 1], ``T = 1 + k * temporal_compression`` (see the base class).

        ``mode="windows"`` (default): ``x`` is one window, encoded in one network call. ``mode="streaming"``: ``x``
        is encoded as one causal sequence chunk by chunk (``1 + chunk_frames`` frames, then ``chunk_frames``; each
        chunk is moved to the device only when it is encoded), in memory that does not grow with T, with the result
        of encoding the whole clip at once (:mod:`nemo_cosmos_tokenizer.networks.streaming`; ``max_context_frames``
        bounds the temporal attention, the one place where it can differ). Native mode only.
        """
        if _temporal_mode(mode) == "windows":
            return super().encode(x)
        from ..networks.streaming import stream_encode

        network = self._streaming_network("encoder")
        if not isinstance(x, torch.Tensor) or x.ndim != 5:
            self._input(x)  # raises the layout error
        network.config.check_input_shape(tuple(x.shape))  # before any work: T = 1 + k*t, H, W multiples
        chunks = (self._input(x[:, :, s:s + chunk_frames]) for s in range(0, x.shape[2], chunk_frames))
        return stream_encode(network, chunks, chunk_frames, max_context_frames=max_context_frames)

    @torch.no_grad()
    def decode(self, z: torch.Tensor, mode: str = "windows", *, chunk_latent_frames: int = 2,
               max_context_frames: int | None = None) -> torch.Tensor:
        """Decode a latent (CV) or integer indices (DV) (see the base class).

        ``mode="streaming"`` decodes ``chunk_latent_frames`` latent frames at a time (moved to the device only when
        decoded), in memory that does not grow with the clip, with the result of decoding it at once.
        """
        if _temporal_mode(mode) == "windows":
            return super().decode(z)
        from ..networks.streaming import stream_decode

        network = self._streaming_network("decoder")
        dim = z.ndim - 3  # time: dim 2 of a latent [B, C, t, h, w], dim 1 of indices [B, t, h, w]

        def pieces():
            for s in range(0, z.shape[dim], chunk_latent_frames):
                piece = z.narrow(dim, s, min(chunk_latent_frames, z.shape[dim] - s))
                yield piece.to(device=self.device, dtype=self.dtype if piece.is_floating_point() else None)

        return stream_decode(network, pieces(), chunk_latent_frames, max_context_frames=max_context_frames)

    @torch.no_grad()
    def forward(self, video: np.ndarray, temporal_window: int | None = 17, batch_windows: int = 4) -> np.ndarray:
        """Reconstruct uint8 videos ``[B, T, H, W, 3]`` (numpy, RGB) -> uint8 ``[B, T, H, W, 3]``.

        The clip is cut into ``temporal_window``-frame windows (the last may be shorter; ``None`` = one window),
        each padded to ``1 + k * t`` frames by repeating its last frame and to multiples of the spatial compression
        with black, autoencoded, and cropped back. Up to ``batch_windows`` windows of equal length (times the
        batch size) go through the network per call.
        """
        pixels = pp.as_uint8_array(video, 5, "B x T x H x W x 3")
        batch = pixels.shape[0]
        windows = pp.temporal_windows(pixels.shape[1], temporal_window)
        out = torch.empty_like(pixels)
        for chunk, padded, crop in self._window_batches(pixels, windows, batch_windows):
            recon = pp.crop(self._autoencode_pixels(padded), crop)
            for k, j in enumerate(chunk):
                a, b = windows[j]
                out[:, a:b] = recon[k * batch:(k + 1) * batch, : b - a]
        return out.numpy()

    def _window_batches(
        self, pixels: torch.Tensor, windows: list[tuple[int, int]], batch_windows: int
    ) -> Iterator[tuple[list[int], torch.Tensor, tuple[slice, slice]]]:
        """Batches of up to ``batch_windows`` windows of equal padded length: ``(window indices, pixels, crop)``
        with pixels ``[W*B, T', H', W', 3]`` (each window padded in time, then all padded in space together; window
        ``k`` of the batch is rows ``k*B .. (k+1)*B``) and the ``pad_spatial`` crop back."""
        step = max(1, batch_windows)
        for indices in pp.group_by_length(windows, self.temporal_multiple).values():
            for i in range(0, len(indices), step):
                chunk = indices[i:i + step]
                stacked = torch.cat([pp.pad_frames(pixels[:, windows[j][0]:windows[j][1]], self.temporal_multiple)
                                     for j in chunk])
                padded, crop = pp.pad_spatial(stacked, self.spatial_multiple)
                yield chunk, padded, crop

    @torch.no_grad()
    def encode_uint8(self, video: np.ndarray, temporal_window: int | None = 17,
                     batch_windows: int = 4, mode: str = "windows", *, chunk_frames: int = 16,
                     max_context_frames: int | None = None) -> tuple[torch.Tensor, ...]:
        """Tokenize uint8 videos ``[B, T, H, W, 3]`` window by window (padded as in :meth:`forward`).

        Returns :meth:`encode`'s tuple with the windows concatenated along time, on the CPU: continuous
        ``(latent [B, C, t, h, w],)``, discrete ``(indices [B, t, h, w], codes [B, 6, t, h, w])``, where window ``i``
        of ``n_i`` frames contributes ``1 + ceil((n_i - 1) / temporal_compression)`` latent frames and h, w are the
        padded size over the spatial compression.

        ``mode="streaming"`` ignores ``temporal_window``/``batch_windows``: the whole clip, padded at its end to
        ``1 + k * t`` frames by repeating its last frame, is one causal sequence (``1 + ceil((T - 1) / t)`` latent
        frames), streamed through the encoder in chunks (see :meth:`encode`).
        """
        pixels = pp.as_uint8_array(video, 5, "B x T x H x W x 3")
        if _temporal_mode(mode) == "streaming":
            from ..networks.streaming import stream_encode

            network = self._streaming_network("encoder")
            padded, _ = pp.pad_spatial(pp.pad_frames(pixels, self.temporal_multiple), self.spatial_multiple)
            # [B, T', H, W, 3] uint8 -> [B, 3, n, H, W] in [-1, 1] on the device, one chunk at a time.
            chunks = (pp.to_unit_range(padded[:, s:s + chunk_frames].to(self.device, non_blocking=True), self.dtype)
                      for s in range(0, padded.shape[1], chunk_frames))
            outputs = stream_encode(network, chunks, chunk_frames, max_context_frames=max_context_frames)
            return tuple(o.cpu() for o in outputs)
        batch = pixels.shape[0]
        windows = pp.temporal_windows(pixels.shape[1], temporal_window)
        results: list[tuple[torch.Tensor, ...] | None] = [None] * len(windows)
        for chunk, padded, _ in self._window_batches(pixels, windows, batch_windows):
            x = pp.to_unit_range(padded.to(self.device, non_blocking=True), self.dtype)
            outputs = [o.cpu() for o in self.encode(x)]
            for k, j in enumerate(chunk):
                results[j] = tuple(o[k * batch:(k + 1) * batch] for o in outputs)
        time_dim = [2 if o.ndim == 5 else 1 for o in results[0]]
        return tuple(torch.cat([r[n] for r in results], dim=d) for n, d in enumerate(time_dim))


class ImageTokenizer(_CosmosInference):
    """Image tokenizer (CI: continuous latents, DI: discrete FSQ indices)."""

    FAMILIES = ("CI", "DI")

    @torch.no_grad()
    def forward(self, image: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Reconstruct uint8 images ``[B, H, W, 3]`` (numpy, RGB) -> uint8 ``[B, H, W, 3]``.

        Images are padded with black to multiples of the spatial compression and cropped back; ``batch_size``
        images go through the network per call (default: all).
        """
        pixels = pp.as_uint8_array(image, 4, "B x H x W x 3")
        padded, crop = pp.pad_spatial(pixels, self.spatial_multiple)
        step = batch_size or len(padded)
        recon = torch.cat([self._autoencode_pixels(padded[i:i + step]) for i in range(0, len(padded), step)])
        return pp.crop(recon, crop).contiguous().numpy()

    @torch.no_grad()
    def encode_uint8(self, image: np.ndarray) -> tuple[torch.Tensor, ...]:
        """Tokenize uint8 images ``[B, H, W, 3]`` (padded as in :meth:`forward`); :meth:`encode`'s tuple on the CPU."""
        pixels = pp.as_uint8_array(image, 4, "B x H x W x 3")
        padded, _ = pp.pad_spatial(pixels, self.spatial_multiple)
        x = pp.to_unit_range(padded.to(self.device, non_blocking=True), self.dtype)
        return tuple(o.cpu() for o in self.encode(x))


def tokenizer_class(family: str) -> type[_CosmosInference]:
    """The class that loads ``family``: :class:`CausalVideoTokenizer` (CV, DV) or :class:`ImageTokenizer` (CI, DI)."""
    return CausalVideoTokenizer if family in CausalVideoTokenizer.FAMILIES else ImageTokenizer
