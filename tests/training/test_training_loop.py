"""train_tokenizer end to end on tiny networks (CPU, seconds): the loss falls, the outputs load, decoder mode keeps
every id, a resumed run is the uninterrupted run."""

from __future__ import annotations

import pytest
import torch

from training_helpers import tiny_config, tiny_network

from nemo_cosmos_tokenizer.hub.convert import load_pretrained, save_pretrained
from nemo_cosmos_tokenizer.training import train_tokenizer
from nemo_cosmos_tokenizer.training.data import read_eval_clips
from nemo_cosmos_tokenizer.training.data import load_indexed, plan_directory
from nemo_cosmos_tokenizer.inference.preprocess import to_unit_range


def _eval_batch(config) -> torch.Tensor:
    """The held-out clips of ``config`` as the model input ``[N, 3, T, H, W]`` in [-1, 1]."""
    samples = load_indexed(plan_directory(config.output_dir, "val"))
    clips, _ = read_eval_clips(samples, num_frames=config.num_frames, resolution=config.resolution,
                               temporal_compression=config.temporal_compression,
                               spatial_compression=config.spatial_compression, fps=None, images=False)
    return to_unit_range(torch.from_numpy(__import__("numpy").stack(clips)))


def test_few_steps_lower_the_loss_and_the_output_loads(clips_dir, tmp_path):
    from nemo_cosmos_tokenizer.inference import CausalVideoTokenizer

    config = tiny_config(clips_dir, tmp_path / "run", max_steps=8, eval_every=8, export_jit=True)
    result = train_tokenizer(config)
    losses = [entry["loss"] for entry in result.history]
    assert len(losses) == 8 and [e["step"] for e in result.history] == list(range(1, 9))
    # From scratch the reconstruction starts near a constant (L1 ~ 0.5-1.3 on these clips); 8 Adam steps at 1e-3
    # more than halve it in every run seen. A broken gradient path (frozen or unsynced weights) leaves it flat.
    assert sum(losses[-2:]) / 2 < 0.8 * sum(losses[:2]) / 2, losses
    assert {"psnr", "ssim", "codes_used"} <= set(result.history[-1])
    assert result.eval["clips"] == 2 and 0 < result.eval["codes_used"] <= 64 and result.eval["psnr"] > 0

    # final/ is our format: the same network through load_pretrained and the inference API.
    final = result.final_dir
    assert (final / "config.json").is_file() and (final / "model.safetensors").is_file()
    assert (final / "train_config.yaml").is_file()
    loaded = load_pretrained(final)
    x = _eval_batch(config)
    with torch.no_grad():
        assert torch.equal(loaded(x), result.network(x))  # same weights, same float32 ops: identical bits
        ids = result.network.encode(x)[0]
    tokenizer = CausalVideoTokenizer.from_pretrained(str(final), device="cpu", dtype="float32")
    assert torch.equal(tokenizer.encode(x)[0], ids)
    # build-dataset --tokenizer <output_dir>/final: the builder's one resolver, encoder only.
    from nemo_cosmos_tokenizer.inference.from_source import load_tokenizer

    builder_side = load_tokenizer(str(final), parts=("encoder",), device="cpu", dtype="float32")
    assert torch.equal(builder_side.encode(x)[0], ids)

    # --export-jit: NVIDIA's layout plus our config.json, loadable as a folder of .jit files.
    assert {p.name for p in result.jit_dir.iterdir()} == {"encoder.jit", "decoder.jit", "autoencoder.jit",
                                                          "config.json"}
    jit = CausalVideoTokenizer.from_pretrained(str(result.jit_dir), device="cpu", dtype="float32")
    assert jit.config == result.network.config and jit.mode == "torch"


