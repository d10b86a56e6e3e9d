"""The settings of one tokenizer training run (:class:`TokenizerTrainConfig`), plain data without torch.

Settings come, in order, from the defaults, a YAML file (``--config``), command-line flags and OmegaConf dotted
overrides (``key=value``): :func:`load_train_config`. Every combination that cannot work is refused on creation
with a message that names the fix (:class:`TrainConfigError`).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

__all__ = ["MODES", "TokenizerTrainConfig", "TrainConfigError", "load_train_config", "ARCHITECTURE_FIELDS"]

#: ``full``: every tokenizer weight trains. ``encoder+decoder``: the same thing under its explicit name (FSQ has no
#: learned parameters and the discriminator is a loss network, not part of the tokenizer, so there is nothing
#: else to leave out). ``decoder``: encoder and quant_conv frozen (ids of every clip unchanged).
MODES = ("full", "encoder+decoder", "decoder")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune-no-cudagraphs")

#: TokenizerConfig fields that flags may set (``None``: taken from ``architecture`` / ``init`` / the default DV).
ARCHITECTURE_FIELDS = ("family", "spatial_compression", "temporal_compression", "patch_size", "channels",
                       "channels_mult", "num_res_blocks", "z_channels", "latent_channels", "levels")

#: FSQ indices are summed in float32 (exact below 2**24, :mod:`nemo_cosmos_tokenizer.quantizers.fsq`).
FSQ_EXACT_LIMIT = 2**24


class TrainConfigError(ValueError):
    """A setting that cannot work; ``hint`` says what to do."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message + (f" ({hint})" if hint else ""))
        self.message = message
        self.hint = hint


