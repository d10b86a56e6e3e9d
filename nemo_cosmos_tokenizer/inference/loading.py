"""Loading a tokenizer for the inference API: checkpoint files, our safetensors directories, released names
(:meth:`TokenizerLoader.from_pretrained`), a built network (:meth:`TokenizerLoader.from_network`), and the two
backends' weights: our :class:`~nemo_cosmos_tokenizer.networks.CosmosTokenizer` (``mode="torch"``) or NVIDIA's
TorchScript modules (``mode="jit"``). The tensor API on top is :mod:`.tokenizers`; how each backend runs is
:mod:`.backends`. ``device`` and ``dtype`` are chosen once here (:mod:`nemo_cosmos_tokenizer.devices`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Mapping

import torch
from torch import nn

from ..config import TokenizerConfig
from ..devices import resolve_device, resolve_dtype
from .backends import JitBackend, NativeBackend

__all__ = ["TokenizerLoader"]

_MODES = {"torch": "torch", "native": "torch", "pytorch": "torch", "jit": "jit"}


def normalise_mode(mode: str | None) -> str | None:
    if mode is None:
        return None
    key = str(mode).lower()
    if key not in _MODES:
        raise ValueError(f"mode must be 'torch' (native) or 'jit', got {mode!r}")
    return _MODES[key]


class TokenizerLoader(nn.Module):
    """The loading half of the inference classes (use :class:`~.tokenizers.CausalVideoTokenizer` or
    :class:`~.tokenizers.ImageTokenizer`): which weights, which backend, which device and dtype."""

    #: Families this class loads.
    FAMILIES: tuple[str, ...] = ()
    #: Default name for ``from_pretrained()`` with no name (NeMo's signature has one for video).
    DEFAULT_MODEL: str | None = None

    @classmethod
    def _empty(cls, device, dtype) -> "TokenizerLoader":
        """An instance with nothing loaded (for the alternative constructors)."""
        self = cls.__new__(cls)
        nn.Module.__init__(self)
        self._init_empty(device, dtype)
        return self

    def _init_empty(self, device, dtype) -> None:
        self._device = resolve_device(device)
        self._dtype = resolve_dtype(dtype)
        self.config = None
        self.name = None
        self.latent_stats = None  # LatentStats of a continuous model (NVIDIA's mean_std.pt), see normalize_latent
        self.network = self.jit_encoder = self.jit_decoder = self.jit_autoencoder = None
        self._has_encoder = self._has_decoder = self._has_autoencoder = False

    @property
    def device(self) -> torch.device:
        """Device of the weights (follows ``.to()`` / ``.cuda()``); inputs are moved here."""
        for tensor in self.parameters():
            return tensor.device
        return self._device

    @property
    def dtype(self) -> torch.dtype:
        """Compute dtype of the weights (follows ``.to()``); float inputs are cast to it."""
        for tensor in self.parameters():
            if tensor.is_floating_point():
                return tensor.dtype
        return self._dtype

    # ------------------------------------------------------------------------------------------------ loading
    @classmethod
    def from_network(
        cls,
        network: nn.Module,
        *,
        parts: Iterable[str] = ("encoder", "decoder"),
        device: str | torch.device | None = None,
        dtype: str | torch.dtype = "bfloat16",
        name: str | None = None,
    ) -> "TokenizerLoader":
        """Wrap a built (and loaded) :class:`~nemo_cosmos_tokenizer.networks.CosmosTokenizer`.

        ``parts`` says which weights are real: ``"encoder"``, ``"decoder"`` (``"autoencoder"`` = both). The other
        side is dropped to save memory, and calling it raises a clear error.
        """
        self = cls._empty(device, dtype)
        self.name = name
        self.config = network.config
        self._check_family(network.config.family, name or "this network")
        self._set_network(network, set(parts))
        return self

    def _set_network(self, network: nn.Module, parts: set[str]) -> None:
        if "autoencoder" in parts:
            parts = parts | {"encoder", "decoder"}
        self._has_encoder = "encoder" in parts
        self._has_decoder = "decoder" in parts
        self._has_autoencoder = self._has_encoder and self._has_decoder
        # Drop the side whose weights were not loaded (it would hold random weights): an encoder-only tokenizer
        # for dataset building needs about 40% of the memory. The FSQ (no weights) stays for decode of indices.
        if not self._has_encoder:
            network.encoder = None
            network.quant_conv = None
        if not self._has_decoder:
            network.decoder = None
            network.post_quant_conv = None
        self.network = network.to(device=self._device, dtype=self._dtype).eval().requires_grad_(False)

    def _check_family(self, family: str | None, what: str) -> None:
        from ..hub.resolve import check_family

        check_family(family, self.FAMILIES, what, type(self).__name__)

    def _load_files(self, files: dict[str, Any], config: TokenizerConfig | None, mode: str | None) -> None:
        from ..hub.resolve import (
            WEIGHTS_FILE,
            PART_FILES,
            CheckpointNotFoundError,
            config_from_path,
            family_from_state_dict,
            match_released_config,
        )

        paths: dict[str, Path] = {}
        safetensors_dir: Path | None = None
        for part, value in files.items():
            path = Path(os.fspath(value)).expanduser()
            if path.is_dir():
                if (path / WEIGHTS_FILE).is_file() and mode != "jit":
                    safetensors_dir = path
                    continue
                path = path / PART_FILES[part]
            if not path.is_file():
                raise CheckpointNotFoundError(f"checkpoint file not found: {path}")
            paths[part] = path

        if safetensors_dir is not None:
            from ..hub.convert import load_pretrained

            network = load_pretrained(safetensors_dir)
            if config is not None and network.config != config:
                raise ValueError(f"{safetensors_dir} holds {network.config}, which differs from tokenizer_config "
                                 f"{config}; leave tokenizer_config out (the directory's config.json describes it)")
            _, self.name = config_from_path(safetensors_dir)
            self._check_family(network.config.family, str(safetensors_dir))
            self.config = network.config
            self._set_network(network, {"encoder", "decoder"})
            return

        first = next(iter(paths.values()))
        if config is None:
            config, self.name = config_from_path(first)
        else:
            _, self.name = config_from_path(first)
        if config is not None:
            self._check_family(config.family, str(first.parent))

        if mode == "jit":
            self._load_jit(paths, config)
            return
        from ..hub.convert import load_jit_state_dict

        state_dicts = {part: load_jit_state_dict(path) for part, path in paths.items()}
        for part, state_dict in state_dicts.items():
            self._check_family(family_from_state_dict(state_dict), str(paths[part]))
        if config is None:
            part, state_dict = next(iter(state_dicts.items()))
            config = match_released_config(state_dict, part)
            if config is None:
                if mode == "torch":
                    raise ValueError(
                        f"cannot tell the architecture of {paths[part]}: its weights match no released model. Pass "
                        "tokenizer_config= (a TokenizerConfig or NVIDIA's kwargs) or put a config.json next to it."
                    )
                self._load_jit(paths, None)  # unknown architecture: the TorchScript file still runs as is
                return
        from ..networks import build_tokenizer

        network = build_tokenizer(config)
        for part, state_dict in state_dicts.items():
            try:
                network.load_cosmos_state_dict(state_dict, part=part)
            except (RuntimeError, ValueError, KeyError) as err:
                raise ValueError(
                    f"{paths[part]} does not fit the {config.family} architecture {config}: {err}. If it is another "
                    "size of model, pass tokenizer_config= or put a config.json next to it."
                ) from err
        self.config = config
        self._set_network(network, set(paths))

    def _load_jit(self, paths: dict[str, Path], config: TokenizerConfig | None) -> None:
        from ..hub.resolve import family_from_state_dict, match_released_config

        for part, path in paths.items():
            module = torch.jit.load(str(path), map_location=self.device).eval()
            state_dict = module.state_dict()
            self._check_family(family_from_state_dict(state_dict), str(path))
            if config is None:  # only for the padding multiples; the TorchScript code runs as is
                config = match_released_config(state_dict, part)
            # A traced file runs in the dtype it was traced in, whatever dtype was asked for: its graph holds casts
            # to that dtype (the FSQ casts its codes back to it), so a module cast to another dtype feeds its own
            # convolutions mixed inputs ("Input type (CPUBFloat16Type) and weight type"). Inputs are cast to the
            # module's dtype instead (the dtype property follows the weights).
            traced = next((t.dtype for t in module.parameters() if t.is_floating_point()), None)
            if traced is not None:
                self._dtype = traced
            for param in module.parameters():  # ScriptModules have no requires_grad_()
                param.requires_grad_(False)
            setattr(self, f"jit_{part}", module)
        self.config = config
        self._has_encoder = self.jit_encoder is not None
        self._has_decoder = self.jit_decoder is not None
        self._has_autoencoder = self.jit_autoencoder is not None

    def to_native(self) -> "TokenizerLoader":
        """This tokenizer in native mode: our network with the weights of the loaded TorchScript modules."""
        if self.network is not None:
            return self
        if self.config is None:
            raise ValueError("the architecture of these JIT files is unknown; load them with tokenizer_config=")
        from ..networks import build_tokenizer

        network = build_tokenizer(self.config)
        parts = set()
        for part in ("encoder", "decoder", "autoencoder"):
            module = getattr(self, f"jit_{part}")
            if module is not None:
                network.load_cosmos_state_dict(module.state_dict(), part=part)
                parts.add(part)
        return type(self).from_network(network, parts=parts, device=self.device, dtype=self.dtype, name=self.name)

    @property
    def backend(self) -> NativeBackend | JitBackend:
        """How this tokenizer runs (:mod:`.backends`): a view of ``network`` or ``jit_*`` as they are now set."""
        if self.network is not None:
            return NativeBackend(self.network)
        return JitBackend(self.jit_encoder, self.jit_decoder, self.jit_autoencoder)

    @property
    def mode(self) -> str:
        """``"torch"`` (native network) or ``"jit"`` (TorchScript files)."""
        return self.backend.mode

    # ---------------------------------------------------------------------------------------- from_pretrained
    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike | None = None,
        load_encoder: bool = True,
        load_decoder: bool = True,
        load_full_model: bool = False,
        use_pytorch: bool | None = None,
        dtype: str | torch.dtype = "bfloat16",
        device: str | torch.device | None = None,
        cache_dir: str | os.PathLike | None = None,
        revision: str | None = None,
        token: str | bool | None = None,
        local_files_only: bool = False,
        tokenizer_config: TokenizerConfig | Mapping[str, Any] | str | None = None,
        *,
        tokenizer_type: str | None = None,
        ema: bool = False,
        latent_stats: bool | None = None,
    ) -> "TokenizerLoader":
        """Load a released model by name (downloaded once into the Hugging Face cache) or from a local directory.

        A superset of NeMo's ``CausalVideoTokenizer.from_pretrained`` signature.

        Args:
            name_or_path: whatever a command's ``--tokenizer`` takes: a released name
                (``Cosmos-0.1-Tokenizer-DV4x8x8``, with or without ``nvidia/``, or a legacy
                ``Cosmos-Tokenizer-DV4x8x8`` alias), a built-in name (``tiny-random-dv8x16x16``: seeded random
                weights, no download), another Hub repo ``org/name`` with the same files, a local directory of
                ``.jit`` files or of our safetensors format, or one ``.jit`` file. ``tokenizer_type=`` is NeMo's
                name for the same argument.
            load_encoder / load_decoder: fetch and load ``encoder.jit`` / ``decoder.jit`` (only those files
                are downloaded).
            load_full_model: fetch ``autoencoder.jit`` for :meth:`autoencode` (in native mode it alone
                provides encoder and decoder weights, so the other files are not fetched).
            use_pytorch: ``True`` native, ``False`` jit, ``None`` (default) native where the architecture is known.
            dtype / device: see the constructor (device default: CUDA when available, else CPU).
            cache_dir / revision / token / local_files_only: as in ``huggingface_hub.hf_hub_download``;
                ``HF_HUB_OFFLINE=1`` works from the cache.
            tokenizer_config: architecture override for checkpoints that are not released sizes.
            ema: load the EMA weights of ``ema.jit`` (the whole autoencoder, e.g. in
                ``Cosmos-Tokenize1-DV8x16x16-720p``, as cosmos-predict1's autoregressive models use) into the
                native network instead of ``encoder.jit`` / ``decoder.jit``; a repository without ``ema.jit``
                raises :class:`CheckpointNotFoundError` before anything is downloaded. Native mode only.
            latent_stats: NVIDIA's ``mean_std.pt`` of a continuous model (``Cosmos-Tokenize1-CV8x8x8-720p``):
                ``None`` (default) loads it where the repository has it, ``True`` requires it (an error for a
                discrete model or a repository without one), ``False`` skips it. Loaded statistics are
                :attr:`latent_stats`, used by ``normalize_latent`` / ``denormalize_latent``.
        """
        from ..hub.resolve import check_family, resolve_pretrained
        from ..registry import get_builtin_spec, get_spec, is_known_model

        if tokenizer_type is not None:
            if name_or_path is not None:
                raise TypeError("pass the model as name_or_path or tokenizer_type, not both")
            name_or_path = tokenizer_type
        if name_or_path is None:
            if cls.DEFAULT_MODEL is None:
                raise TypeError(f"{cls.__name__}.from_pretrained() needs a model name or directory")
            name_or_path = cls.DEFAULT_MODEL
        if not (load_encoder or load_decoder or load_full_model):
            raise ValueError("nothing to load: set load_encoder, load_decoder and/or load_full_model")
        mode = None if use_pytorch is None else ("torch" if use_pytorch else "jit")
        if ema and mode == "jit":
            raise ValueError(
                "ema=True loads the EMA weights of ema.jit into the native network; jit mode runs NVIDIA's "
                "encoder.jit / decoder.jit as they are. Leave use_pytorch unset (or True) to use EMA weights."
            )
        path = Path(os.fspath(name_or_path)).expanduser()
        text = os.fspath(name_or_path).strip()
        if not path.exists() and (text.count("/") != 1 or text.lower().startswith("nvidia/")):
            from ..hub.sources import resolve_tokenizer_source

            resolve_tokenizer_source(text)  # a wrong name: the commands' message (close matches, what is accepted)
        builtin = None if path.exists() else get_builtin_spec(text)
        if builtin is not None or path.is_file():  # no repository to resolve: a built-in or one .jit file
            asked = {p for p, on in (("encoder", load_encoder), ("decoder", load_decoder),
                                     ("autoencoder", load_full_model)) if on}
            return cls._from_builtin_or_file(builtin, path, asked, mode=mode, dtype=dtype, device=device,
                                             tokenizer_config=tokenizer_config, ema=ema, latent_stats=latent_stats)
        if isinstance(name_or_path, str) and is_known_model(name_or_path) and not path.is_dir():
            # Refuse a released model of the wrong family before downloading anything.
            spec = get_spec(name_or_path)
            check_family(spec.config.family, cls.FAMILIES, spec.name, cls.__name__)
        if ema:
            parts = {"autoencoder"}  # ema.jit is the whole model: it gives the encoder and the decoder weights
        elif mode == "jit":
            parts = {p for p, on in (("encoder", load_encoder), ("decoder", load_decoder),
                                     ("autoencoder", load_full_model)) if on}
        elif load_full_model:
            parts = {"autoencoder"}
        else:
            parts = {p for p, on in (("encoder", load_encoder), ("decoder", load_decoder)) if on}
        resolved = resolve_pretrained(
            name_or_path,
            parts,
            jit=mode == "jit",
            tokenizer_config=tokenizer_config,
            cache_dir=cache_dir,
            revision=revision,
            token=token,
            local_files_only=local_files_only,
            ema=ema,
            latent_stats=latent_stats,
        )
        if resolved.format == "safetensors":
            files = {"autoencoder": resolved.files["directory"]}
        else:
            files = dict(resolved.files)
        self = cls._empty(device, dtype)
        self._load_files(files, resolved.config, mode)
        if resolved.name is not None:
            self.name = resolved.name
        if resolved.latent_stats is not None:
            if self.config is None:
                if latent_stats:
                    raise ValueError(f"cannot read {resolved.latent_stats}: the architecture of {resolved.source} "
                                     "is unknown (pass tokenizer_config=)")
            else:
                from .latent_stats import LatentStats

                self.latent_stats = LatentStats.load(resolved.latent_stats, self.config.latent_channels)
        if self.mode == "torch" and not load_full_model:
            # Keep only what was asked for (the safetensors format holds every part).
            self._set_network(self.network, {p for p, on in (("encoder", load_encoder), ("decoder", load_decoder)) if on})
        return self

    @classmethod
    def _from_builtin_or_file(cls, builtin, path: Path, parts: set[str], *, mode: str | None, dtype, device,
                              tokenizer_config, ema: bool, latent_stats: bool | None) -> "TokenizerLoader":
        """:meth:`from_pretrained` of a built-in (``builtin``: its registry row) or of one ``.jit`` file."""
        from ..hub.resolve import CheckpointNotFoundError, check_family, parse_tokenizer_config
        from ..hub.sources import build_builtin_network, jit_file_arguments
        from ..registry import LATENT_STATS_FILE

        what = builtin.name if builtin is not None else str(path)
        if ema:
            raise ValueError(f"ema=True needs a checkpoint with an ema.jit (a released name or a folder); {what} is "
                             f"{'a built-in tokenizer' if builtin is not None else 'one .jit file'}")
        if latent_stats:
            raise CheckpointNotFoundError(f"{what} has no {LATENT_STATS_FILE} (latent statistics); leave "
                                          "latent_stats unset")
        if builtin is None:
            if path.suffix != ".jit":
                raise CheckpointNotFoundError(f"{path} is a file but not a .jit file; give the folder that holds the "
                                              "checkpoint (.jit files, or config.json + model.safetensors)")
            return cls(**jit_file_arguments(path, parts), tokenizer_config=tokenizer_config, device=device,
                       dtype=dtype, mode=mode)
        if mode == "jit":
            raise ValueError(f"{builtin.name} is built in (a network with seeded weights, no .jit files): leave "
                             "use_pytorch unset (or True)")
        if tokenizer_config is not None and parse_tokenizer_config(tokenizer_config) != builtin.config:
            raise ValueError(f"{builtin.name} has its own architecture ({builtin.config}); leave tokenizer_config out")
        check_family(builtin.config.family, cls.FAMILIES, builtin.name, cls.__name__)
        return cls.from_network(build_builtin_network(builtin.name), parts=parts, device=device, dtype=dtype,
                                name=builtin.name)