def test_decoder_mode_keeps_encoder_weights_and_ids(clips_dir, tmp_path, monkeypatch):
    from nemo_cosmos_tokenizer.training.trainer import Trainer

    init = tiny_network(seed=3)
    save_pretrained(init, tmp_path / "init")
    config = tiny_config(clips_dir, tmp_path / "run", init=str(tmp_path / "init"), mode="decoder", max_steps=4,
                         lr=1e-2, ema_decay=0.5)
    modes = []
    original = Trainer.step

    def step(self, x, step):
        modes.append({name: m.training for name, m in self.net.named_modules() if name})
        return original(self, x, step)

    monkeypatch.setattr(Trainer, "step", step)
    result = train_tokenizer(config)
    for seen in modes:  # the frozen side runs in eval mode, the trained side in train mode, at every step
        assert not any(v for k, v in seen.items() if k.startswith(("encoder", "quant_conv"))), seen
        assert all(v for k, v in seen.items() if k.startswith(("decoder", "post_quant_conv")))
    assert len(modes) == 4
    trained = load_pretrained(result.final_dir)
    before, after = init.state_dict(), trained.state_dict()
    for name in before:
        if name.startswith(("encoder.", "quant_conv.")):
            assert torch.equal(before[name], after[name]), name
    changed = [n for n in before if n.startswith(("decoder.", "post_quant_conv.")) and not torch.equal(before[n], after[n])]
    assert changed, "decoder mode trained nothing"
    x = _eval_batch(config)
    with torch.no_grad():
        assert torch.equal(init.eval().encode(x)[0], trained.encode(x)[0])


def _interrupt_at(monkeypatch, at_step: int) -> None:
    from nemo_cosmos_tokenizer.training.trainer import Trainer

    original = Trainer.step

    def step(self, x, step):
        if step == at_step:
            raise KeyboardInterrupt
        return original(self, x, step)

    monkeypatch.setattr(Trainer, "step", step)


def test_resume_continues_the_same_run(clips_dir, tmp_path, monkeypatch):
    # EMA and the discriminator (from step 2) are part of the state a resume must restore.
    settings = dict(max_steps=6, save_every=3, log_every=2, ema_decay=0.9, adversarial_weight=0.5,
                    adversarial_start=2, discriminator_channels=8, resolution=[64, 64])
    whole = train_tokenizer(tiny_config(clips_dir, tmp_path / "whole", **settings))

    with monkeypatch.context() as patch:
        _interrupt_at(patch, 4)  # checkpoint at 3 steps, killed during the 5th
        with pytest.raises(KeyboardInterrupt):
            train_tokenizer(tiny_config(clips_dir, tmp_path / "cut", **settings))
    assert (tmp_path / "cut" / "checkpoints" / "latest").read_text().strip() == "step_3"
    resumed = train_tokenizer(tiny_config(clips_dir, tmp_path / "cut", **settings))

    keys = ("step", "loss", "l1", "adversarial", "discriminator", "grad_norm", "lr", "psnr")
    # Same process, same threads, same data (a function of the step), same restored state: the same bits.
    assert [{k: e.get(k) for k in keys} for e in resumed.history] == [{k: e.get(k) for k in keys} for e in whole.history]
    a, b = load_pretrained(whole.final_dir).state_dict(), load_pretrained(resumed.final_dir).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(e.get("adversarial") for e in whole.history)


def test_perceptual_loss_from_weight_files(clips_dir, tmp_path):
    from nemo_cosmos_tokenizer.evaluation.lpips_vgg import LPIPSVGG

    # Random VGG16 / LPIPS-head files in the layouts the real ones have (the loader checks keys and shapes).
    torch.manual_seed(0)
    lpips = LPIPSVGG()
    torch.save({f"features.{k}": v for k, v in lpips.features.state_dict().items()}, tmp_path / "vgg16.pth")
    heads = {f"lin{k}.model.1.weight": head.weight.detach().abs() for k, head in enumerate(lpips.heads)}
    torch.save(heads, tmp_path / "vgg.pth")
    config = tiny_config(clips_dir, tmp_path / "run", max_steps=2, perceptual_weight=0.5, perceptual_start=1,
                         vgg16_weights=str(tmp_path / "vgg16.pth"), lpips_heads=str(tmp_path / "vgg.pth"))
    history = train_tokenizer(config).history
    assert "perceptual" not in history[0] and history[1]["perceptual"] > 0
    assert history[1]["loss"] == pytest.approx(history[1]["l1"] + 0.5 * history[1]["perceptual"], rel=1e-6)


