"""Typed, frozen configuration of one Cosmos tokenizer network.

A :class:`TokenizerConfig` holds everything the builder needs to assemble the
encoder, decoder and quantizer of one of the four families:

* ``CI`` continuous image, ``DI`` discrete image (2D networks, GroupNorm(32));
* ``CV`` causal continuous video, ``DV`` causal discrete video (factorized
  causal 3D networks, per-frame GroupNorm(1)).

Released models are rows of these configs (see :mod:`nemo_cosmos_tokenizer.registry`).
Reference constructor arguments (the ``kwargs`` of NVIDIA's classes) convert with
:meth:`TokenizerConfig.from_cosmos_kwargs` / :meth:`TokenizerConfig.to_cosmos_kwargs`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping

FAMILIES = ("CI", "DI", "CV", "DV")

#: FSQ levels of every released discrete model: 8*8*8*5*5*5 = 64,000 codes.
DEFAULT_FSQ_LEVELS: tuple[int, ...] = (8, 8, 8, 5, 5, 5)

# Reference kwargs we accept but that carry no information for the released
# architecture (checked against fixed values in ``from_cosmos_kwargs``).
_FIXED_COSMOS_KWARGS: dict[str, Any] = {
    "dropout": 0.0,
    "z_factor": 1,
    "patch_method": "haar",
    "num_groups": 1,
    "legacy_mode": False,
}


def _is_power_of_two(value: int) -> bool:
    return value >= 1 and (value & (value - 1)) == 0


def frame_count_error(num_frames: int, temporal_compression: int) -> str | None:
    """Why a clip of ``num_frames`` frames does not fit a tokenizer of temporal factor ``t`` (it takes ``1 + k*t``
    frames), naming the nearest counts that do; ``None`` when it fits. One rule for the builder's clips and the
    commands' early checks (no torch needed)."""
    t = temporal_compression
    if num_frames >= 1 and (num_frames - 1) % t == 0:
        return None
    lower = 1 + max(num_frames - 1, 0) // t * t
    return (f"num_frames must be 1 + k*{t} for this tokenizer (1, {1 + t}, {1 + 2 * t}, ...), got {num_frames}; "
            f"use {lower} or {lower + t}")


def resolution_error(height: int, width: int, spatial_compression: int) -> str | None:
    """Why ``height`` x ``width`` frames do not fit a tokenizer of spatial factor ``s`` (multiples of ``s``), naming
    the nearest size that does; ``None`` when they fit."""
    s = spatial_compression
    if height >= s and width >= s and height % s == 0 and width % s == 0:
        return None
    fix = f"{max(s, round(height / s) * s)}x{max(s, round(width / s) * s)}"
    return (f"resolution {height}x{width} must be made of multiples of the tokenizer's spatial compression {s}; "
            f"use e.g. {fix}")


