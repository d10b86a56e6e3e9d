"""NeMo models: :class:`CausalVideoTokenizer` / :class:`ImageTokenizer` as real ``nemo.core.ModelPT`` subclasses.

Drop-in for ``nemo.collections.common.video_tokenizers.cosmos_tokenizer.CausalVideoTokenizer`` (NeMo 2.x; gone in
3.0)::

    from nemo_cosmos_tokenizer.integrations.nemo import CausalVideoTokenizer

    CausalVideoTokenizer.list_available_models()          # the 26 released models (every class lists all)
    model = CausalVideoTokenizer.from_pretrained("Cosmos-0.1-Tokenizer-DV4x8x8", device="cpu")
    (indices, codes) = model.encode(x)
    model.save_to("dv4x8x8.nemo")
    model = CausalVideoTokenizer.restore_from("dv4x8x8.nemo")

Design: the NeMo model *wraps* the plain inference tokenizer (:mod:`nemo_cosmos_tokenizer.inference`) as its
``tokenizer`` submodule and delegates ``encode`` / ``decode`` / ``autoencode`` / ``forward`` / ``from_pretrained``
to it. A ModelPT cannot *be* the core class: defining it needs NeMo and Lightning at import time (seconds, and a
large optional dependency), its constructor takes a DictConfig and a Trainer, and the core must stay importable
with torch alone. Wrapping keeps one implementation of loading and inference, and NeMo users get exactly the same
behaviour.

Importing this module imports NeMo and appends this module's prefix to NeMo 3's
``nemo.core.classes.common.ALLOWED_TARGET_PREFIXES``, without which ``restore_from`` refuses the class.
The ``.nemo`` file holds the config (architecture, dtype, loaded parts, NeMo's field names) and the native weights
(a model loaded in jit mode is converted on save).
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import torch

try:
    from nemo.core.classes.common import PretrainedModelInfo
    from nemo.core.classes.modelPT import ModelPT
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError(
        "the NeMo integration needs NeMo: pip install \"nemo-cosmos-tokenizer[nemo]\" (nemo_toolkit[core])"
    ) from err
from omegaconf import DictConfig, OmegaConf, open_dict

from ..config import TokenizerConfig
from ..inference import tokenizers as core
from ..registry import ALIASES, MODELS

__all__ = ["CausalVideoTokenizer", "CosmosTokenizerModel", "ImageTokenizer", "register_target_prefix"]

TARGET_PREFIX = __name__ + "."


def register_target_prefix() -> None:
    """Let NeMo 3 instantiate (``restore_from`` / ``from_config_dict``) the classes of this module."""
    try:
        from nemo.core.classes import common
    except ImportError:  # pragma: no cover
        return
    prefixes = getattr(common, "ALLOWED_TARGET_PREFIXES", None)
    if isinstance(prefixes, list) and TARGET_PREFIX not in prefixes:
        prefixes.append(TARGET_PREFIX)


register_target_prefix()


class CosmosTokenizerModel(ModelPT):
    """A Cosmos tokenizer of any family as a NeMo model (see the module docstring).

    Config fields: ``tokenizer_config`` (the architecture, ``TokenizerConfig.to_dict()``), ``tokenizer_type``
    (released name or ``null``), ``dtype``, ``load_enc_model``, ``load_dec_model``, ``load_full_model``,
    ``use_pytorch`` (NeMo's names; weights in a ``.nemo`` are always native).
    """

    FAMILIES: tuple[str, ...] = ("CI", "DI", "CV", "DV")

    def __init__(self, cfg: DictConfig | Mapping[str, Any], trainer=None, *,
                 tokenizer: core._CosmosInference | None = None) -> None:
        super().__init__(cfg=cfg, trainer=trainer)
        if tokenizer is None:
            from ..networks import build_tokenizer

            config = TokenizerConfig.from_dict(OmegaConf.to_container(self.cfg.tokenizer_config, resolve=True))
            parts = [p for p, on in (("encoder", self.cfg.get("load_enc_model", True)),
                                     ("decoder", self.cfg.get("load_dec_model", True))) if on]
            tokenizer = core.tokenizer_class(config.family).from_network(
                build_tokenizer(config), parts=parts or ["encoder", "decoder"], device="cpu",
                dtype=self.cfg.get("dtype", "bfloat16"), name=self.cfg.get("tokenizer_type"),
            )
        family = tokenizer.config.family if tokenizer.config is not None else None
        from ..hub.resolve import check_family

        check_family(family, self.FAMILIES, tokenizer.name or "this checkpoint", type(self).__name__)
        self.tokenizer = tokenizer

    # ------------------------------------------------------------------------------------------ construction
    @classmethod
    def _config_for(cls, tokenizer: core._CosmosInference, load_full_model: bool = False) -> DictConfig:
        if tokenizer.config is None:
            raise ValueError("cannot describe a tokenizer of unknown architecture; pass tokenizer_config=")
        dtype = str(tokenizer.dtype).removeprefix("torch.")
        return OmegaConf.create({
            "tokenizer_type": tokenizer.name,
            "tokenizer_config": tokenizer.config.to_dict(),
            "dtype": dtype,
            "load_enc_model": bool(tokenizer._has_encoder),
            "load_dec_model": bool(tokenizer._has_decoder),
            "load_full_model": bool(load_full_model),
            "use_pytorch": tokenizer.mode == "torch",
        })

    @classmethod
    def from_tokenizer(cls, tokenizer: core._CosmosInference, load_full_model: bool = False) -> "CosmosTokenizerModel":
        """Wrap an inference tokenizer (``nemo_cosmos_tokenizer.CausalVideoTokenizer`` / ``ImageTokenizer``)."""
        return cls(cls._config_for(tokenizer, load_full_model), tokenizer=tokenizer)

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
        tokenizer_config: Any = None,
        *,
        tokenizer_type: str | None = None,
        ema: bool = False,
        latent_stats: bool | None = None,
    ) -> "CosmosTokenizerModel":
        """Same arguments and behaviour as :meth:`nemo_cosmos_tokenizer.CausalVideoTokenizer.from_pretrained`
        (a superset of NeMo's, with ``ema`` / ``latent_stats`` for the Cosmos-Tokenize1 repositories), returning this
        NeMo model. Overrides ModelPT's NGC-based ``from_pretrained``."""
        if name_or_path is None and tokenizer_type is None and cls.FAMILIES == core.CausalVideoTokenizer.FAMILIES:
            tokenizer_type = core.CausalVideoTokenizer.DEFAULT_MODEL
        name = tokenizer_type if name_or_path is None else name_or_path
        if name is None:
            raise TypeError(f"{cls.__name__}.from_pretrained() needs a model name or directory")
        inference_cls = cls._pick_inference_class(name, tokenizer_config)
        tokenizer = inference_cls.from_pretrained(
            name, load_encoder=load_encoder, load_decoder=load_decoder, load_full_model=load_full_model,
            use_pytorch=use_pytorch, dtype=dtype, device=device, cache_dir=cache_dir, revision=revision, token=token,
            local_files_only=local_files_only, tokenizer_config=tokenizer_config, ema=ema, latent_stats=latent_stats,
        )
        return cls.from_tokenizer(tokenizer, load_full_model=load_full_model)

    @classmethod
    def _pick_inference_class(cls, name: Any, tokenizer_config: Any) -> type[core._CosmosInference]:
        if cls.FAMILIES == core.CausalVideoTokenizer.FAMILIES:
            return core.CausalVideoTokenizer
        if cls.FAMILIES == core.ImageTokenizer.FAMILIES:
            return core.ImageTokenizer
        # The family-agnostic model: ask the registry / config which family this is.
        from ..hub.resolve import config_from_path, parse_tokenizer_config
        from ..hub.sources import resolve_tokenizer_source

        if tokenizer_config is not None:
            return core.tokenizer_class(parse_tokenizer_config(tokenizer_config).family)
        source = resolve_tokenizer_source(name)  # the one resolver: built-ins and released names know their family
        if source.family is not None:
            return core.tokenizer_class(source.family)
        config, _ = config_from_path(name)
        if config is None:
            raise ValueError(f"cannot tell the family of {name}; use CausalVideoTokenizer or ImageTokenizer")
        return core.tokenizer_class(config.family)

    @classmethod
    def list_available_models(cls) -> list[PretrainedModelInfo]:
        """One :class:`PretrainedModelInfo` for each of the 26 released models.

        ``class_`` names the class that loads each one (:class:`CausalVideoTokenizer` for CV/DV,
        :class:`ImageTokenizer` for CI/DI), as NeMo base classes list the models of their subclasses.
        """
        aliases: dict[str, list[str]] = {}
        for alias, name in ALIASES.items():
            aliases.setdefault(name, []).append(alias)
        infos = []
        for name, spec in MODELS.items():
            c = spec.config
            model_cls = CausalVideoTokenizer if c.is_video else ImageTokenizer
            kind = {"CI": "continuous image", "DI": "discrete image", "CV": "continuous causal video",
                    "DV": "discrete causal video"}[c.family]
            infos.append(PretrainedModelInfo(
                pretrained_model_name=name,
                description=f"NVIDIA Cosmos {kind} tokenizer, {c.compression_label} compression"
                            + (f", {c.codebook_size} FSQ codes" if c.is_discrete else f", {c.latent_channels}-channel latent")
                            + f". Loaded from the Hugging Face Hub: {model_cls.__name__}.from_pretrained({name!r}).",
                location=f"https://huggingface.co/{spec.hub_repo}",
                class_=model_cls,
                aliases=aliases.get(name),
            ))
        return infos

    # -------------------------------------------------------------------------------------------- saving
    def save_to(self, save_path: str) -> None:
        """Save a ``.nemo`` archive (config + native weights; jit-mode models are converted first)."""
        if self.tokenizer.mode == "jit":
            jit_tokenizer = self.tokenizer
            self.tokenizer = jit_tokenizer.to_native()
            try:
                with open_dict(self._cfg):
                    self._cfg.use_pytorch = True
                super().save_to(save_path)
            finally:
                self.tokenizer = jit_tokenizer
                with open_dict(self._cfg):
                    self._cfg.use_pytorch = False
        else:
            super().save_to(save_path)

    # ----------------------------------------------------------------------------------------- inference
    @property
    def config(self) -> TokenizerConfig | None:
        """The architecture (:class:`~nemo_cosmos_tokenizer.config.TokenizerConfig`)."""
        return self.tokenizer.config

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """See :meth:`nemo_cosmos_tokenizer.CausalVideoTokenizer.encode`."""
        return self.tokenizer.encode(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """See :meth:`nemo_cosmos_tokenizer.CausalVideoTokenizer.decode`."""
        return self.tokenizer.decode(z)

    def autoencode(self, x: torch.Tensor) -> torch.Tensor:
        """See :meth:`nemo_cosmos_tokenizer.CausalVideoTokenizer.autoencode`."""
        return self.tokenizer.autoencode(x)

    def forward(self, *args, **kwargs):
        """uint8 numpy in, uint8 numpy out: see the inference class's ``forward``."""
        return self.tokenizer(*args, **kwargs)

    # ModelPT's abstract data hooks: this model is inference-only.
    def setup_training_data(self, train_data_config) -> None:
        pass

    def setup_validation_data(self, val_data_config) -> None:
        pass


class CausalVideoTokenizer(CosmosTokenizerModel):
    """NeMo model of a causal video tokenizer (CV / DV); NeMo's class name, same API."""

    FAMILIES = core.CausalVideoTokenizer.FAMILIES


class ImageTokenizer(CosmosTokenizerModel):
    """NeMo model of an image tokenizer (CI / DI)."""

    FAMILIES = core.ImageTokenizer.FAMILIES