def test_image_model_trains_and_loads(clips_dir, tmp_path):
    from nemo_cosmos_tokenizer.inference import ImageTokenizer

    # GroupNorm(32) of the image networks needs widths that are multiples of 32.
    config = tiny_config(clips_dir, tmp_path / "run", family="DI", temporal_compression=None, channels=32,
                         channels_mult=[1, 1], z_channels=8, max_steps=2)
    result = train_tokenizer(config)
    assert result.network.config.family == "DI" and result.eval["clips"] == 2
    tokenizer = ImageTokenizer.from_pretrained(str(result.final_dir), device="cpu", dtype="float32")
    assert tokenizer.config == result.network.config


def test_video_model_with_alternating_image_batches(clips_dir, tmp_path):
    config = tiny_config(clips_dir, tmp_path / "run", max_steps=4, image_every=2)
    history = train_tokenizer(config).history
    assert [e["step"] for e in history] == [1, 2, 3, 4] and all(e["loss"] > 0 for e in history)


def test_init_from_an_nvidia_layout_jit_file(clips_dir, tmp_path):
    from nemo_cosmos_tokenizer.hub.convert import load_jit_state_dict
    from nemo_cosmos_tokenizer.training.checkpoints import export_jit_dir

    # A size NVIDIA never released: the folder's config.json names the architecture of autoencoder.jit.
    jit_dir = export_jit_dir(tiny_network(seed=5), tmp_path / "exported")
    config = tiny_config(clips_dir, tmp_path / "run", init=str(jit_dir / "autoencoder.jit"), mode="decoder",
                         max_steps=1)
    result = train_tokenizer(config)
    assert result.summary["source"] == config.init
    exported = load_jit_state_dict(jit_dir / "encoder.jit")
    trained = result.network.cosmos_state_dict("encoder")
    # bfloat16 weights of the .jit are exact in float32: the frozen encoder is exactly the file's (the constant
    # buffers, e.g. the Haar wavelets, are value-checked by the loader and stay float32).
    weights = {name for name, _ in result.network.named_parameters()}
    compared = [k for k in exported if k in weights]
    assert len(compared) > 10 and all(torch.equal(exported[k].float(), trained[k].float()) for k in compared)


def test_ema_warms_up_so_a_short_run_is_not_its_initial_weights(clips_dir, tmp_path, monkeypatch):
    from nemo_cosmos_tokenizer.training.model import trainable_parameters
    from nemo_cosmos_tokenizer.training.trainer import Trainer, ema_decay_at

    # The decay ramps from 0.1 towards ema_decay, and is the constant ema_decay without the warm-up.
    ramp = tiny_config(clips_dir, tmp_path / "c", ema_decay=0.999)
    assert [ema_decay_at(ramp, n) for n in (0, 1, 10)] == [0.1, 2 / 11, 11 / 20]
    assert ema_decay_at(ramp, 10**6) == 0.999
    assert ema_decay_at(tiny_config(clips_dir, tmp_path / "c", ema_decay=0.999, ema_warmup=False), 0) == 0.999

    trajectory: list[dict[str, torch.Tensor]] = []  # the trained weights before the first step, then after each
    original = Trainer.step

    def step(self, x, n):
        snapshot = lambda: {k: p.detach().double().clone() for k, p in trainable_parameters(self.net)}  # noqa: E731
        if not trajectory:
            trajectory.append(snapshot())
        out = original(self, x, n)
        trajectory.append(snapshot())
        return out

    monkeypatch.setattr(Trainer, "step", step)
    config = tiny_config(clips_dir, tmp_path / "run", max_steps=4, ema_decay=0.999)
    ema = load_pretrained(train_tokenizer(config).final_dir).state_dict()

    def expected(decays):
        e = dict(trajectory[0])
        for d, after in zip(decays, trajectory[1:]):
            e = {k: v + (1 - d) * (after[k] - v) for k, v in e.items()}
        return e

    warm = expected([ema_decay_at(config, n) for n in range(4)])
    constant = expected([0.999] * 4)
    # float32 lerp vs this float64 recurrence: a few roundings per step, each within 2^-24 of the largest weight
    # magnitude involved; 16 such units per step is a wide margin on any CPU.
    scale = max(float(t.abs().max()) for w in trajectory for t in w.values())
    tol = 16 * 4 * 2.0**-24 * scale
    worst = max(float((ema[k].double() - v).abs().max()) for k, v in warm.items())
    assert worst <= tol, (worst, tol)
    # The check tells the two apart: the constant-decay EMA is essentially the initial weights.
    gap = max(float((constant[k] - v).abs().max()) for k, v in warm.items())
    assert gap > 100 * tol, (gap, tol)


