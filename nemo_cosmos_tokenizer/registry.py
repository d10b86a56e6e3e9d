"""The 18 released Cosmos Tokenizer checkpoints, as rows of data.

Each row names a model, its Hugging Face repository and its architecture. A new
release is a new row here, never a new code path. Names resolve with or without
the ``nvidia/`` prefix, case-insensitively, and the legacy ``Cosmos-Tokenizer-XX``
names used by NeMo scripts map to the 0.1 (or, for CV8x8x8/DV8x16x16, 1.0) rows.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from .config import DEFAULT_FSQ_LEVELS, TokenizerConfig
from .networks.checkpoint import PART_FILES  # the one part -> file table (weight layouts live with the networks)
#: Files every released repository holds.
JIT_FILES = tuple(PART_FILES.values())


@dataclass(frozen=True)
class ModelSpec:
    """One released checkpoint."""

    name: str
    """Canonical name, e.g. ``Cosmos-0.1-Tokenizer-DV8x16x16``."""

    config: TokenizerConfig
    """Architecture at real size."""

    @property
    def hub_repo(self) -> str:
        """Hugging Face repository id, e.g. ``nvidia/Cosmos-0.1-Tokenizer-DV8x16x16``."""
        return f"nvidia/{self.name}"

    @property
    def short_name(self) -> str:
        """The part after ``Tokenizer-``, e.g. ``DV8x16x16`` or ``CI8x8-LowRes``."""
        return self.name.split("Tokenizer-", 1)[1]


def _row(version: str, family: str, spatial: int, temporal: int = 1, *, patch: int = 4,
         mult: tuple[int, ...] = (2, 4, 4), z_channels: int | None = None) -> ModelSpec:
    discrete = family.startswith("D")
    video = family.endswith("V")
    suffix = "-LowRes" if patch == 2 else ""
    if z_channels is None:
        # Discrete image models widen the bottleneck to 256; every other released model uses 16.
        z_channels = 256 if (discrete and not video) else 16
    config = TokenizerConfig(
        family=family,
        spatial_compression=spatial,
        temporal_compression=temporal,
        patch_size=patch,
        channels=128,
        channels_mult=mult,
        num_res_blocks=2,
        z_channels=z_channels,
        latent_channels=16,
        levels=DEFAULT_FSQ_LEVELS if discrete else (),
    )
    return ModelSpec(name=f"Cosmos-{version}-Tokenizer-{family}{config.compression_label}{suffix}", config=config)


_ROWS: tuple[ModelSpec, ...] = (
    _row("0.1", "CI", 8),
    _row("0.1", "CI", 16),
    _row("0.1", "CV", 8, 4, mult=(2, 4)),  # cosmos1 builds CV4x8x8 with two levels on both sides.
    _row("0.1", "CV", 8, 8),
    _row("0.1", "CV", 16, 8),
    _row("0.1", "DI", 8),
    _row("0.1", "DI", 16),
    _row("0.1", "DV", 8, 4),
    _row("0.1", "DV", 8, 8),
    _row("0.1", "DV", 16, 8),
    _row("1.0", "CV", 8, 8),
    _row("1.0", "DV", 16, 8),
    _row("1.0", "CI", 8, patch=2),
    _row("1.0", "CI", 16, patch=2),
    _row("1.0", "DI", 8, patch=2),
    _row("1.0", "DI", 16, patch=2),
    _row("1.0", "CV", 8, 4, patch=2),
    _row("1.0", "DV", 8, 4, patch=2, z_channels=256),
)

MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in _ROWS}

# Legacy names (the Nov 2024 NVIDIA/Cosmos-Tokenizer README, NeMo scripts) were renamed to the 0.1 rows.
ALIASES: dict[str, str] = {
    f"Cosmos-Tokenizer-{spec.short_name}": spec.name for spec in _ROWS if spec.name.startswith("Cosmos-0.1-")
}

_LOOKUP: dict[str, str] = {name.lower(): name for name in MODELS}
_LOOKUP.update({alias.lower(): name for alias, name in ALIASES.items()})


class UnknownModelError(KeyError):
    """Raised for a name that is neither a released model nor an alias."""

    def __str__(self) -> str:  # KeyError would quote the whole message.
        return str(self.args[0])


def list_models() -> list[str]:
    """The 18 canonical names, in release order."""
    return list(MODELS)


def is_known_model(name: str) -> bool:
    """True if ``name`` (with or without ``nvidia/``, or an alias) names a released model."""
    return _normalise(name) in _LOOKUP


def _normalise(name: str) -> str:
    name = name.strip()
    if name.lower().startswith("nvidia/"):
        name = name[len("nvidia/"):]
    return name.lower()


def resolve_name(name: str) -> str:
    """Canonical name for ``name``; raises :class:`UnknownModelError` listing close matches."""
    key = _normalise(name)
    if key in _LOOKUP:
        return _LOOKUP[key]
    candidates = list(MODELS) + list(ALIASES)
    close = difflib.get_close_matches(name.strip().removeprefix("nvidia/"), candidates, n=4, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise UnknownModelError(
        f"unknown Cosmos tokenizer {name!r}.{hint} Known models: {', '.join(MODELS)} "
        "(see nemo_cosmos_tokenizer.list_models(); a local directory or .jit path also works where a path is accepted)"
    )


def get_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of a released name or alias."""
    return MODELS[resolve_name(name)]


def get_config(name: str) -> TokenizerConfig:
    """Real-size :class:`TokenizerConfig` of a released name or alias."""
    return get_spec(name).config
