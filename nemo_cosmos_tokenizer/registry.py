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

#: The TorchScript file of each part (weights layout) that every released repository holds (traced by NVIDIA).
PART_FILES: dict[str, str] = {"encoder": "encoder.jit", "decoder": "decoder.jit", "autoencoder": "autoencoder.jit"}
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
    close = close_names(name)
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


# ------------------------------------------------------------------------------------------------ built-ins
@dataclass(frozen=True)
class BuiltinSpec:
    """A tokenizer that ships inside the package: an architecture whose weights come from a fixed seed.

    No download, so every command can be tried offline and in tests; the tokens carry **no visual meaning**.
    """

    name: str
    """Lower-case name, e.g. ``tiny-random-dv8x16x16`` (matched case-insensitively)."""

    config: TokenizerConfig
    """Architecture (reduced width)."""

    seed: int
    """``torch.manual_seed`` for the initial weights."""

    quant_scale: float
    """Random weights give a nearly constant FSQ input; ``quant_conv``'s weight is multiplied by this (its bias
    zeroed) so the codes spread over much of the codebook."""

    summary: str
    """One line for ``--help`` and ``list-models``."""


_BUILTIN_ROWS: tuple[BuiltinSpec, ...] = (
    BuiltinSpec(
        name="tiny-random-dv8x16x16",
        config=TokenizerConfig(
            family="DV",
            spatial_compression=16,
            temporal_compression=8,
            channels=8,
            channels_mult=(2, 4, 4),
            num_res_blocks=1,
            z_channels=16,
            levels=DEFAULT_FSQ_LEVELS,
        ),
        seed=0,
        quant_scale=20.0,
        summary="DV8x16x16 architecture at reduced width with seeded random weights (offline; tokens carry no "
        "visual meaning)",
    ),
)

#: Built-in tokenizers by name, next to the released :data:`MODELS` (never mixed into them: they are no release).
BUILTIN_MODELS: dict[str, BuiltinSpec] = {spec.name: spec for spec in _BUILTIN_ROWS}


def list_builtin_models() -> list[str]:
    """Names of the built-in tokenizers."""
    return list(BUILTIN_MODELS)


def get_builtin_spec(name: str) -> BuiltinSpec | None:
    """The :class:`BuiltinSpec` called ``name`` (case-insensitive), or ``None``."""
    return BUILTIN_MODELS.get(str(name).strip().lower())


def close_names(name: str, n: int = 4) -> list[str]:
    """Released names, aliases and built-in names that look like ``name`` (for "Did you mean" hints)."""
    text = str(name).strip()
    text = text[len("nvidia/"):] if text.lower().startswith("nvidia/") else text
    candidates = list(MODELS) + list(ALIASES) + list(BUILTIN_MODELS)
    by_lower = {c.lower(): c for c in candidates}
    close = difflib.get_close_matches(text.lower(), list(by_lower), n=n, cutoff=0.5)
    return [by_lower[c] for c in close]
