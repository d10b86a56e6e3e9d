"""Resolve a model name or a local path to checkpoint files and an architecture.

``resolve_pretrained("Cosmos-0.1-Tokenizer-DV4x8x8", parts={"encoder"})`` maps a released name (or alias, with or
without ``nvidia/``) to its Hub repository through :mod:`nemo_cosmos_tokenizer.registry` and downloads only the
files for the requested parts; a local directory holding NVIDIA's ``.jit`` files or our safetensors format
(``config.json`` + ``model.safetensors``, see :mod:`nemo_cosmos_tokenizer.hub.convert`) works the same way.

The architecture (a :class:`~nemo_cosmos_tokenizer.config.TokenizerConfig`) comes from, in order:

1. an explicit ``tokenizer_config`` (a config, a released name, or a dict of config fields / reference kwargs);
2. a ``config.json`` next to the weights that describes the architecture (our ``save_pretrained`` format, or a
   dict of NVIDIA's reference constructor kwargs, alone or under ``"kwargs"``). NVIDIA's own repositories hold a
   ``config.json`` of just ``{"architectures": ["CosmosTokenizer"]}``; such files are ignored;
3. the released name (from the argument, or a released name in the checkpoint's path, e.g. an HF cache folder
   ``models--nvidia--Cosmos-0.1-Tokenizer-DV4x8x8``);
4. the weights themselves: the key names and shapes of a state_dict are matched against the released models
   (:func:`match_released_config`).
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..config import FAMILIES, TokenizerConfig
from ..registry import (
    EMA_FILE,
    LATENT_STATS_FILE,
    MODELS,
    PART_FILES,
    UnknownModelError,
    get_spec,
    is_known_model,
    resolve_name,
)
from .convert import CONFIG_FILE, WEIGHTS_FILE
from .download import CheckpointNotFoundError, download_files

__all__ = [
    "CheckpointNotFoundError",
    "ResolvedCheckpoint",
    "UnknownModelError",
    "WrongFamilyError",
    "check_family",
    "config_from_json",
    "config_from_path",
    "family_from_state_dict",
    "match_released_config",
    "parse_tokenizer_config",
    "resolve_pretrained",
]

FAMILY_NAMES = {
    "CI": "continuous image",
    "DI": "discrete image",
    "CV": "continuous causal video",
    "DV": "discrete causal video",
}


class WrongFamilyError(ValueError):
    """A checkpoint of another family than the class loading it (e.g. an image checkpoint for a video class)."""


@dataclass(frozen=True)
class ResolvedCheckpoint:
    """Where the weights of one tokenizer are, and its architecture if known."""

    source: str
    """Human-readable origin for messages: ``nvidia/<name>@<revision>`` or a local directory."""

    format: str
    """``"jit"`` (NVIDIA TorchScript files) or ``"safetensors"`` (our ``save_pretrained`` directory)."""

    files: dict[str, Path] = field(default_factory=dict)
    """``"encoder"`` / ``"decoder"`` / ``"autoencoder"`` -> ``.jit`` path (jit format), or ``"directory"`` ->
    the safetensors directory."""

    config: TokenizerConfig | None = None
    """Architecture, if it could be determined without reading the weights."""

    name: str | None = None
    """Canonical released name when the checkpoint is (or is named after) a released model."""

    latent_stats: Path | None = None
    """NVIDIA's ``mean_std.pt`` (latent statistics of a continuous model), when asked for and present."""


# --------------------------------------------------------------------------------------------- architecture
def parse_tokenizer_config(value: Any) -> TokenizerConfig:
    """A :class:`TokenizerConfig` from a config, a released name, or a dict (our fields or reference kwargs)."""
    if isinstance(value, TokenizerConfig):
        return value
    if isinstance(value, str):
        return get_spec(value).config
    if isinstance(value, Mapping):
        config = _config_from_mapping(value)
        if config is None:
            raise ValueError(
                "tokenizer_config must hold TokenizerConfig fields (with 'family') or NVIDIA's reference kwargs "
                f"(with 'name' one of {FAMILIES}); got keys {sorted(value)}"
            )
        return config
    raise TypeError(f"tokenizer_config must be a TokenizerConfig, a released name or a dict, got {type(value).__name__}")