@dataclass(frozen=True)
class TokenizerConfig:
    """Architecture of one Cosmos tokenizer (validated on creation).

    Shapes, with ``p = patch_size``, ``s = spatial_compression``,
    ``t = temporal_compression``:

    * image in ``[B, 3, H, W]`` -> latent ``[B, C, H/s, W/s]``;
    * video in ``[B, 3, 1 + k*t, H, W]`` -> latent ``[B, C, 1 + k, H/s, W/s]``;
    * ``C = latent_channels`` (continuous) or ``len(levels)`` FSQ code channels
      (discrete), whose indices drop the channel axis.
    """

    family: str
    """One of ``CI``, ``DI``, ``CV``, ``DV``: (C)ontinuous/(D)iscrete, (I)mage/(V)ideo."""

    spatial_compression: int
    """Down-sampling factor of H and W (8 or 16 in released models)."""

    temporal_compression: int = 1
    """Down-sampling factor of time for video (4 or 8); 1 for images."""

    patch_size: int = 4
    """Haar wavelet patch size (4, or 2 for the LowRes models). Part of the compression."""

    channels: int = 128
    """Base width of the networks."""

    channels_mult: tuple[int, ...] = (2, 4, 4)
    """Width multiplier of each resolution level; its length is the number of levels."""

    num_res_blocks: int = 2
    """Residual blocks per encoder level (the decoder has one more per level)."""

    z_channels: int = 16
    """Channels at the encoder output / decoder input, before ``quant_conv``."""

    latent_channels: int = 16
    """Continuous models: channels of the latent after ``quant_conv``. Ignored for discrete ones."""

    levels: tuple[int, ...] = ()
    """Discrete models: FSQ levels per code channel (``(8, 8, 8, 5, 5, 5)`` for all released ones)."""

    in_channels: int = 3
    out_channels: int = 3

    resolution: int = 1024
    """Nominal resolution the reference compares with ``attn_resolutions`` to place attention in levels."""

    attn_resolutions: tuple[int, ...] = (32,)
    """Nominal resolutions that get attention inside a level (never hit by released models)."""

    def __post_init__(self) -> None:
        # Normalise sequences given as lists (YAML, JSON) to tuples so the config stays hashable.
        for name in ("channels_mult", "levels", "attn_resolutions"):
            value = getattr(self, name)
            if not isinstance(value, tuple):
                object.__setattr__(self, name, tuple(int(v) for v in value))
        if self.family not in FAMILIES:
            raise ValueError(f"family must be one of {FAMILIES}, got {self.family!r}")
        if not _is_power_of_two(self.patch_size) or self.patch_size < 2:
            raise ValueError(f"patch_size must be a power of two >= 2, got {self.patch_size}")
        if not _is_power_of_two(self.spatial_compression) or self.spatial_compression < self.patch_size:
            raise ValueError(
                f"spatial_compression must be a power of two >= patch_size ({self.patch_size}), "
                f"got {self.spatial_compression}"
            )
        if not self.channels_mult:
            raise ValueError("channels_mult must name at least one level")
        if self.num_spatial_downs > self.num_levels:
            raise ValueError(
                f"spatial_compression {self.spatial_compression} with patch_size {self.patch_size} needs "
                f"{self.num_spatial_downs} down-samplings but channels_mult has only {self.num_levels} levels; "
                "add levels to channels_mult or lower the compression"
            )
        if self.is_video:
            if not _is_power_of_two(self.temporal_compression) or self.temporal_compression < self.patch_size:
                raise ValueError(
                    f"temporal_compression must be a power of two >= patch_size ({self.patch_size}) for video, "
                    f"got {self.temporal_compression}"
                )
            # Video levels down-sample after every level but the last.
            if max(self.num_spatial_downs, self.num_temporal_downs) > self.num_levels - 1:
                raise ValueError(
                    f"a video network with {self.num_levels} levels can down-sample at most "
                    f"{self.num_levels - 1} times; add levels to channels_mult"
                )
        elif self.temporal_compression != 1:
            raise ValueError(f"image families take temporal_compression=1, got {self.temporal_compression}")
        if self.is_discrete:
            if not self.levels:
                raise ValueError("discrete families need FSQ levels, e.g. levels=(8, 8, 8, 5, 5, 5)")
            if any(level < 2 for level in self.levels):
                raise ValueError(f"every FSQ level must be >= 2, got {self.levels}")
        elif self.levels:
            raise ValueError(f"continuous family {self.family} takes no FSQ levels, got {self.levels}")
        norm_groups = 32 if not self.is_video else 1
        widths = {self.channels * m for m in (1, *self.channels_mult)}
        bad = sorted(w for w in widths if w % norm_groups)
        if bad:
            raise ValueError(
                f"image networks use GroupNorm(32): widths {bad} (channels x channels_mult) are not multiples of 32; "
                "use a multiple of 32 for channels"
            )
        if self.attention_levels_encoder or self.attention_levels_decoder:
            raise ValueError(
                "attn_resolutions would place attention inside resolution levels "
                f"(encoder levels {self.attention_levels_encoder}, decoder levels {self.attention_levels_decoder}); "
                "only mid-block attention is implemented, as in every released model"
            )

    # ----------------------------------------------------------------- derived
    @property
    def is_video(self) -> bool:
        return self.family in ("CV", "DV")

    @property
    def is_discrete(self) -> bool:
        return self.family in ("DI", "DV")

    @property
    def num_levels(self) -> int:
        return len(self.channels_mult)

    @property
    def num_spatial_downs(self) -> int:
        """Down-samplings of H, W inside the network (the patcher does the rest)."""
        return int(math.log2(self.spatial_compression // self.patch_size))

    @property
    def num_temporal_downs(self) -> int:
        """Down-samplings of T inside the network (video only)."""
        if not self.is_video:
            return 0
        return int(math.log2(self.temporal_compression // self.patch_size))

    @property
    def embedding_dim(self) -> int:
        """Channels of the tensor ``quant_conv`` produces: FSQ code channels or latent channels."""
        return len(self.levels) if self.is_discrete else self.latent_channels

    @property
    def compression_label(self) -> str:
        """``"TxSxS"`` for video, ``"SxS"`` for images (e.g. ``"8x16x16"``, ``"8x8"``), as in the released names."""
        s = self.spatial_compression
        return f"{self.temporal_compression}x{s}x{s}" if self.is_video else f"{s}x{s}"

    @property
    def codebook_size(self) -> int:
        """Number of FSQ codes (64,000 for the released levels); 0 for continuous models."""
        return math.prod(self.levels) if self.is_discrete else 0

    @property
    def attention_levels_encoder(self) -> tuple[int, ...]:
        """Encoder levels whose nominal resolution is in ``attn_resolutions`` (reference rule)."""
        levels = []
        res = self.resolution // self.patch_size
        for i in range(self.num_levels):
            if res in self.attn_resolutions:
                levels.append(i)
            if self._encoder_level_downsamples(i):
                res //= 2
        return tuple(levels)

    @property
    def attention_levels_decoder(self) -> tuple[int, ...]:
        """Decoder levels whose nominal resolution is in ``attn_resolutions`` (reference rule)."""
        levels = []
        res = (self.resolution // self.patch_size) // 2 ** (self.num_levels - 1)
        for i in reversed(range(self.num_levels)):
            if res in self.attn_resolutions:
                levels.append(i)
            if i != 0:
                res *= 2
        return tuple(levels)

    def _encoder_level_downsamples(self, level: int) -> bool:
        # 2D encoders only have a downsample module where they down-sample; 3D encoders
        # have one (possibly an identity) after every level but the last.
        if self.is_video:
            return level < self.num_levels - 1
        return level < self.num_spatial_downs

    def latent_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Latent shape (continuous) or index shape (discrete) for an input shape.

        ``input_shape`` is ``(B, 3, H, W)`` for images or ``(B, 3, T, H, W)`` for video.
        Raises ``ValueError`` when the frame count or size does not fit the model.
        """
        self.check_input_shape(input_shape)
        b = input_shape[0]
        h, w = input_shape[-2] // self.spatial_compression, input_shape[-1] // self.spatial_compression
        spatial = (h, w)
        if self.is_video:
            spatial = (1 + (input_shape[2] - 1) // self.temporal_compression, h, w)
        if self.is_discrete:
            return (b, *spatial)
        return (b, self.latent_channels, *spatial)

    def check_input_shape(self, input_shape: tuple[int, ...]) -> None:
        """Raise a ``ValueError`` naming the fix if ``input_shape`` cannot be encoded exactly."""
        ndim = 5 if self.is_video else 4
        layout = "B x 3 x T x H x W" if self.is_video else "B x 3 x H x W"
        if len(input_shape) != ndim:
            raise ValueError(f"{self.family} models take {layout} input, got shape {tuple(input_shape)}")
        if input_shape[1] != self.in_channels:
            raise ValueError(f"expected {self.in_channels} input channels (RGB), got {input_shape[1]}")
        h, w = input_shape[-2], input_shape[-1]
        s = self.spatial_compression
        if h % s or w % s:
            raise ValueError(
                f"height and width must be multiples of the spatial compression {s}, got {h}x{w}; "
                f"pad or crop to {-(-h // s) * s}x{-(-w // s) * s} (the inference API pads for you)"
            )
        if self.is_video:
            frames, t = input_shape[2], self.temporal_compression
            if frames < 1 or (frames - 1) % t:
                lower = 1 + (frames - 1) // t * t
                raise ValueError(
                    f"a {self.family} model with temporal compression {t} needs 1 + k*{t} frames "
                    f"(1, {1 + t}, {1 + 2 * t}, ...), got {frames}; use {lower} or {lower + t} frames "
                    "(the inference API pads by repeating the last frame)"
                )

    # ------------------------------------------------------------ conversions
    @classmethod
    def from_cosmos_kwargs(cls, kwargs: Mapping[str, Any]) -> "TokenizerConfig":
        """Build from the keyword arguments of NVIDIA's reference tokenizer classes.

        Accepts the dicts of ``cosmos1/models/tokenizer/networks/configs.py`` (and the
        ``kwargs`` of ``../shared/conformance/*/config.json``). Arguments that would need
        code paths no released model uses (``patch_method="rearrange"``, ``z_factor != 1``,
        ``num_groups != 1``, ``legacy_mode=True``, dropout) are refused.
        """
        kwargs = dict(kwargs)
        family = kwargs.get("name")
        if family not in FAMILIES:
            raise ValueError(f"kwargs['name'] must be one of {FAMILIES} (the family), got {family!r}")
        for key, expected in _FIXED_COSMOS_KWARGS.items():
            if key in kwargs and kwargs[key] != expected:
                raise ValueError(f"unsupported reference argument {key}={kwargs[key]!r}; released models use {expected!r}")
        video = family in ("CV", "DV")
        body = "FACTORIZED" if video else "Default"
        for key in ("encoder", "decoder"):
            if kwargs.get(key, body) != body:
                raise ValueError(f"only {body} {family} {key}s are implemented, got {kwargs[key]!r}")
        discrete = family in ("DI", "DV")
        if discrete:
            quantizer = kwargs.get("quantizer", "FSQ")
            if quantizer != "FSQ":
                raise ValueError(f"only the FSQ quantizer is implemented, got {quantizer!r}")
            levels = tuple(kwargs.get("levels", DEFAULT_FSQ_LEVELS))
            if "embedding_dim" in kwargs and kwargs["embedding_dim"] != len(levels):
                raise ValueError(f"embedding_dim {kwargs['embedding_dim']} must equal len(levels)={len(levels)}")
        elif kwargs.get("formulation", "AE") != "AE":
            raise ValueError(f"only the AE formulation is implemented, got {kwargs['formulation']!r}")
        return cls(
            family=family,
            spatial_compression=int(kwargs["spatial_compression"]),
            temporal_compression=int(kwargs.get("temporal_compression", 1)) if video else 1,
            patch_size=int(kwargs.get("patch_size", 4)),
            channels=int(kwargs.get("channels", 128)),
            channels_mult=tuple(kwargs.get("channels_mult", (2, 4, 4))),
            num_res_blocks=int(kwargs.get("num_res_blocks", 2)),
            z_channels=int(kwargs.get("z_channels", 16)),
            latent_channels=16 if discrete else int(kwargs.get("latent_channels", 16)),
            levels=levels if discrete else (),
            in_channels=int(kwargs.get("in_channels", 3)),
            out_channels=int(kwargs.get("out_channels", 3)),
            resolution=int(kwargs.get("resolution", 1024)),
            attn_resolutions=tuple(kwargs.get("attn_resolutions", (32,))),
        )

    def to_cosmos_kwargs(self) -> dict[str, Any]:
        """The reference constructor arguments of this config (inverse of :meth:`from_cosmos_kwargs`)."""
        kwargs: dict[str, Any] = {
            "attn_resolutions": list(self.attn_resolutions),
            "channels": self.channels,
            "channels_mult": list(self.channels_mult),
            "dropout": 0.0,
            "in_channels": self.in_channels,
            "num_res_blocks": self.num_res_blocks,
            "out_channels": self.out_channels,
            "resolution": self.resolution,
            "patch_size": self.patch_size,
            "patch_method": "haar",
            "z_channels": self.z_channels,
            "z_factor": 1,
            "spatial_compression": self.spatial_compression,
            "name": self.family,
            "encoder": "FACTORIZED" if self.is_video else "Default",
            "decoder": "FACTORIZED" if self.is_video else "Default",
        }
        if self.is_video:
            kwargs.update(num_groups=1, legacy_mode=False, temporal_compression=self.temporal_compression)
        if self.is_discrete:
            kwargs.update(quantizer="FSQ", embedding_dim=len(self.levels), levels=list(self.levels))
        else:
            kwargs.update(latent_channels=self.latent_channels, formulation="AE")
        return kwargs

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML-friendly dict of the fields (lists for tuples)."""
        out = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TokenizerConfig":
        """Inverse of :meth:`to_dict`; unknown keys raise a ``TypeError`` naming them."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise TypeError(f"unknown TokenizerConfig fields {unknown}; known fields: {sorted(known)}")
        return cls(**dict(data))

    def replace(self, **changes: Any) -> "TokenizerConfig":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)
