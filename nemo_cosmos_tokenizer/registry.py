"""The 26 released Cosmos Tokenizer checkpoints, as rows of data.

Each row names a model, its Hugging Face repository, its architecture and the files its repository holds. A new
release is a new row here, never a new code path. Names resolve with or without
the ``nvidia/`` prefix, case-insensitively, and the legacy ``Cosmos-Tokenizer-XX``
names used by NeMo scripts map to the 0.1 (or, for CV8x8x8/DV8x16x16, 1.0) rows.

Three releases: ``Cosmos-0.1-Tokenizer-*`` (10 models), ``Cosmos-1.0-Tokenizer-*`` (8) and
``Cosmos-Tokenize1-*`` (8, the repositories cosmos-predict1 and later download). Each Tokenize1 model has the
architecture of a 1.0 model (``same_architecture_as``); its repository may also hold ``ema.jit`` (EMA weights
of the whole autoencoder, in the ``autoencoder.jit`` layout) and, for the diffusion models' tokenizer,
``mean_std.pt`` (per-channel, per-latent-frame statistics that normalise latents).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from .config import DEFAULT_FSQ_LEVELS, TokenizerConfig

#: The one part -> file table: the TorchScript file of each weight layout, as every released repository holds it
#: (traced by NVIDIA). Plain data here (no torch import: the CLIs read this module before parsing arguments);
#: :mod:`.networks.checkpoint` maps each part to its state_dict keys and re-exports it.
PART_FILES: dict[str, str] = {"encoder": "encoder.jit", "decoder": "decoder.jit", "autoencoder": "autoencoder.jit"}
#: Files every released repository holds.
JIT_FILES = tuple(PART_FILES.values())
#: EMA weights of the whole autoencoder (``autoencoder.jit`` layout), written by NVIDIA's training checkpointer.
EMA_FILE = "ema.jit"
#: ``(latent_mean, latent_std)`` of a continuous model's latents, as cosmos-predict1 loads them.
LATENT_STATS_FILE = "mean_std.pt"


@dataclass(frozen=True)
class ModelSpec:
    """One released checkpoint."""

    name: str
    """Canonical name, e.g. ``Cosmos-0.1-Tokenizer-DV8x16x16``."""

    config: TokenizerConfig
    """Architecture at real size."""

    ema_file: str | None = None
    """``ema.jit`` if the repository holds EMA weights of the whole autoencoder, else ``None``."""

    latent_stats_file: str | None = None
    """``mean_std.pt`` if the repository holds latent statistics (continuous models only), else ``None``."""

    same_architecture_as: str | None = None
    """For a re-release (Tokenize1): the earlier name with the same architecture and file layouts."""

    @property
    def hub_repo(self) -> str:
        """Hugging Face repository id, e.g. ``nvidia/Cosmos-0.1-Tokenizer-DV8x16x16``."""
        return f"nvidia/{self.name}"

    @property
    def release(self) -> str:
        """``"0.1"``, ``"1.0"`` or ``"Tokenize1"`` (the second part of the name)."""
        return self.name.split("-")[1]

    @property
    def short_name(self) -> str:
        """The part after the release, e.g. ``DV8x16x16``, ``CI8x8-LowRes`` or ``DV8x16x16-720p``."""
        return self.name.split("-", 2)[2].removeprefix("Tokenizer-")

    @property
    def files(self) -> tuple[str, ...]:
        """Every checkpoint file the repository holds (the three ``.jit`` parts, then ``ema.jit``/``mean_std.pt``)."""
        return JIT_FILES + tuple(f for f in (self.ema_file, self.latent_stats_file) if f is not None)


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


def _tokenize1(resolution: str, same_as: str, *, ema: bool = False, latent_stats: bool = False) -> ModelSpec:
    """A ``Cosmos-Tokenize1-*`` row: the architecture of the 1.0 row ``same_as`` under its new repository.

    Which extra files each repository holds comes from cosmos-predict1 (4ed35fa): ``mean_std.pt`` is published
    (with an MD5) for CV8x8x8-720p only, the diffusion models' tokenizer; ``ema.jit`` is the file its
    autoregressive models name in DV8x16x16-720p.
    """
    base = next(spec for spec in _ROWS if spec.name == same_as)
    config = base.config
    if latent_stats and config.is_discrete:
        raise ValueError(f"{same_as}: latent statistics are for continuous models")
    family = f"{config.family}{config.compression_label}"
    return ModelSpec(
        name=f"Cosmos-Tokenize1-{family}-{resolution}",
        config=config,
        ema_file=EMA_FILE if ema else None,
        latent_stats_file=LATENT_STATS_FILE if latent_stats else None,
        same_architecture_as=same_as,
    )


# NVIDIA's current repositories (cosmos-predict1 scripts/download_tokenizer_checkpoints.py), in its order.
_ROWS += (
    _tokenize1("720p", "Cosmos-1.0-Tokenizer-CV8x8x8", latent_stats=True),
    _tokenize1("720p", "Cosmos-1.0-Tokenizer-DV8x16x16", ema=True),
    _tokenize1("360p", "Cosmos-1.0-Tokenizer-CI8x8-LowRes"),
    _tokenize1("360p", "Cosmos-1.0-Tokenizer-CI16x16-LowRes"),
    _tokenize1("360p", "Cosmos-1.0-Tokenizer-CV4x8x8-LowRes"),
    _tokenize1("360p", "Cosmos-1.0-Tokenizer-DI8x8-LowRes"),
    _tokenize1("360p", "Cosmos-1.0-Tokenizer-DI16x16-LowRes"),
    _tokenize1("360p", "Cosmos-1.0-Tokenizer-DV4x8x8-LowRes"),
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
    """The 26 canonical names, in release order (0.1, 1.0, Tokenize1)."""
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
    builtin = get_builtin_spec(name)
    if builtin is not None:  # not "unknown": a name every command takes, but it has no repository or files
        raise UnknownModelError(
            f"{builtin.name} is a built-in tokenizer ({builtin.summary}), not a released model: it has no Hugging "
            "Face repository or checkpoint files. Load it with CausalVideoTokenizer.from_pretrained / "
            "ImageTokenizer.from_pretrained, nemo_cosmos_tokenizer.inference.from_source.load_tokenizer or any "
            "--tokenizer flag"
        )
    close = close_names(name, builtin=False)  # only names this function resolves: a hint must not be refused
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise UnknownModelError(
        f"unknown Cosmos tokenizer {name!r}.{hint} Known models: {', '.join(MODELS)} "
        "(see nemo_cosmos_tokenizer.list_models(); a local directory or .jit path also works where a path is accepted)"
    )


def resolve_suffix(name: str) -> str:
    """:func:`resolve_name`, or for a suffix such as ``DV8x16x16`` (what benchmarks take) the newest release whose
    name ends in ``-<suffix>``; raises :class:`UnknownModelError` when neither matches."""
    try:
        return resolve_name(name)
    except UnknownModelError:
        matches = [m for m in MODELS if m.lower().endswith("-" + name.strip().lower())]
        if not matches:
            raise
        return matches[-1]  # MODELS is in release order


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
    # The image counterpart, for reconstruct-images / encode / build-dataset offline. GroupNorm(32) sets the
    # narrowest image width: 32 channels (a quarter of the released 128), same levels as Cosmos-0.1-Tokenizer-DI8x8.
    BuiltinSpec(
        name="tiny-random-di8x8",
        config=TokenizerConfig(
            family="DI",
            spatial_compression=8,
            channels=32,
            channels_mult=(2, 4, 4),
            num_res_blocks=1,
            z_channels=16,
            levels=DEFAULT_FSQ_LEVELS,
        ),
        seed=0,
        quant_scale=10.0,
        summary="DI8x8 architecture at reduced width with seeded random weights (offline; tokens carry no "
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


def close_names(name: str, n: int = 4, builtin: bool = True) -> list[str]:
    """Released names, aliases and (``builtin=True``) built-in names that look like ``name`` (for "Did you mean"
    hints: pass ``builtin=False`` where a built-in name would not be accepted)."""
    text = str(name).strip()
    text = text[len("nvidia/"):] if text.lower().startswith("nvidia/") else text
    candidates = list(MODELS) + list(ALIASES) + (list(BUILTIN_MODELS) if builtin else [])
    by_lower = {c.lower(): c for c in candidates}
    close = difflib.get_close_matches(text.lower(), list(by_lower), n=n, cutoff=0.5)
    return [by_lower[c] for c in close]