def _config_from_mapping(data: Mapping[str, Any]) -> TokenizerConfig | None:
    for key in ("tokenizer_config", "config", "kwargs"):
        nested = data.get(key)
        if isinstance(nested, Mapping):
            config = _config_from_mapping(nested)
            if config is not None:
                return config
    if data.get("family") in FAMILIES:
        known = {f.name for f in fields(TokenizerConfig)}
        return TokenizerConfig.from_dict({k: v for k, v in data.items() if k in known})
    if data.get("name") in FAMILIES and "spatial_compression" in data:
        return TokenizerConfig.from_cosmos_kwargs(data)
    return None


def config_from_json(path: str | os.PathLike) -> TokenizerConfig | None:
    """The architecture described by a ``config.json``, or ``None`` if it describes none (NVIDIA's files)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"cannot read the tokenizer config {path}: {err}") from err
    return _config_from_mapping(data) if isinstance(data, Mapping) else None


def name_from_path(path: str | os.PathLike) -> str | None:
    """A released name found in the parts of ``path`` (``Cosmos-0.1-Tokenizer-DV4x8x8``, HF cache folders)."""
    for part in reversed(Path(path).expanduser().resolve().parts):
        candidate = part.removeprefix("models--").replace("--", "/")
        if is_known_model(candidate):
            return resolve_name(candidate)
    return None


def config_from_path(path: str | os.PathLike) -> tuple[TokenizerConfig | None, str | None]:
    """``(config, released name)`` for a checkpoint file or directory, from a ``config.json`` next to it, else
    from a released name in its path; ``(None, None)`` if neither says."""
    path = Path(path)
    directory = path if path.is_dir() else path.parent
    name = name_from_path(directory)
    config_file = directory / CONFIG_FILE
    if config_file.is_file():
        config = config_from_json(config_file)
        if config is not None:
            return config, name
    return (get_spec(name).config if name else None), name


def family_from_state_dict(state_dict: Mapping[str, Any]) -> str | None:
    """Family of NVIDIA-layout weights (any of encoder/decoder/autoencoder) from their key names."""
    keys = list(state_dict)
    video = any(k.startswith(("encoder.patcher3d.", "decoder.unpatcher3d.")) for k in keys)
    image = any(k.startswith(("encoder.patcher.", "decoder.unpatcher.")) for k in keys)
    if video == image:
        return None
    discrete = any(k.endswith("quantizer._levels") for k in keys)
    return ("D" if discrete else "C") + ("V" if video else "I")


def check_family(family: str | None, allowed: Iterable[str], what: str, cls_name: str) -> None:
    """Raise :class:`WrongFamilyError` if ``family`` is known and not one of ``allowed``."""
    allowed = tuple(allowed)
    if family is None or family in allowed:
        return
    other = "ImageTokenizer" if family.endswith("I") else "CausalVideoTokenizer"
    raise WrongFamilyError(
        f"{what} is a {FAMILY_NAMES[family]} tokenizer ({family}), but {cls_name} loads "
        f"{' / '.join(FAMILY_NAMES[f] for f in allowed)} ones ({', '.join(allowed)}); use {other} for it"
    )


@functools.lru_cache(maxsize=None)
def _released_shapes(config: TokenizerConfig) -> dict[str, dict[str, tuple[int, ...]]]:
    """Key names and shapes of each part of an architecture, in NVIDIA's file layouts (do not modify)."""
    import torch

    from ..networks import build_tokenizer
    from .convert import cosmos_state_dict

    try:
        with torch.device("meta"):  # no memory, no initialisation
            network = build_tokenizer(config)
    except RuntimeError:  # a module that cannot be built on the meta device: build it for real (about 1 s)
        network = build_tokenizer(config)
    return {
        part: {key: tuple(value.shape) for key, value in cosmos_state_dict(network, part).items()}
        for part in PART_FILES
    }


def match_released_config(state_dict: Mapping[str, Any], part: str) -> TokenizerConfig | None:
    """The released architecture whose ``part`` weights have exactly these key names and shapes, or ``None``.

    ``part`` is ``"encoder"``, ``"decoder"`` or ``"autoencoder"`` (the content of the matching ``.jit`` file).
    """
    family = family_from_state_dict(state_dict)
    target = {key: tuple(value.shape) for key, value in state_dict.items()}
    seen: set[TokenizerConfig] = set()
    for spec in MODELS.values():
        config = spec.config
        if config in seen or (family is not None and config.family != family):
            continue
        seen.add(config)
        if _released_shapes(config)[part] == target:
            return config
    return None