@dataclass(frozen=True)
class TokenizerTrainConfig:
    """One training or fine-tuning run of a Cosmos tokenizer (see the README, "Train or fine-tune a tokenizer")."""

    # ------------------------------------------------------------------------------------------------ data
    input: Optional[str] = None
    """Training media, as the dataset builder takes them: a folder, a .jsonl/.csv/.parquet manifest, .tar shards
    (a folder of them, a brace pattern or a shard list), local or on object storage."""
    val_input: Optional[str] = None
    """Held-out media scored every ``eval_every`` steps; ``None``: the last ``val_samples`` of ``input`` (at most a
    tenth of it) are held out and not trained on."""
    val_samples: int = 8
    """Held-out samples scored (from ``val_input``, or taken from ``input``)."""
    output_dir: Optional[str] = None
    """``final/`` (our safetensors format), ``checkpoints/step_N/``, ``train_log.jsonl`` and ``inputs/`` go here."""

    # -------------------------------------------------------------------------------------------- network
    architecture: Optional[str] = None
    """A released name (its architecture only; no weights), a built-in name (its seeded weights), or ``None``."""
    family: Optional[str] = None
    """``CI``, ``DI`` (image) or ``CV``, ``DV`` (video); ``None``: that of ``architecture``/``init``, else DV."""
    spatial_compression: Optional[int] = None
    temporal_compression: Optional[int] = None
    patch_size: Optional[int] = None
    channels: Optional[int] = None
    channels_mult: Optional[tuple[int, ...]] = None
    num_res_blocks: Optional[int] = None
    z_channels: Optional[int] = None
    latent_channels: Optional[int] = None
    levels: Optional[tuple[int, ...]] = None
    """FSQ levels of a discrete model (``prod(levels)`` codes)."""
    max_codebook_size: int = 65000
    """Refuse ``levels`` with more codes: the emu3 layout has room for 65,000 visual ids, cosmos_ar stores uint16.
    Up to 2**24 for the generic layout."""
    init: Optional[str] = None
    """Start from these weights (a released or built-in name, a folder of .jit or safetensors files, a .jit file),
    loaded strictly into the same architecture; ``None``: from scratch."""
    init_ema: bool = False
    """Take ``init``'s EMA weights (``ema.jit``, e.g. Cosmos-Tokenize1-DV8x16x16-720p)."""
    mode: str = "full"
    """``full`` (= ``encoder+decoder``) or ``decoder`` (encoder and quant_conv frozen: every id stays valid)."""

    # --------------------------------------------------------------------------------------------- clips
    num_frames: int = 17
    """Frames per training clip (``1 + k * temporal_compression``)."""
    resolution: tuple[int, int] = (256, 256)
    """``[height, width]`` of the random crops (multiples of the spatial compression)."""
    fps: Optional[float] = None
    """Target frame rate of the clips (``None``: every source frame)."""
    image_every: int = 0
    """Video models: every ``image_every``-th step is a batch of single frames (images and video frames);
    0 = video batches only."""

    # ------------------------------------------------------------------------------------------ optimiser
    batch_size: int = 8
    """Global batch (clips per step over all processes; a multiple of the number of processes)."""
    max_steps: int = 1000
    lr: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.999)
    weight_decay: float = 0.01
    warmup_steps: int = 100
    """Linear warm-up from 0 to ``lr``, then constant (``lr_schedule=constant``) or cosine to ``min_lr``."""
    lr_schedule: str = "constant"
    min_lr: float = 0.0
    grad_clip: float = 1.0
    """Global gradient-norm clip (0 = off)."""
    ema_decay: float = 0.0
    """EMA of the trained weights (0 = off; 0.9999 in NVIDIA's recipe); ``final/`` then holds the EMA weights."""
    ema_warmup: bool = True
    """The EMA's decay at update ``n`` (0-based) is ``min(ema_decay, (1 + n) / (10 + n))`` (TensorFlow's
    ``ExponentialMovingAverage`` with ``num_updates``), so a run of a few thousand steps does not keep most of its
    starting weights in the EMA: with a constant 0.999, ``0.999^1200 = 30 %`` of the EMA after 1,200 steps is the
    random initialisation. ``False``: the constant decay from the first step."""

    # --------------------------------------------------------------------------------------------- losses
    l1_weight: float = 1.0
    l2_weight: float = 0.0
    """Mean squared error on pixels (not in NVIDIA's recipe, which has L1 and perceptual terms). PSNR is its
    logarithm, and its gradient grows with the error, so it pulls hardest where a reconstruction is furthest off
    (the demo's moving object) where L1 pulls every pixel alike."""
    perceptual_weight: float = 0.0
    """LPIPS-VGG16 perceptual loss weight (NVIDIA: 0.1 with VGG-19 features); needs the weight files below."""
    perceptual_start: int = 0
    vgg16_weights: Optional[str] = None
    """torchvision's ``vgg16-397923af.pth`` (else searched as ``evaluate`` does: ``$NCT_EVAL_WEIGHTS``, caches)."""
    lpips_heads: Optional[str] = None
    """The LPIPS v0.1 VGG heads ``vgg.pth`` (else searched as ``evaluate`` does)."""
    adversarial_weight: float = 0.0
    """Hinge GAN loss of a patch discriminator on frames (0 = off)."""
    adversarial_start: int = 0
    """Step at which the discriminator and the adversarial loss start."""
    discriminator_lr: float = 4e-4
    discriminator_channels: int = 64

    # ---------------------------------------------------------------------------------- run and outputs
    eval_every: int = 500
    save_every: int = 1000
    log_every: int = 10
    resume: bool = True
    """Continue from ``output_dir/checkpoints/latest`` when it exists."""
    export_jit: bool = False
    """Also write NVIDIA's ``encoder.jit`` / ``decoder.jit`` / ``autoencoder.jit`` into ``output_dir/jit/``."""
    device: str = "auto"
    """``auto`` (the local rank's GPU when CUDA is available, else CPU), ``cuda``, ``cpu``."""
    dtype: str = "bfloat16"
    """Autocast dtype of the networks: ``bfloat16`` or ``float32`` (weights and optimiser stay float32)."""
    compile: bool = False
    """``torch.compile`` the encoder and decoder passes of each step (``dynamic=False``). A small network's step is
    bound by the host (~6,700 ATen calls a step for ``recipes/train_tokenizer_demo.yaml``), which compiling fuses;
    the first step compiles (tens of seconds). If compiling fails, the run warns and goes on eagerly. CUDA only: on
    a CPU it warns and trains eagerly (torch's Inductor crashed this network's compiled backward there). Speed only:
    a resumed run may change it."""
    compile_mode: str = "default"
    """``torch.compile`` mode with ``compile``: ``default`` (fused kernels), ``reduce-overhead`` (also CUDA graphs:
    the step's kernels are replayed with one launch each, what a step bound by the host needs most) or
    ``max-autotune-no-cudagraphs``. Speed only."""
    seed: int = 0
    num_workers: int = 2
    """Data-loading processes per training process (0: read in the training process; at most one per CPU the process
    may use)."""
    cache_mb: int = 0
    """Each data-loading process keeps whole decoded training videos in memory up to this many MiB (0: none): a set
    that fits (the demo's 2,048 clips: 1.7 GB) is decoded once per process, not once per epoch. Speed only."""
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("channels_mult", "levels", "resolution", "betas"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, tuple):
                object.__setattr__(self, name, tuple(value))
        if len(self.resolution) != 2:
            raise TrainConfigError(f"resolution takes [height, width], got {list(self.resolution)}")
        if self.mode not in MODES:
            raise TrainConfigError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.dtype not in ("bfloat16", "float32"):
            raise TrainConfigError(f"dtype must be bfloat16 or float32, got {self.dtype!r}")
        if self.compile_mode not in COMPILE_MODES:
            raise TrainConfigError(f"compile_mode must be one of {COMPILE_MODES}, got {self.compile_mode!r}")
        if self.lr_schedule not in ("constant", "cosine"):
            raise TrainConfigError(f"lr_schedule must be constant or cosine, got {self.lr_schedule!r}")
        positive = ("batch_size", "max_steps", "eval_every", "save_every", "log_every", "num_frames",
                    "discriminator_channels")
        for name in positive:
            if getattr(self, name) < 1:
                raise TrainConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        non_negative = ("warmup_steps", "num_workers", "cache_mb", "val_samples", "image_every", "perceptual_weight",
                        "adversarial_weight", "adversarial_start", "perceptual_start", "l1_weight", "l2_weight", "grad_clip",
                        "weight_decay", "min_lr")
        for name in non_negative:
            if getattr(self, name) < 0:
                raise TrainConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not self.lr > 0:
            raise TrainConfigError(f"lr must be > 0, got {self.lr}")
        if not 0 <= self.ema_decay < 1:
            raise TrainConfigError(f"ema_decay must be in [0, 1), got {self.ema_decay}", "0 turns EMA off")
        if min(self.resolution) < 1:
            raise TrainConfigError(f"resolution must be positive, got {list(self.resolution)}")
        if self.l1_weight == 0 and self.l2_weight == 0 and self.perceptual_weight == 0:
            raise TrainConfigError("l1_weight, l2_weight and perceptual_weight are all 0: nothing supervises the decoder")
        if self.init_ema and self.init is None:
            raise TrainConfigError("init_ema takes the EMA weights of --init, but no --init is given")
        if self.levels is not None:
            import math

            if any(level < 2 for level in self.levels):
                raise TrainConfigError(f"every FSQ level must be >= 2, got {list(self.levels)}")
            codes = math.prod(self.levels)
            limit = min(self.max_codebook_size, FSQ_EXACT_LIMIT)
            if codes > limit:
                raise TrainConfigError(
                    f"levels {list(self.levels)} give {codes:,} codes, more than the vocabulary allows ({limit:,})",
                    "use fewer or smaller levels (8,8,8,5,5,5 = 64,000), or raise --max-codebook-size (up to "
                    f"{FSQ_EXACT_LIMIT:,}) if your token layout has room for them",
                )

    @property
    def trains_encoder(self) -> bool:
        """False in ``decoder`` mode (encoder and quant_conv frozen)."""
        return self.mode != "decoder"

    def architecture_overrides(self) -> dict[str, Any]:
        """The architecture fields set here (not ``None``)."""
        return {name: getattr(self, name) for name in ARCHITECTURE_FIELDS if getattr(self, name) is not None}

    def require_paths(self) -> None:
        missing = [f"--{n.replace('_', '-')}" for n in ("input", "output_dir") if not getattr(self, n)]
        if missing:
            raise TrainConfigError(f"missing {' and '.join(missing)}", "give them as flags or in the --config YAML")

    def to_dict(self) -> dict[str, Any]:
        """Plain YAML/JSON-friendly dict (lists for tuples)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    def replace(self, **changes: Any) -> "TokenizerTrainConfig":
        return dataclasses.replace(self, **changes)


def _check_keys(data: Mapping[str, Any], where: str) -> None:
    known = {f.name for f in dataclasses.fields(TokenizerTrainConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        import difflib

        close = [m for k in unknown for m in difflib.get_close_matches(k, sorted(known), n=1)]
        raise TrainConfigError(f"unknown setting(s) {unknown} in {where}",
                               f"did you mean {close}?" if close else "see train-tokenizer --help for the settings")


def load_train_config(
    yaml_path: str | os.PathLike | None = None,
    flags: Mapping[str, Any] | None = None,
    dotlist: Sequence[str] = (),
) -> TokenizerTrainConfig:
    """Defaults, then the YAML file, then ``flags`` (``None`` values ignored), then ``key=value`` overrides."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    merged = OmegaConf.create(TokenizerTrainConfig().to_dict())
    try:
        if yaml_path:
            data = OmegaConf.load(yaml_path)
            _check_keys(data, str(yaml_path))
            merged = OmegaConf.merge(merged, data)
        if flags:
            merged = OmegaConf.merge(merged, {k: v for k, v in flags.items() if v is not None})
        if dotlist:
            bad = [item for item in dotlist if "=" not in item]
            if bad:
                raise TrainConfigError(f"override {bad[0]!r} is not key=value", "e.g. lr=2e-4 or levels=[8,8,8,5,5,5]")
            overrides = OmegaConf.from_dotlist(list(dotlist))
            _check_keys(overrides, "the key=value overrides")
            merged = OmegaConf.merge(merged, overrides)
    except OmegaConfBaseException as err:
        raise TrainConfigError(f"cannot read the settings: {str(err).splitlines()[0]}") from err
    values = OmegaConf.to_container(merged, resolve=True)
    return TokenizerTrainConfig(**{name: _coerce(name, value) for name, value in values.items()})


def _coerce(name: str, value: Any) -> Any:
    """``value`` as the type of field ``name`` (YAML and ``key=value`` give strings, ints for floats, lists)."""
    import typing

    if value is None:
        return None
    kind = typing.get_type_hints(TokenizerTrainConfig)[name]
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    base = args[0] if typing.get_origin(kind) is typing.Union and args else kind  # Optional[X] -> X
    try:
        if typing.get_origin(base) is tuple:
            if not isinstance(value, (list, tuple)):
                raise TypeError("a list")
            item = typing.get_args(base)[0]
            return tuple(item(v) for v in value)
        if base is bool:
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("true", "false", "1", "0", "yes", "no"):
                return str(value).lower() in ("true", "1", "yes")
            raise TypeError("true or false")
        if base is int and isinstance(value, float) and not value.is_integer():
            raise TypeError("an integer")
        return base(value)
    except (TypeError, ValueError) as err:
        raise TrainConfigError(f"{name} must be {getattr(base, '__name__', base)}, got {value!r}") from err
