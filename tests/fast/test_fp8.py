"""The FP8 path of the fast tokenizer (issue 24) on a CPU: numerics, calibration, layer mapping, the scales file, the
refusals, and the emulated FP8 network (``fp8_kernel="emulated"``, the float32 emulation of the GPU kernels).

Models are built from released configs at reduced width (16 base channels: multiples of 16, so the FP8 channel rule
maps most layers) with random weights. The GPU kernels are tested against the emulation in ``test_fp8_gpu.py``.
"""

from __future__ import annotations

import math
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import nemo_cosmos_tokenizer as nct
from nemo_cosmos_tokenizer.fast import (
    FastOptions,
    Fp8UnsupportedError,
    calibrate_fp8,
    format_fp8_plan,
    fp8_layer_plan,
    load_fp8_calibration,
    measure_fp8_quality,
    optimize,
    save_fp8_calibration,
)
from nemo_cosmos_tokenizer.fast.fp8 import Fp8ConvFrames, Fp8TemporalConv
from nemo_cosmos_tokenizer.fast.fp8_calibration import FP8_SCALES_FILE, Fp8Calibration
from nemo_cosmos_tokenizer.fast.fp8_kernels import conv_output_shape
from nemo_cosmos_tokenizer.fast.fp8_numerics import (
    E4M3_MAX,
    check_fp8_support,
    quantize_e4m3,
    reference_fp8_conv2d,
    scale_from_amax,
    weight_scales,
)
from nemo_cosmos_tokenizer.fast.frames import ConvFrames, TemporalConv
from nemo_cosmos_tokenizer.modules.conv import CausalConv3d

EMULATED = FastOptions(precision="fp8", fp8_kernel="emulated", compile=False, auto_verify=False)
#: Every finite E4M3 value (the 254 non-NaN bit patterns), float32.
E4M3_GRID = torch.arange(256, dtype=torch.int32).to(torch.uint8).view(torch.float8_e4m3fn).float()
E4M3_GRID = E4M3_GRID[torch.isfinite(E4M3_GRID)]


def _tiny(name: str = "Cosmos-1.0-Tokenizer-DV8x16x16", seed: int = 0) -> nct.CosmosTokenizer:
    torch.manual_seed(seed)
    config = nct.get_config(name).replace(channels=16, channels_mult=(1, 2, 2), num_res_blocks=1)
    return nct.build_tokenizer(config).eval().requires_grad_(False)


def _windows(model: nct.CosmosTokenizer, batch: int, seed: int) -> torch.Tensor:
    c = model.config
    gen = torch.Generator().manual_seed(seed)
    shape = ((batch, 3, 1 + c.temporal_compression, 2 * c.spatial_compression, 3 * c.spatial_compression)
             if c.is_video else (batch, 3, 2 * c.spatial_compression, 3 * c.spatial_compression))
    return torch.rand(shape, generator=gen) * 2 - 1


# ------------------------------------------------------------------------------------------------- numerics
def test_scales_are_amax_over_448() -> None:
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(6, 5, 3, 3, generator=gen) * torch.tensor([1e-3, 0.1, 1.0, 7.0, 300.0, 0.0]).view(-1, 1, 1, 1)
    expected = [np.float32(np.abs(w[o].numpy()).max()) / np.float32(448) for o in range(6)]  # float32 division
    expected[5] = np.float32(1.0)  # an all-zero channel: any positive scale, 1 by definition
    assert torch.equal(weight_scales(w), torch.tensor(np.array(expected, dtype=np.float32)))
    assert scale_from_amax(torch.tensor(448.0)).item() == 1.0 and E4M3_MAX == torch.finfo(torch.float8_e4m3fn).max
    for bad in (-1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="finite"):
            scale_from_amax(torch.tensor(bad))


def test_quantize_is_nearest_e4m3_and_saturates() -> None:
    gen = torch.Generator().manual_seed(1)
    scale = torch.tensor(0.37)
    x = torch.randn(4000, generator=gen) * 60 * scale  # about 0.1 % of it beyond the range 448 * scale
    q = quantize_e4m3(x, scale).float()
    assert set(q.unique().tolist()) <= set(E4M3_GRID.tolist())
    y = (x / scale).clamp(-448, 448)
    nearest = (E4M3_GRID.view(1, -1) - y.view(-1, 1)).abs().min(dim=1).values  # independent: search the grid
    assert torch.equal((q - y).abs(), nearest)
    big = torch.tensor([1e9, -1e9, 448.1, -500.0]) * scale
    assert quantize_e4m3(big, scale).float().tolist() == [448.0, -448.0, 448.0, -448.0]  # saturates, never NaN