# ------------------------------------------------------------------------------------------------ resolving
def _check_extras(ema: bool, latent_stats: bool | None, parts: set[str]) -> None:
    if ema and parts != {"autoencoder"}:
        raise ValueError(f"{EMA_FILE} holds the whole autoencoder: with ema=True ask for parts={{'autoencoder'}}, "
                         f"got {sorted(parts)}")
    if latent_stats not in (None, True, False):
        raise TypeError(f"latent_stats must be None (load when present), True or False, got {latent_stats!r}")


def _refuse_latent_stats(what: str, config: TokenizerConfig | None) -> None:
    """A clear error for latent statistics asked of a discrete model (its tokens are integers)."""
    if config is not None and config.is_discrete:
        raise CheckpointNotFoundError(
            f"{what} is a {FAMILY_NAMES[config.family]} tokenizer: its tokens are integer indices and it has no "
            f"{LATENT_STATS_FILE} (latent statistics are for continuous models). Leave latent_stats unset."
        )


def _with_ema_and_stats(directory: Path, ema: bool, latent_stats: bool | None,
                        config: TokenizerConfig | None) -> tuple[dict[str, Path], Path | None]:
    """``(part -> .jit path, mean_std.pt or None)`` of a local directory for the ema / latent_stats flags."""
    files = {}
    if ema:
        if not (directory / EMA_FILE).is_file():
            present = sorted(p.name for p in directory.iterdir())
            raise CheckpointNotFoundError(
                f"{directory} has no {EMA_FILE} (EMA weights; it holds: {', '.join(present) or 'nothing'}). "
                f"Load it without ema=True (--ema) to use {' / '.join(PART_FILES.values())}."
            )
        files["autoencoder"] = directory / EMA_FILE
    stats = directory / LATENT_STATS_FILE
    if latent_stats:
        _refuse_latent_stats(str(directory), config)
        if not stats.is_file():
            raise CheckpointNotFoundError(
                f"{directory} has no {LATENT_STATS_FILE} (latent statistics); put NVIDIA's file there or leave "
                "latent_stats unset."
            )
    use_stats = latent_stats is not False and stats.is_file() and not (config is not None and config.is_discrete)
    return files, (stats if use_stats else None)


def _local_checkpoint(directory: Path, parts: set[str], jit: bool, config: TokenizerConfig | None,
                      ema: bool = False, latent_stats: bool | None = None) -> ResolvedCheckpoint:
    has_weights = (directory / WEIGHTS_FILE).is_file()
    jit_files = {part: directory / name for part, name in PART_FILES.items() if (directory / name).is_file()}
    file_config, name = config_from_path(directory)
    config = config or file_config
    extra_files, stats = _with_ema_and_stats(directory, ema, latent_stats, config)
    if ema:
        return ResolvedCheckpoint(str(directory), "jit", extra_files, config, name, stats)
    if has_weights and not jit:
        return ResolvedCheckpoint(str(directory), "safetensors", {"directory": directory}, config, name, stats)
    if has_weights and jit and not jit_files:
        raise CheckpointNotFoundError(
            f"{directory} holds converted safetensors weights ({WEIGHTS_FILE}); jit mode needs NVIDIA's .jit files. "
            "Load it in native mode (mode='torch' / use_pytorch=True)."
        )
    missing = [PART_FILES[p] for p in sorted(parts) if p not in jit_files]
    if missing:
        present = sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []
        raise CheckpointNotFoundError(
            f"{directory} has no {', '.join(missing)} (it holds: {', '.join(present) or 'nothing'}). A checkpoint "
            f"directory needs NVIDIA's {' / '.join(PART_FILES.values())} files or {CONFIG_FILE} + {WEIGHTS_FILE}."
        )
    return ResolvedCheckpoint(str(directory), "jit", {p: jit_files[p] for p in parts}, config, name, stats)


