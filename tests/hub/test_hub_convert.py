"""Strict loading of NVIDIA-layout state_dicts and the save_pretrained / load_pretrained round trip."""

import copy
import json

import pytest
import torch
from safetensors.torch import load_file

from nemo_cosmos_tokenizer import build_tokenizer
from nemo_cosmos_tokenizer.hub.convert import (
    StateDictMismatchError,
    load_pretrained,
    save_pretrained,
)

CASE = "DV4x8x8"


@pytest.fixture(scope="module")
def encoder_sd(conformance_dir):
    return load_file(str(conformance_dir / CASE / "encoder.safetensors"))


@pytest.fixture()
def fresh(load_conformance_model):
    return build_tokenizer(load_conformance_model(CASE).config)


def _error(model, state_dict, part="encoder") -> StateDictMismatchError:
    with pytest.raises(StateDictMismatchError) as info:
        model.load_cosmos_state_dict(state_dict, part=part)
    return info.value


def test_missing_key_is_named(fresh, encoder_sd):
    sd = dict(encoder_sd)
    del sd["encoder.conv_in.0.conv3d.weight"], sd["quantizer._basis"]
    err = _error(fresh, sd)
    assert err.missing == ["encoder.conv_in.0.conv3d.weight", "quantizer._basis"]
    assert "encoder.conv_in.0.conv3d.weight" in str(err) and "quantizer._basis" in str(err)


def test_unexpected_key_is_named(fresh, encoder_sd):
    sd = dict(encoder_sd, **{"encoder.down.0.downsample.conv2.conv3d.weight": torch.zeros(1)})
    err = _error(fresh, sd)
    assert err.unexpected == ["encoder.down.0.downsample.conv2.conv3d.weight"] and not err.missing
    assert "encoder.down.0.downsample.conv2.conv3d.weight" in str(err)


def test_wrong_shape_is_named(fresh, encoder_sd):
    sd = dict(encoder_sd)
    sd["quant_conv.conv3d.weight"] = torch.zeros(6, 16, 1, 1)
    err = _error(fresh, sd)
    assert [k for k, _, _ in err.mismatched] == ["quant_conv.conv3d.weight"]
    assert "quant_conv.conv3d.weight" in str(err) and "(6, 16, 1, 1, 1)" in str(err)


@pytest.mark.parametrize(
    "key, value",
    [
        ("quantizer._levels", torch.tensor([8, 8, 8, 5, 5, 4], dtype=torch.int32)),
        ("encoder.patcher3d.wavelets", torch.tensor([0.5, 0.5])),
        ("encoder.patcher3d.patch_size_buffer", torch.tensor([2], dtype=torch.int32)),
        ("quantizer.implicit_codebook", torch.zeros(64000, 6, dtype=torch.bfloat16)),
    ],
)
def test_wrong_constant_buffer_is_named(fresh, encoder_sd, key, value):
    err = _error(fresh, dict(encoder_sd, **{key: value}))
    assert [k for k, _ in err.wrong_values] == [key] and key in str(err)


def test_wrong_part_and_bad_part_name(fresh, encoder_sd):
    err = _error(fresh, encoder_sd, part="decoder")
    assert "inv_quant.quantizer._levels" in err.missing and "encoder.conv_in.0.conv3d.weight" in err.unexpected
    with pytest.raises(ValueError, match="part must be one of"):
        fresh.load_cosmos_state_dict(encoder_sd, part="vae")


def test_bf16_weights_are_cast_and_bf16_constants_accepted(fresh, encoder_sd):
    sd = {k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in encoder_sd.items()}
    fresh.load_cosmos_state_dict(sd, part="encoder")
    weight = fresh.encoder.conv_in[0].conv3d.weight
    assert weight.dtype == torch.float32
    assert torch.equal(weight, sd["encoder.conv_in.0.conv3d.weight"].float())


def test_failed_load_leaves_model_unchanged(fresh, encoder_sd):
    before = copy.deepcopy(fresh.state_dict())
    sd = dict(encoder_sd)
    sd["quantizer._levels"] = torch.tensor([8, 8, 8, 5, 5, 4], dtype=torch.int32)
    _error(fresh, sd)
    assert all(torch.equal(before[k], v) for k, v in fresh.state_dict().items())


@pytest.mark.parametrize("case", ["DI8x8", "CV8x8x8"])
def test_save_load_pretrained_round_trip(tmp_path, load_conformance_model, conformance_dir, case):
    model = load_conformance_model(case)
    save_pretrained(model, tmp_path)
    meta = json.loads((tmp_path / "config.json").read_text())
    assert meta["format"] == "nemo-cosmos-tokenizer" and meta["format_version"] == 1
    assert meta["config"] == model.config.to_dict()
    assert set(load_file(str(tmp_path / "model.safetensors"))) == set(model.cosmos_state_dict("autoencoder"))
    loaded = load_pretrained(tmp_path)
    assert loaded.config == model.config and not loaded.training
    for key, value in model.cosmos_state_dict("autoencoder").items():
        assert torch.equal(loaded.cosmos_state_dict("autoencoder")[key], value), key
    x = load_file(str(conformance_dir / case / "input.safetensors"))["input"]
    with torch.no_grad():
        for a, b in zip(model.encode(x), loaded.encode(x)):
            assert torch.equal(a, b)


def test_load_pretrained_rejects_other_directories(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["CosmosTokenizer"]}))
    with pytest.raises(ValueError, match="not a nemo-cosmos-tokenizer config"):
        load_pretrained(tmp_path)