def test_reference_conv_is_the_conv_of_the_dequantized_values() -> None:
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(2, 32, 7, 9, generator=gen)
    w = torch.randn(48, 32, 3, 3, generator=gen)
    b = torch.randn(48, generator=gen)
    s_x, s_w = scale_from_amax(x.abs().amax()), weight_scales(w)
    x_q, w_q = quantize_e4m3(x, s_x), quantize_e4m3(w, s_w.view(-1, 1, 1, 1))
    for stride, padding in (((1, 1), (1, 1)), ((2, 2), (0, 0))):
        out = reference_fp8_conv2d(x_q, w_q, s_x * s_w, b, stride, padding, torch.float32)
        exact = F.conv2d(x_q.double() * s_x.double(), w_q.double() * s_w.double().view(-1, 1, 1, 1), b.double(),
                         stride, padding)
        assert out.shape == conv_output_shape(tuple(x.shape), tuple(w.shape), stride, padding)
        # The products of E4M3 values are exact in float32; the sum of K = 288 of them rounds by at most K units of
        # 2^-24 of the sum of their magnitudes, the two scalings and the bias add by a few more.
        magnitude = F.conv2d(x_q.double().abs() * s_x.double(), w_q.double().abs() * s_w.double().view(-1, 1, 1, 1),
                             None, stride, padding) + b.double().abs().view(1, -1, 1, 1)
        assert ((out.double() - exact).abs() <= (288 + 4) * 2.0**-24 * magnitude).all()


def test_fp8_layer_is_exact_when_the_scales_make_quantization_exact() -> None:
    """Inputs and weights that are E4M3 values times powers of two quantize without error: the FP8 layer then
    computes the float32 convolution itself, bit for bit (a power-of-two scale commutes with every rounding)."""
    gen = torch.Generator().manual_seed(3)
    pick = lambda *shape: E4M3_GRID[torch.randint(len(E4M3_GRID), shape, generator=gen)]  # noqa: E731
    w = pick(32, 16, 3, 3)
    w[:, 0, 0, 0] = 448.0  # amax 448 per output channel: weight scale 1 before the power of two
    w = w * 2.0**-12
    x = pick(2, 16, 5, 6)
    x[0, 0, 0, 0] = 448.0
    x = (x * 2.0**-6).contiguous(memory_format=torch.channels_last)
    conv = ConvFrames(w, None, 1, 1, torch.channels_last)
    layer = Fp8ConvFrames(conv, weight_scales(w), scale_from_amax(x.abs().amax()).item(), "emulated")
    assert weight_scales(w).unique().tolist() == [2.0**-12] and layer.input_scale.item() == 2.0**-6
    assert torch.equal(layer(x), conv(x))


def test_fp8_layer_saturates_beyond_the_calibrated_range() -> None:
    gen = torch.Generator().manual_seed(4)
    torch.manual_seed(4)
    conv = TemporalConv(CausalConv3d(16, 16, (3, 1, 1)), torch.channels_last)  # weight [16, 16, 3, 1]
    x = torch.randn(6, 16, 4, 4, generator=gen).contiguous(memory_format=torch.channels_last)  # [B*T, C, H, W]
    amax = x.abs().amax().item()
    layer = Fp8TemporalConv(conv, weight_scales(conv.weight), scale_from_amax(torch.tensor(amax)).item(), "emulated")
    louder = x * 3  # beyond the calibrated range: clamps to +-448 steps, the same as clamping the input first
    assert torch.equal(layer(louder, 2), layer(louder.clamp(-amax, amax), 2))
    assert torch.isfinite(layer(louder, 2)).all()


# ---------------------------------------------------------------------------------------------------- mapping
def test_default_plan_keeps_the_sensitive_layers_in_bf16() -> None:
    model = _tiny()
    plan = {p.name: p for p in fp8_layer_plan(model, exclude=FastOptions().fp8_exclude)}
    for name in ("encoder.conv_in.0", "encoder.conv_in.1", "encoder.conv_out.0", "decoder.conv_in.0",
                 "decoder.conv_out.1", "quant_conv", "post_quant_conv"):
        assert not plan[name].fp8 and "excluded" in plan[name].reason
    attention = [p for n, p in plan.items() if ".attn_1." in n]
    assert attention and not any(p.fp8 for p in attention)
    assert all(p.fp8 for n, p in plan.items() if n.startswith(("encoder.down.", "decoder.up.", "encoder.mid.block")))


def test_plan_patterns_and_channel_rule() -> None:
    model = _tiny()
    plan = fp8_layer_plan(model, include=("encoder.*",), exclude=("*.1",))  # spatial halves of the encoder only
    for p in plan:
        expected = p.name.startswith("encoder.") and not p.name.endswith(".1") and ".attn_1." not in p.name
        assert p.fp8 == expected, p
    assert next(p for p in plan if p.name == "decoder.mid.block_1.conv1.0").reason == "matches no include pattern"
    narrow = nct.build_tokenizer(model.config.replace(channels=8))  # an 8-channel first level
    reasons = {p.name: p.reason for p in fp8_layer_plan(narrow)}
    assert reasons["encoder.down.0.block.0.conv1.0"] == "8 -> 8 channels: the FP8 kernels need multiples of 16"


