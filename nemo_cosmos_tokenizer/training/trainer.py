"""One training step and the state of a run (:class:`Trainer`); the loop over steps is :mod:`.loop`.

Per step: the batch of this process (:class:`.data.ClipBatches`), the forward pass under ``dtype`` autocast (FSQ in
float32 whatever the autocast; in ``decoder`` mode the frozen encoder runs without gradients), the losses of
:mod:`.losses`, one all-reduce that averages the gradients of all processes (equal local batches: the gradient
of the global batch), global-norm clipping, AdamW with linear warm-up, the EMA, then the discriminator's step when
the adversarial loss is on. Weights and optimiser state stay float32.
"""

from __future__ import annotations

import copy
import logging
import math
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch

from .. import distributed as dist_utils
from ..networks import CosmosTokenizer
from .checkpoints import rng_state, set_rng_state
from .config import TokenizerTrainConfig, TrainConfigError
from .data import ManifestError, index_samples, load_indexed, plan_directory
from .discriminator import PatchDiscriminator
from .losses import PerceptualLoss, hinge_discriminator_loss, hinge_generator_loss, l1_loss, l2_loss
from .model import prepare_model, set_train_mode, trainable_parameters
from .validation import evaluate_clips

log = logging.getLogger(__name__)

__all__ = ["TERMS", "Trainer", "ema_decay_at", "lr_at", "mean_over_processes"]

#: Device types where ``compile`` compiles the step. On the CPU, torch 2.13's Inductor code for the demo network's
#: backward aborted the process (glibc "corrupted double-linked list" / a segfault in a channels-last 1x1x1
#: ``convolution_backward`` after a fused group-norm kernel) - no exception to fall back from - and a CPU step is
#: not bound by the host anyway.
COMPILE_DEVICE_TYPES = ("cuda",)
TERMS = ("loss", "l1", "perceptual", "adversarial", "discriminator", "l2")


def lr_at(config: TokenizerTrainConfig, step: int) -> float:
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    if config.lr_schedule == "cosine":
        span = max(1, config.max_steps - config.warmup_steps)
        progress = min(1.0, (step - config.warmup_steps) / span)
        return config.min_lr + 0.5 * (config.lr - config.min_lr) * (1 + math.cos(math.pi * progress))
    return config.lr


def ema_decay_at(config: TokenizerTrainConfig, step: int) -> float:
    """The EMA decay of the update after step ``step`` (0-based: ``step`` updates came before it)."""
    if not config.ema_warmup:
        return config.ema_decay
    return min(config.ema_decay, (1.0 + step) / (10.0 + step))


def _sync_gradients(params: list[torch.nn.Parameter], world_size: int) -> None:
    """Average the gradients over the processes: one flat all-reduce (missing gradients count as zeros)."""
    if world_size == 1 or not dist_utils.is_initialized():
        return
    import torch.distributed as dist

    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world_size
    at = 0
    for p, g in zip(params, grads):
        p.grad = flat[at : at + g.numel()].view_as(g).clone()
        at += g.numel()


def mean_over_processes(values: torch.Tensor, world_size: int) -> torch.Tensor:
    if world_size > 1 and dist_utils.is_initialized():
        import torch.distributed as dist

        values = values.clone()
        dist.all_reduce(values)
        values /= world_size
    return values