def _compile_on_cpu(monkeypatch):
    """Let ``compile`` compile on the CPU, which the trainer leaves eager by default (COMPILE_DEVICE_TYPES): these
    tests replace torch.compile by stand-ins that never reach Inductor's CPU code."""
    from nemo_cosmos_tokenizer.training import trainer as trainer_module

    monkeypatch.setattr(trainer_module, "COMPILE_DEVICE_TYPES", ("cuda", "cpu"))


def test_compile_is_left_out_on_a_cpu(clips_dir, tmp_path, monkeypatch, caplog):
    """On a CPU ``compile`` warns and trains eagerly (Inductor's CPU code for this network's backward aborted the
    process with torch 2.13): torch.compile is never called and the run is the eager one."""
    called = []
    monkeypatch.setattr(torch, "compile", lambda fn, **kwargs: called.append(fn) or fn)
    settings = dict(max_steps=2)
    eager = train_tokenizer(tiny_config(clips_dir, tmp_path / "eager", **settings))
    with caplog.at_level("WARNING", logger="nemo_cosmos_tokenizer.training.trainer"):
        asked = train_tokenizer(tiny_config(clips_dir, tmp_path / "asked", compile=True, **settings))
    assert called == [] and "--compile applies on cuda devices only" in caplog.text
    keys = ("step", "loss", "grad_norm")
    assert [{k: e[k] for k in keys} for e in asked.history] == [{k: e[k] for k in keys} for e in eager.history]


def test_compiled_steps_train_the_same_network(clips_dir, tmp_path, monkeypatch):
    # Inductor's CPU code generation takes minutes on two cores; "aot_eager" traces the same two passes through
    # Dynamo and AOTAutograd (what decides which parameters the compiled step trains) and runs ATen's kernels. The
    # Inductor path itself runs in the GPU demo.
    compiled = []
    real_compile = torch.compile

    def aot_eager(fn, **kwargs):
        compiled.append(fn.__name__)
        return real_compile(fn, backend="aot_eager", **kwargs)

    settings = dict(max_steps=3, ema_decay=0.9)
    eager = train_tokenizer(tiny_config(clips_dir, tmp_path / "eager", **settings))
    _compile_on_cpu(monkeypatch)
    monkeypatch.setattr(torch, "compile", aot_eager)
    fast = train_tokenizer(tiny_config(clips_dir, tmp_path / "compiled", compile=True, **settings))
    assert compiled == ["encode_pre_quant", "decode_latent"]
    # Same ATen kernels in another order of the autograd graph: float32 sums may round differently by a few ulps of
    # the loss (~1e-7 relative), which three Adam steps at lr 1e-3 do not grow past 1e-4.
    for a, b in zip(eager.history, fast.history, strict=True):
        assert a["step"] == b["step"] and a["loss"] == pytest.approx(b["loss"], rel=1e-4), (a, b)
    # The compiled passes trained the network's own parameters: its weights moved, and stayed where eager's went.
    # An Adam step moves a weight by at most about lr (m / sqrt(v) is ~1 at most), so runs whose gradients differ by
    # rounding (even in sign, for gradients near zero) end at most 2 x lr x steps apart.
    e, c = load_pretrained(eager.final_dir).state_dict(), load_pretrained(fast.final_dir).state_dict()
    start = tiny_network().state_dict()
    assert any(not torch.equal(c[k], start[k]) for k in c if k in start)
    bound = 2 * 1e-3 * 3
    assert max(float((c[k] - e[k]).abs().max()) for k in c) <= bound