def test_plan_flops_and_listing() -> None:
    model = _tiny()
    shape = (2, 3, 9, 32, 48)
    plan = fp8_layer_plan(model, exclude=FastOptions().fp8_exclude, input_shape=shape)
    quant = next(p for p in plan if p.name == "quant_conv")
    t, h, w = 2, 2, 3  # latent grid of 9 x 32 x 48 under 8 x 16 x 16 compression
    assert quant.flops == 2 * (2 * quant.out_channels * t * h * w) * quant.in_channels  # 1x1x1: 2 * outputs * C_in
    text = format_fp8_plan(plan)
    assert "fp8       encoder.down.0.block.0.conv1.0" in text and "excluded by 'quant_conv'" in text
    assert text.splitlines()[-1].startswith(f"FP8: {sum(p.fp8 for p in plan)} of {len(plan)} convolutions carrying")


# ----------------------------------------------------------------------------------------------- calibration
def test_calibration_scales_are_the_input_amax_over_all_windows() -> None:
    model = _tiny()
    w1, w2 = _windows(model, 1, seed=1), _windows(model, 2, seed=2) * 1.7
    calib = calibrate_fp8(model, [w1, w2], EMULATED)
    assert calib.layers == [p.name for p in fp8_layer_plan(model, exclude=EMULATED.fp8_exclude) if p.fp8]
    # Independently: keep every input the layers see (forward hooks), take the max in numpy.
    seen: dict[str, list[np.ndarray]] = {}
    modules = dict(model.named_modules())
    handles = [modules[n].register_forward_hook(lambda m, a, o, n=n: seen.setdefault(n, []).append(a[0].numpy()))
               for n in calib.layers]
    with torch.no_grad():
        for x in (w1, w2):
            h = model.encode_pre_quant(x)
            model.decode_latent(model.quantizer(h)[1])
    for handle in handles:
        handle.remove()
    for name in calib.layers:
        amax = max(np.float32(np.abs(a).max()) for a in seen[name])
        assert calib.input_scales[name] == float(np.float32(amax) / np.float32(448)), name
        weight = modules[name].conv3d.weight
        assert torch.equal(calib.weight_scales[name], weight_scales(weight))
    # The scales over two windows are the larger of the two single-window scales.
    one, two = calibrate_fp8(model, w1, EMULATED), calibrate_fp8(model, w2, EMULATED)
    assert all(calib.input_scales[n] == max(one.input_scales[n], two.input_scales[n]) for n in calib.layers)


def test_scales_file_round_trip(tmp_path) -> None:
    model = _tiny("Cosmos-1.0-Tokenizer-CV8x8x8")
    calib = calibrate_fp8(model, _windows(model, 1, seed=0), EMULATED)
    path = save_fp8_calibration(calib, tmp_path)
    assert path == tmp_path / FP8_SCALES_FILE
    for source in (tmp_path, path):
        loaded = load_fp8_calibration(source)
        assert loaded.input_scales == calib.input_scales and loaded.layers == calib.layers
        assert all(torch.equal(loaded.weight_scales[n], calib.weight_scales[n]) for n in calib.layers)
        assert loaded.info == calib.info and loaded.info["family"] == "CV"
    from safetensors.torch import save_file

    save_file({"x": torch.ones(1)}, str(tmp_path / "other.safetensors"), metadata={"format": "something else"})
    with pytest.raises(ValueError, match="not an FP8 scales file"):
        load_fp8_calibration(tmp_path / "other.safetensors")
    with pytest.raises(FileNotFoundError, match="calibrate_fp8"):
        load_fp8_calibration(tmp_path / "missing.safetensors")
    with pytest.raises(ValueError, match="positive"):
        Fp8Calibration(input_scales={"a": 0.0}, weight_scales={"a": torch.ones(2)})


# ------------------------------------------------------------------------------------------ options, refusals
def test_options_validate_precision_kernel_and_patterns() -> None:
    from omegaconf import OmegaConf

    assert FastOptions().precision == "bf16"
    with pytest.raises(ValueError, match="'bf16' .* or 'fp8'"):
        FastOptions(precision="fp16")
    with pytest.raises(ValueError, match="fp8_kernel"):
        FastOptions(fp8_kernel="cutlass")
    with pytest.raises(TypeError, match="sequence of name patterns"):
        FastOptions(fp8_exclude="quant_conv")
    from_yaml = OmegaConf.to_container(OmegaConf.create("precision: fp8\nfp8_include: [decoder.*]\n"))
    options = FastOptions(**from_yaml)  # a YAML list becomes the tuple the field holds
    assert options.fp8_include == ("decoder.*",) and isinstance(options.fp8_exclude, tuple)