class Trainer:
    """Networks, optimisers, losses and the step of one run, on ``device``."""

    def __init__(self, config: TokenizerTrainConfig, env, device: torch.device) -> None:
        self.config, self.env, self.device = config, env, device
        self.world = env.world_size
        if config.batch_size % self.world:
            raise TrainConfigError(f"batch_size {config.batch_size} is not a multiple of the {self.world} processes",
                                   f"use a batch_size divisible by {self.world} (it is the global batch)")
        self.amp_dtype = torch.bfloat16 if config.dtype == "bfloat16" else None
        if self.amp_dtype is not None and device.type == "cpu":
            log.warning("bfloat16 autocast on the CPU is slow; --dtype float32 is faster there")
        self.perceptual = self._perceptual()
        torch.manual_seed(config.seed)
        prepared = prepare_model(config)
        self.source = prepared.source
        self.net = prepared.network.to(device)
        set_train_mode(self.net, config, True)  # frozen parts in eval mode
        self.arch = self.net.config
        self._check_clip_shape()
        self.params = [p for _, p in trainable_parameters(self.net)]
        # The step's two passes; compiled wrappers of the same bound methods (same parameters) with ``compile``.
        self._encode, self._decode = self.net.encode_pre_quant, self.net.decode_latent
        compiling = config.compile and self.device.type in COMPILE_DEVICE_TYPES
        if config.compile and not compiling:
            log.warning("--compile applies on %s devices only (on a CPU, torch's Inductor code for this network's "
                        "backward crashed the process); training eagerly on %s", "/".join(COMPILE_DEVICE_TYPES),
                        self.device)
        self._compile_unproven = compiling  # until a compiled step has run: a failure then falls back to eager
        if compiling:
            self._encode = torch.compile(self.net.encode_pre_quant, dynamic=False, mode=config.compile_mode)
            self._decode = torch.compile(self.net.decode_latent, dynamic=False, mode=config.compile_mode)
        # CUDA graphs reuse their output memory on the next replay: each step tells them a new step began.
        self._graphed = compiling and config.compile_mode == "reduce-overhead"
        self.opt = torch.optim.AdamW(self.params, lr=config.lr, betas=config.betas, weight_decay=config.weight_decay)
        self.ema_net = None
        if config.ema_decay > 0:
            self.ema_net = copy.deepcopy(self.net).eval().requires_grad_(False)
            trained = {name for name, _ in trainable_parameters(self.net)}
            # Only the trained weights move; frozen ones stay bit-identical copies (a lerp would round them).
            self.ema_params = [p for name, p in self.ema_net.named_parameters() if name in trained]
        self.disc = self.disc_opt = None
        if config.adversarial_weight > 0:
            self.disc = PatchDiscriminator(config.discriminator_channels).to(device)
            self.disc_opt = torch.optim.AdamW(self.disc.parameters(), lr=config.discriminator_lr, betas=config.betas,
                                              weight_decay=config.weight_decay)
        if self.perceptual is not None:
            self.perceptual.to(device)

    # ------------------------------------------------------------------------------------------------ set-up
    def _perceptual(self) -> PerceptualLoss | None:
        if self.config.perceptual_weight == 0:
            return None
        from ..evaluation.weights import MissingWeightsError

        try:
            return PerceptualLoss.from_files(self.config.vgg16_weights, self.config.lpips_heads)
        except MissingWeightsError as err:
            raise TrainConfigError(f"the perceptual loss needs its weight files: {str(err).splitlines()[0]}",
                                   "pass --vgg16-weights and --lpips-heads (or put the files in $NCT_EVAL_WEIGHTS), "
                                   "or set --perceptual-weight 0") from err

    def _check_clip_shape(self) -> None:
        h, w = self.config.resolution
        shape = (1, 3, self.config.num_frames, h, w) if self.arch.is_video else (1, 3, h, w)
        try:
            self.arch.check_input_shape(shape)
        except ValueError as err:
            raise TrainConfigError(f"clips of {self.config.num_frames} x {h} x {w} do not fit the "
                                   f"{self.arch.family}{self.arch.compression_label} architecture: {err}",
                                   f"set --num-frames to 1 + k*{self.arch.temporal_compression} and --resolution to "
                                   f"multiples of {self.arch.spatial_compression}") from err
        if not self.arch.is_video and self.config.num_frames != 1:
            log.info("image model: num_frames %d ignored (one frame per sample)", self.config.num_frames)

    def samples(self):
        """Training and held-out samples: indexed by rank 0, read from its index by the others."""
        config, out = self.config, Path(self.config.output_dir)
        error = None
        if self.env.is_main:
            try:
                index_samples(config.input, plan_directory(out, "train"))
                if config.val_input:
                    index_samples(config.val_input, plan_directory(out, "val"))
            except (ManifestError, OSError) as err:
                error = str(err)
        error = dist_utils.broadcast_object(error)
        if error is not None:
            raise TrainConfigError(f"cannot read the inputs: {error}", "check --input / --val-input")
        train = load_indexed(plan_directory(out, "train"))
        usable = (lambda s: not s.is_image) if self.arch.is_video else (lambda s: True)  # clips for video models
        if config.val_input:
            val = [s for s in load_indexed(plan_directory(out, "val")) if usable(s)][: config.val_samples]
        else:
            count = min(config.val_samples, len(train) // 10)  # at most a tenth of the input is held out
            candidates = [s for s in train if usable(s)]
            held = {s.index for s in candidates[len(candidates) - count:]} if count else set()
            train, val = [s for s in train if s.index not in held], [s for s in train if s.index in held]
        return train, val

    # ------------------------------------------------------------------------------------------------- steps
    def _autocast(self):
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` -> encoder -> FSQ (straight-through) or the latent -> decoder, under the step's autocast."""
        net = self.net
        with self._autocast():
            with torch.no_grad() if not self.config.trains_encoder else nullcontext():
                h = self._encode(x)
            z = net.quantizer.quantize(h) if net.quantizer is not None else h  # float32 codes, straight-through
            return self._decode(z)

    def step(self, x: torch.Tensor, step: int) -> tuple[torch.Tensor, float]:
        config, net = self.config, self.net
        if self._graphed:
            torch.compiler.cudagraph_mark_step_begin()
        try:
            recon = self._reconstruct(x)
        except Exception as err:  # noqa: BLE001 - any compiler failure: the eager passes are the same network
            if not self._compile_unproven:  # eager, or compiled steps already ran: a real error of this step
                raise
            log.warning("torch.compile failed (%s: %s); training on without compiling", type(err).__name__,
                        str(err).splitlines()[0] if str(err) else "")
            self._encode, self._decode = net.encode_pre_quant, net.decode_latent
            self._graphed = False
            recon = self._reconstruct(x)
        self._compile_unproven = False
        terms = torch.zeros(len(TERMS), device=self.device)
        l1 = l1_loss(recon, x)
        loss = config.l1_weight * l1
        terms[1] = l1.detach()
        if config.l2_weight > 0:
            l2 = l2_loss(recon, x)
            loss = loss + config.l2_weight * l2
            terms[5] = l2.detach()
        if self.perceptual is not None and step >= config.perceptual_start:
            with self._autocast():
                perceptual = self.perceptual(recon, x)
            loss = loss + config.perceptual_weight * perceptual
            terms[2] = perceptual.detach()
        adversarial = self.disc is not None and step >= config.adversarial_start
        if adversarial:
            self.disc.requires_grad_(False)  # the generator's loss moves the generator only
            with self._autocast():
                g_loss = hinge_generator_loss(self.disc(recon))
            self.disc.requires_grad_(True)
            loss = loss + config.adversarial_weight * g_loss
            terms[3] = g_loss.detach()
        terms[0] = loss.detach()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        _sync_gradients(self.params, self.world)
        if config.grad_clip > 0:
            grad_norm = torch.nn.utils.clip_grad_norm_(self.params, config.grad_clip)
        else:
            grad_norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in self.params]))
        self.opt.step()
        if self.ema_net is not None:
            with torch.no_grad():
                torch._foreach_lerp_(self.ema_params, self.params, 1.0 - ema_decay_at(config, step))
        if adversarial:
            with self._autocast():
                d_loss = hinge_discriminator_loss(self.disc(x), self.disc(recon.detach()))
            self.disc_opt.zero_grad(set_to_none=True)
            d_loss.backward()
            disc_params = list(self.disc.parameters())
            _sync_gradients(disc_params, self.world)
            self.disc_opt.step()
            terms[4] = d_loss.detach()
        return terms, grad_norm

    def final_network(self) -> CosmosTokenizer:
        return self.ema_net if self.ema_net is not None else self.net

    def evaluate(self, clips) -> dict[str, Any]:
        net = self.final_network()
        set_train_mode(self.net, self.config, False)
        try:
            return evaluate_clips(net, clips, device=self.device, autocast_dtype=self.amp_dtype)
        finally:
            set_train_mode(self.net, self.config, True)

    # ---------------------------------------------------------------------------------------------- state
    def state(self, step: int, history: list, window: torch.Tensor, window_steps: int) -> dict[str, Any]:
        return {"step": step, "config": self.config.to_dict(), "network": self.net.state_dict(),
                "ema": self.ema_net.state_dict() if self.ema_net is not None else None,
                "optimizer": self.opt.state_dict(),
                "discriminator": self.disc.state_dict() if self.disc is not None else None,
                "discriminator_optimizer": self.disc_opt.state_dict() if self.disc_opt is not None else None,
                "rng": rng_state(), "history": history, "window": window.cpu(), "window_steps": window_steps}

    def restore(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["network"])
        self.opt.load_state_dict(state["optimizer"])
        if self.ema_net is not None:
            self.ema_net.load_state_dict(state["ema"])
        if self.disc is not None:
            self.disc.load_state_dict(state["discriminator"])
            self.disc_opt.load_state_dict(state["discriminator_optimizer"])
        set_rng_state(state["rng"])
