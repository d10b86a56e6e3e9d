"""Golden vectors: all 10 conformance cases, float32 CPU, weights loaded through load_cosmos_state_dict.

Acceptance (conformance/README.md): indices and codes exactly equal; latent and pre_quant within atol 5e-5;
reconstruction of the *stored* latent / indices within atol 2e-4, rtol 1e-4.
"""

import pytest
import torch
from conformance_helpers import CONFORMANCE_CASES
from safetensors.torch import load_file


@pytest.mark.parametrize("case", CONFORMANCE_CASES)
def test_conformance_case(conformance_dir, load_conformance_model, case):
    model = load_conformance_model(case)
    x = load_file(str(conformance_dir / case / "input.safetensors"))["input"]
    expected = load_file(str(conformance_dir / case / "output.safetensors"))
    with torch.no_grad():
        pre_quant = model.encode_pre_quant(x)
        encoded = model.encode(x)
        if model.config.is_discrete:
            indices, codes = encoded
            torch.testing.assert_close(pre_quant, expected["pre_quant"], atol=5e-5, rtol=0)
            assert indices.dtype == torch.int32 and codes.dtype == torch.float32
            assert torch.equal(indices, expected["indices"])
            assert torch.equal(codes, expected["codes"])
            reconstruction = model.decode(expected["indices"])
            torch.testing.assert_close(model.decode_codes(expected["codes"]), reconstruction, atol=0, rtol=0)
        else:
            (latent,) = encoded
            torch.testing.assert_close(latent, expected["latent"], atol=5e-5, rtol=0)
            torch.testing.assert_close(pre_quant, latent, atol=0, rtol=0)
            reconstruction = model.decode(expected["latent"])
    assert reconstruction.shape == x.shape
    torch.testing.assert_close(reconstruction, expected["reconstruction"], atol=2e-4, rtol=1e-4)
