"""export_jit: TorchScript files made as NVIDIA made theirs (bf16 weights, torch.jit.trace) load back exactly."""

import pytest
import torch
from safetensors.torch import load_file

from tolerances import decoder_atol

from nemo_cosmos_tokenizer import build_tokenizer
from nemo_cosmos_tokenizer.hub.convert import load_jit_state_dict
from nemo_cosmos_tokenizer.hub.jit_export import export_jit


def _bf16(state_dict):
    return {k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in state_dict.items()}


@pytest.mark.parametrize("case", ["DI8x8", "CV4x8x8", "DV4x8x8"])
def test_export_jit_bf16_round_trip(tmp_path, conformance_dir, load_conformance_model, case):
    model = load_conformance_model(case)
    paths = export_jit(model, tmp_path, dtype=torch.bfloat16)
    assert {p.name for p in paths.values()} == {"encoder.jit", "decoder.jit", "autoencoder.jit"}
    assert next(model.parameters()).dtype == torch.float32  # the model itself is untouched

    jit = {part: load_jit_state_dict(path) for part, path in paths.items()}
    for part, state_dict in jit.items():
        assert list(state_dict) == list(model.cosmos_state_dict(part)), part
        floats = {v.dtype for k, v in state_dict.items() if v.is_floating_point()}
        assert floats == {torch.bfloat16}, part
    # Same key sets as NVIDIA's encoder_jit() / decoder_jit() state_dicts.
    for part in ("encoder", "decoder"):
        assert set(jit[part]) == set(load_file(str(conformance_dir / case / f"{part}.safetensors")))

    direct = build_tokenizer(model.config).eval()
    direct.load_cosmos_state_dict(_bf16(model.cosmos_state_dict("encoder")), part="encoder")
    direct.load_cosmos_state_dict(_bf16(model.cosmos_state_dict("decoder")), part="decoder")
    from_jit = build_tokenizer(model.config).eval()
    from_jit.load_cosmos_state_dict(jit["encoder"], part="encoder")
    from_jit.load_cosmos_state_dict(jit["decoder"], part="decoder")
    from_auto = build_tokenizer(model.config).eval()
    from_auto.load_cosmos_state_dict(jit["autoencoder"], part="autoencoder")
    for other in (from_jit, from_auto):
        for (key, a), b in zip(direct.cosmos_state_dict().items(), other.cosmos_state_dict().values()):
            assert a.dtype == b.dtype and torch.equal(a, b), key

    x = load_file(str(conformance_dir / case / "input.safetensors"))["input"]
    with torch.no_grad():
        expected = direct.encode(x)
        for got in (from_jit.encode(x), from_auto.encode(x)):
            assert all(torch.equal(a, b) for a, b in zip(expected, got))
        assert torch.equal(direct.decode(expected[0]), from_jit.decode(expected[0]))


def test_jit_outputs_mimic_nvidia(tmp_path, load_conformance_model):
    model = load_conformance_model("DV4x8x8")
    x = torch.rand(2, 3, 5, 16, 16) * 2 - 1
    paths = export_jit(model, tmp_path, dtype=torch.float32, example_input=x)
    encoder = torch.jit.load(str(paths["encoder"]))
    with torch.no_grad():
        indices, codes, zero_loss = encoder(x)
        ref_indices, ref_codes = model.encode(x)
        assert torch.equal(indices, ref_indices) and torch.equal(codes, ref_codes)
        assert zero_loss.shape == (2, 1, 1, 1, 2) and not zero_loss.any()
        reference = model.decode(indices)  # TorchScript may fuse or reorder ops: rounding, bounded in tolerances.py
        torch.testing.assert_close(torch.jit.load(str(paths["decoder"]))(indices), reference,
                                   atol=decoder_atol(model, reference), rtol=0)
        recon, loss, auto_indices = torch.jit.load(str(paths["autoencoder"]))(x)
        assert torch.equal(auto_indices, indices) and recon.shape == x.shape
        # A traced file runs on other valid sizes too (nothing branches on shapes).
        assert encoder(torch.zeros(1, 3, 9, 24, 8))[0].shape == (1, 3, 3, 1)

    continuous = load_conformance_model("CI16x16")
    paths = export_jit(continuous, tmp_path / "ci", dtype=torch.float32, parts=["encoder"])
    assert list(paths) == ["encoder"]
    latent, (mean, logvar) = torch.jit.load(str(paths["encoder"]))(torch.zeros(1, 3, 32, 32))
    assert latent.shape == (1, 16, 2, 2) and mean.shape == (1,) and not mean.any() and not logvar.any()
    with pytest.raises(ValueError, match="multiples"):
        export_jit(continuous, tmp_path / "bad", example_input=torch.zeros(1, 3, 20, 20))