def test_refusals_name_the_way_out(monkeypatch) -> None:
    with pytest.raises(Fp8UnsupportedError, match="precision='bf16'.*fp8_kernel='emulated'"):
        check_fp8_support("cudnn", torch.device("cpu"))
    with pytest.raises(Fp8UnsupportedError, match="compute capability 9.0 or newer .* has 8.0"):
        check_fp8_support("cudnn", torch.device("cuda", 0), capability=(8, 0))
    with pytest.raises(Fp8UnsupportedError, match="8.9 or newer .* has 8.6"):
        check_fp8_support("triton", torch.device("cuda", 0), capability=(8, 6))
    for kernel, hint in (("triton", "pip install triton"), ("cudnn", "pip install nvidia-cudnn-frontend")):
        monkeypatch.setitem(sys.modules, kernel, None)  # importing it now raises ImportError
        with pytest.raises(Fp8UnsupportedError, match=hint):
            check_fp8_support(kernel, torch.device("cuda", 0), capability=(9, 0))
    check_fp8_support("emulated", torch.device("cpu"))
    model = _tiny()
    with pytest.raises(Fp8UnsupportedError, match="runs on an NVIDIA GPU"):
        optimize(model, precision="fp8", fp8_kernel="triton", compile=False)
    with pytest.raises(ValueError, match="needs calibration scales: FastOptions.fp8_scales"):
        optimize(model, EMULATED)
    with pytest.raises(ValueError, match="auto_verify=False"):
        optimize(model, replace(EMULATED, auto_verify=True),
                 fp8_calibration=calibrate_fp8(model, _windows(model, 1, seed=0)))


def test_scales_of_other_weights_are_refused() -> None:
    model = _tiny()
    calib = calibrate_fp8(model, _windows(model, 1, seed=0), EMULATED)
    other = _tiny(seed=5)
    with pytest.raises(ValueError, match="calibrated for other weights"):
        optimize(other, EMULATED, fp8_calibration=calib)
    renamed = Fp8Calibration(input_scales={"encoder.nope": 1.0}, weight_scales={"encoder.nope": torch.ones(16)})
    with pytest.raises(ValueError, match="does not have"):
        optimize(model, EMULATED, fp8_calibration=renamed)


def test_fake_op_has_the_kernels_shape_and_layout() -> None:
    """Under ``torch.compile`` the GPU kernels are a custom op; its fake (meta) output must match theirs."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        x = torch.empty(2, 32, 9, 11, dtype=torch.float8_e4m3fn).contiguous(memory_format=torch.channels_last)
        w = torch.empty(48, 32, 3, 3, dtype=torch.float8_e4m3fn)
        y = torch.ops.nemo_cosmos_tokenizer.fp8_conv2d(x, w, torch.empty(48), None, [2, 2], [0, 0], torch.bfloat16,
                                                       "triton")
        assert tuple(y.shape) == (2, 48, 4, 5) and y.dtype == torch.bfloat16
        assert y.is_contiguous(memory_format=torch.channels_last)


# ----------------------------------------------------------------------------------------- emulated network
def test_bf16_precision_builds_no_fp8_layer() -> None:
    fast = optimize(_tiny(), compile=False, auto_verify=False)
    assert fast.fp8_layers == []
    assert not any(isinstance(m, (Fp8ConvFrames, Fp8TemporalConv)) for m in fast.modules())


def test_emulated_fp8_network_and_its_quality_report() -> None:
    model = _tiny()
    calib = calibrate_fp8(model, _windows(model, 1, seed=1), EMULATED)
    fast = optimize(model, EMULATED, fp8_calibration=calib)
    assert sorted(fast.fp8_layers) == sorted(calib.layers)
    assert sum(isinstance(m, (Fp8ConvFrames, Fp8TemporalConv)) for m in fast.modules()) == len(calib.layers)
    x = _windows(model, 2, seed=2)
    report = measure_fp8_quality(model, x, calib, options=EMULATED, dtype=torch.bfloat16)
    assert set(report.paths) == {"eager", "fast-bf16", "fast-fp8"} and report.positions == 2 * 2 * 2 * 3
    for path in report.paths.values():
        assert 0.0 <= path.index_agreement <= 1.0
        assert all(math.isfinite(v) and v >= 0 for v in (path.latent_rel_error, path.recon_rel_error, path.psnr_db))
    assert set(report.bars()) == {"psnr", "index_agreement"}
    # With no layer mapped the FP8 path is the bf16 fast path: the same numbers, exactly.
    none = replace(EMULATED, fp8_include=("nothing",))
    same = measure_fp8_quality(model, x, calibrate_fp8(model, _windows(model, 1, seed=1), none), options=none)
    assert same.paths["fast-fp8"] == same.paths["fast-bf16"]