def resolve_pretrained(
    name_or_path: str | os.PathLike,
    parts: Iterable[str],
    *,
    jit: bool = False,
    tokenizer_config: Any = None,
    cache_dir: str | os.PathLike | None = None,
    revision: str | None = None,
    token: str | bool | None = None,
    local_files_only: bool = False,
    ema: bool = False,
    latent_stats: bool | None = None,
) -> ResolvedCheckpoint:
    """Locate the files of ``parts`` (``"encoder"``, ``"decoder"``, ``"autoencoder"``) of a model.

    ``name_or_path`` is a released name or alias (downloaded from ``nvidia/<name>`` into the HF cache), another
    Hub repository id ``org/name`` holding the same files, or a local directory. ``jit=True`` insists on the
    ``.jit`` files (jit mode); otherwise a local safetensors directory is preferred when present.
    ``ema=True`` takes the ``"autoencoder"`` part (the only one then allowed) from ``ema.jit`` (EMA weights).
    ``latent_stats``: ``None`` fetches ``mean_std.pt`` where the repository has one (a released row lists it;
    another repository or directory is asked), ``True`` requires it, ``False`` skips it.
    Raises :class:`UnknownModelError` for an unknown name and :class:`CheckpointNotFoundError` for missing files
    (including ``ema.jit`` / ``mean_std.pt`` that the repository does not hold, before downloading anything).
    """
    parts = set(parts)
    unknown_parts = parts - set(PART_FILES)
    if unknown_parts or not parts:
        raise ValueError(f"parts must be a non-empty subset of {sorted(PART_FILES)}, got {sorted(parts)}")
    _check_extras(ema, latent_stats, parts)
    config = parse_tokenizer_config(tokenizer_config) if tokenizer_config is not None else None

    path = Path(os.fspath(name_or_path)).expanduser()
    if path.is_dir():
        return _local_checkpoint(path, parts, jit, config, ema, latent_stats)
    if path.is_file():
        raise CheckpointNotFoundError(
            f"{path} is a file; from_pretrained takes a model name or a directory. Load single files with "
            "CausalVideoTokenizer(checkpoint_enc=..., checkpoint_dec=...) (or ImageTokenizer)."
        )
    text = os.fspath(name_or_path).strip()
    name = None
    if is_known_model(text):
        name = resolve_name(text)
        repo_id = get_spec(name).hub_repo
    elif text.startswith((".", "/", "~")) or "\\" in text or text.endswith((".jit", ".safetensors", ".json")):
        raise CheckpointNotFoundError(f"no such checkpoint directory: {text}")
    elif text.count("/") == 1 and not text.lower().startswith("nvidia/"):
        repo_id = text  # Another Hub repository with the same file layout (a mirror or a fine-tune).
    else:
        resolve_name(text)  # raises UnknownModelError with close matches
        raise AssertionError("unreachable")

    part_files = {p: (EMA_FILE if ema else PART_FILES[p]) for p in sorted(parts)}
    filenames = list(part_files.values())
    optional = [CONFIG_FILE]
    if name is not None:
        spec = get_spec(name)
        if ema and spec.ema_file is None:
            with_ema = [s.name for s in MODELS.values() if s.ema_file is not None]
            raise CheckpointNotFoundError(
                f"{spec.hub_repo} has no {EMA_FILE} (EMA weights); of the released models only "
                f"{', '.join(with_ema)} {'has' if len(with_ema) == 1 else 'have'} one. Load {name} without "
                f"ema=True (--ema) to use its {' / '.join(PART_FILES.values())}."
            )
        if latent_stats:
            _refuse_latent_stats(name, spec.config)
            if spec.latent_stats_file is None:
                with_stats = [s.name for s in MODELS.values() if s.latent_stats_file is not None]
                raise CheckpointNotFoundError(
                    f"{spec.hub_repo} has no {LATENT_STATS_FILE} (latent statistics); NVIDIA publishes one for "
                    f"{', '.join(with_stats)} only. Leave latent_stats unset, or load statistics you computed "
                    "with LatentStats.load()."
                )
        if latent_stats is not False and spec.latent_stats_file is not None:
            filenames.append(spec.latent_stats_file)
    elif latent_stats:
        _refuse_latent_stats(repo_id, config)
        filenames.append(LATENT_STATS_FILE)
    elif latent_stats is None and not (config is not None and config.is_discrete):
        optional.append(LATENT_STATS_FILE)
    try:
        paths = download_files(
            repo_id,
            filenames,
            optional=optional,
            revision=revision,
            cache_dir=cache_dir,
            token=token,
            local_files_only=local_files_only,
        )
    except CheckpointNotFoundError as err:
        if name is None and "was not found" in str(err):
            raise CheckpointNotFoundError(f"{err} No local directory {text!r} exists either.") from err
        raise
    if config is None and CONFIG_FILE in paths:
        config = config_from_json(paths[CONFIG_FILE])
    if config is None and name is not None:
        config = get_spec(name).config
    source = repo_id + (f"@{revision}" if revision else "")
    files = {p: paths[f] for p, f in part_files.items()}
    stats = paths.get(LATENT_STATS_FILE)
    if stats is not None and config is not None and config.is_discrete:
        stats = None  # another repository's stray file: a discrete model's tokens are not normalised
    return ResolvedCheckpoint(source, "jit", files, config, name, stats)
