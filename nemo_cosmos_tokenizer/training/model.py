"""The network a run trains: its architecture (a name, ``--init``'s, or fields), its first weights, what is frozen.

The architecture is, in order: ``init``'s (a checkpoint loads strictly into its own architecture only, so any
architecture field that differs from it is refused), else ``architecture`` (a released or built-in name) with the
fields set in the config replacing its values, else a DV8x16x16 of the fields. A built-in name without changed
fields keeps its seeded weights (it is a checkpoint that ships in the package); a released name gives only its
architecture (use ``init`` for its weights).

``decoder`` mode freezes ``encoder`` and ``quant_conv`` (no gradient, eval mode, never touched by the optimiser
or the EMA), which keeps the FSQ input, and so the ids, of every clip bit-identical to ``init``'s.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn

from ..config import DEFAULT_FSQ_LEVELS, TokenizerConfig
from ..networks import CosmosTokenizer, build_tokenizer
from .config import TokenizerTrainConfig, TrainConfigError

log = logging.getLogger(__name__)

__all__ = ["FROZEN_IN_DECODER_MODE", "PreparedModel", "prepare_model", "resolve_architecture", "trainable_parameters"]

#: The submodules ``decoder`` mode freezes: everything that decides the FSQ input.
FROZEN_IN_DECODER_MODE = ("encoder", "quant_conv")

#: Architecture of a run that names none: NVIDIA's DV8x16x16 topology at the TokenizerConfig defaults.
_DEFAULT_BASE = TokenizerConfig(family="DV", spatial_compression=16, temporal_compression=8, levels=DEFAULT_FSQ_LEVELS)


@dataclass
class PreparedModel:
    network: CosmosTokenizer
    source: str
    """Where the first weights came from: ``scratch``, a built-in name or the ``init`` value."""


def _apply_overrides(base: TokenizerConfig, overrides: dict) -> TokenizerConfig:
    changes = dict(overrides)
    family = changes.get("family", base.family)
    if family not in ("CI", "DI", "CV", "DV"):
        raise TrainConfigError(f"family must be one of CI, DI, CV, DV, got {family!r}")
    # Follow a family change with the fields it implies, unless they were given.
    if family in ("CI", "DI"):
        changes.setdefault("temporal_compression", 1)
    elif base.temporal_compression == 1:
        changes.setdefault("temporal_compression", 8)
    if family in ("CI", "CV"):
        changes.setdefault("levels", ())
    elif not base.levels:
        changes.setdefault("levels", DEFAULT_FSQ_LEVELS)
    try:
        return base.replace(**changes)
    except ValueError as err:
        raise TrainConfigError(f"the architecture cannot be built: {err}") from err


def resolve_architecture(config: TokenizerTrainConfig, init_config: TokenizerConfig | None = None) -> TokenizerConfig:
    """The TokenizerConfig the run trains (see the module docstring); ``init_config``: ``init``'s architecture."""
    from ..registry import get_builtin_spec, get_config, is_known_model

    overrides = config.architecture_overrides()
    named: TokenizerConfig | None = None
    if config.architecture is not None:
        builtin = get_builtin_spec(config.architecture)
        if builtin is not None:
            named = builtin.config
        elif is_known_model(config.architecture):
            named = get_config(config.architecture)
        else:
            from ..registry import close_names

            close = close_names(config.architecture)
            raise TrainConfigError(f"unknown architecture {config.architecture!r}",
                                   f"did you mean {', '.join(close)}?" if close else
                                   "give a released name (list-models), a built-in name, or leave it out and set "
                                   "the architecture fields")
    if init_config is not None:
        if named is not None and named != init_config:
            raise TrainConfigError(f"--architecture {config.architecture} is not the architecture of --init "
                                   f"{config.init}", "leave out --architecture: --init's architecture is used")
        wanted = _apply_overrides(init_config, overrides)
        if wanted != init_config:
            changed = sorted(k for k in overrides if getattr(wanted, k) != getattr(init_config, k))
            frozen = " (decoder mode keeps --init's encoder, whose ids need its architecture)" if \
                not config.trains_encoder else ""
            raise TrainConfigError(
                f"the architecture fields {changed} differ from --init {config.init}'s "
                f"({', '.join(f'{k}={getattr(init_config, k)}' for k in changed)}){frozen}",
                "a checkpoint loads strictly into its own architecture: drop those fields, or leave out --init to "
                "train that architecture from scratch",
            )
        return init_config
    return _apply_overrides(named if named is not None else _DEFAULT_BASE, overrides)


def _load_init(config: TokenizerTrainConfig) -> CosmosTokenizer:
    """``init``'s network (float32, CPU) through the project's one loader (strict)."""
    from ..hub.resolve import CheckpointNotFoundError, UnknownModelError, WrongFamilyError
    from ..inference.from_source import load_tokenizer

    try:
        loaded = load_tokenizer(config.init, parts=("encoder", "decoder"), device="cpu", dtype="float32",
                                mode="torch", ema=config.init_ema)
    except (UnknownModelError, CheckpointNotFoundError, WrongFamilyError, ValueError) as err:
        raise TrainConfigError(f"cannot load --init {config.init}: {err}",
                               "give a released or built-in name, a folder of .jit or safetensors files, or a "
                               ".jit file holding the whole autoencoder") from err
    network = loaded.network
    if network is None or network.encoder is None or network.decoder is None:
        raise TrainConfigError(f"--init {config.init} does not hold both encoder and decoder weights",
                               "give a folder with encoder.jit and decoder.jit (or autoencoder.jit)")
    return network


def prepare_model(config: TokenizerTrainConfig) -> PreparedModel:
    """Build (or load) the network, float32 on the CPU, in train mode with the right parts frozen."""
    from ..registry import get_builtin_spec

    if config.init is not None:
        network = _load_init(config)
        resolve_architecture(config, network.config)  # refuses fields that differ from init's
        source = config.init
    else:
        architecture = resolve_architecture(config)
        builtin = get_builtin_spec(config.architecture) if config.architecture else None
        if builtin is not None and builtin.config == architecture:
            from ..hub.sources import build_builtin_network

            network = build_builtin_network(builtin.name)
            source = builtin.name
        else:
            if not config.trains_encoder:
                raise TrainConfigError(
                    "decoder mode keeps an encoder (and so its ids), but no weights are given to keep",
                    "give --init (the checkpoint whose encoder to keep), or use --mode full to train from scratch",
                )
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(config.seed)
                network = build_tokenizer(architecture)
            source = "scratch"
    network = network.float().train().requires_grad_(True)
    if not config.trains_encoder:
        for name in FROZEN_IN_DECODER_MODE:
            getattr(network, name).requires_grad_(False)
    return PreparedModel(network, source)


def set_train_mode(network: CosmosTokenizer, config: TokenizerTrainConfig, training: bool) -> None:
    """``network.train(training)``, frozen parts always in eval mode."""
    network.train(training)
    if not config.trains_encoder:
        for name in FROZEN_IN_DECODER_MODE:
            getattr(network, name).eval()


def trainable_parameters(network: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """``(name, parameter)`` of every parameter that trains, in module order."""
    return [(name, p) for name, p in network.named_parameters() if p.requires_grad]