def test_reduce_overhead_marks_each_step_for_the_cuda_graphs(clips_dir, tmp_path, monkeypatch):
    """``compile_mode`` reaches torch.compile; with ``reduce-overhead`` (CUDA graphs, whose outputs are overwritten
    by the next replay) every step starts with ``cudagraph_mark_step_begin``, and the default mode never calls it."""
    modes, marks = [], []
    monkeypatch.setattr(torch, "compile", lambda fn, **kwargs: modes.append(kwargs.get("mode")) or fn)
    monkeypatch.setattr(torch.compiler, "cudagraph_mark_step_begin", lambda: marks.append(1))
    _compile_on_cpu(monkeypatch)
    train_tokenizer(tiny_config(clips_dir, tmp_path / "graphed", compile=True, compile_mode="reduce-overhead",
                                max_steps=3))
    assert modes == ["reduce-overhead", "reduce-overhead"] and len(marks) == 3
    modes.clear(), marks.clear()
    train_tokenizer(tiny_config(clips_dir, tmp_path / "fused", compile=True, max_steps=2))
    assert modes == ["default", "default"] and marks == []
    from nemo_cosmos_tokenizer.training.config import TrainConfigError

    with pytest.raises(TrainConfigError, match="compile_mode must be one of"):
        tiny_config(clips_dir, tmp_path / "bad", compile=True, compile_mode="fastest")


def test_a_compile_failure_trains_on_eagerly(clips_dir, tmp_path, monkeypatch, caplog):
    def broken(fn, **kwargs):
        def fails(*args, **kw):
            raise RuntimeError("no compiler for this\nsecond line")
        return fails

    settings = dict(max_steps=2)
    eager = train_tokenizer(tiny_config(clips_dir, tmp_path / "eager", **settings))
    _compile_on_cpu(monkeypatch)
    monkeypatch.setattr(torch, "compile", broken)
    with caplog.at_level("WARNING", logger="nemo_cosmos_tokenizer.training.trainer"):
        fallen = train_tokenizer(tiny_config(clips_dir, tmp_path / "fallen", compile=True, **settings))
    assert "torch.compile failed (RuntimeError: no compiler for this); training on without compiling" in caplog.text
    keys = ("step", "loss", "grad_norm")
    assert [{k: e[k] for k in keys} for e in fallen.history] == [{k: e[k] for k in keys} for e in eager.history]


def test_an_error_after_compiled_steps_is_not_hidden(clips_dir, tmp_path, monkeypatch):
    calls = []

    def fails_on_second_step(fn, **kwargs):
        def run(*args, **kw):
            calls.append(fn.__name__)
            if len(calls) > 2:  # encode + decode of step 0 ran compiled; step 1 meets a real error
                raise RuntimeError("CUDA out of memory")
            return fn(*args, **kw)
        return run

    _compile_on_cpu(monkeypatch)
    monkeypatch.setattr(torch, "compile", fails_on_second_step)
    with pytest.raises(RuntimeError, match="CUDA out of memory"):
        train_tokenizer(tiny_config(clips_dir, tmp_path / "run", max_steps=3, compile=True))


def test_data_workers_are_capped_at_the_usable_cpus(monkeypatch):
    import os

    from nemo_cosmos_tokenizer.training.loop import data_workers

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert [data_workers(n) for n in (0, 1, 2, 12)] == [0, 1, 2, 2]


def test_mean_squared_error_term(clips_dir, tmp_path):
    """``l2_weight`` adds the pixels' mean squared error to the loss and to the log; alone it trains the network
    (the loss falls), and a config where no term supervises the decoder is refused."""
    from nemo_cosmos_tokenizer.training.config import TrainConfigError

    result = train_tokenizer(tiny_config(clips_dir, tmp_path / "l2", max_steps=8, l1_weight=0.0, l2_weight=1.0))
    history = result.history
    assert all("l2" in entry for entry in history)
    # 0 x L1 + 1 x L2: the loss is the L2 term itself, bit for bit (0 * x is 0 and 0 + y is y in float32)
    assert all(entry["loss"] == entry["l2"] for entry in history), history
    losses = [entry["loss"] for entry in history]
    assert sum(losses[-2:]) / 2 < 0.8 * sum(losses[:2]) / 2, losses  # as the L1 run above: halved in every run seen
    both = train_tokenizer(tiny_config(clips_dir, tmp_path / "both", max_steps=2, l2_weight=0.5)).history
    for entry in both:
        # the logged terms are float32 means; their weighted sum is the loss up to a float32 rounding of each
        assert abs(entry["loss"] - (entry["l1"] + 0.5 * entry["l2"])) <= 1e-6 * max(1.0, entry["loss"]), entry
    with pytest.raises(TrainConfigError, match="nothing supervises the decoder"):
        tiny_config(clips_dir, tmp_path / "none", l1_weight=0.0, l2_weight=0.0)
