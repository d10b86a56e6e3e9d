"""Building blocks: the 2D resblock golden vector and causal behaviour of the 3D blocks."""

import pytest
import torch
from safetensors.torch import load_file
from tolerances import network_atol

from nemo_cosmos_tokenizer.modules import (
    CausalAttnBlock3d,
    CausalConv3d,
    CausalGroupNorm,
    CausalHybridDownsample3d,
    CausalHybridUpsample3d,
    CausalResnetBlock3d,
    ResnetBlock2d,
)


def test_resblock2d_nin_unit(conformance_dir):
    data = load_file(str(conformance_dir / "units" / "resblock2d_nin.safetensors"))
    block = ResnetBlock2d(32, 64)
    params = {k.removeprefix("param."): v for k, v in data.items() if k.startswith("param.")}
    block.load_state_dict(params, strict=True)
    with torch.no_grad():
        # Our float32 sums against the reference's, in another order: the rounding bound of tests/tolerances.py.
        torch.testing.assert_close(block(data["input"]), data["output"], atol=network_atol(block, data["output"]),
                                   rtol=0)


def test_causal_conv_replicates_first_frame():
    conv = CausalConv3d(2, 3, (3, 3, 3), padding=1).double()
    x = torch.randn(1, 2, 4, 5, 5, dtype=torch.float64)
    padded = torch.cat([x[:, :, :1], x[:, :, :1], x], dim=2)
    expected = torch.nn.functional.conv3d(padded, conv.conv3d.weight, conv.conv3d.bias, padding=(0, 1, 1))
    torch.testing.assert_close(conv(x), expected)  # float64 defaults (1e-7): rounding here is ~1e-15
    assert [k for k in conv.state_dict()] == ["conv3d.weight", "conv3d.bias"]


def _causal(module, x, t_in, t_out):
    """Changing input frames >= t_in leaves output frames < t_out unchanged."""
    y = x.clone()
    y[:, :, t_in:] = torch.randn_like(y[:, :, t_in:])
    with torch.no_grad():
        a, b = module(x), module(y)
    # float64 (callers use .double()): rounding differences are ~1e-15 on any CPU; a leak of a later frame is O(1).
    torch.testing.assert_close(a[:, :, :t_out], b[:, :, :t_out], atol=1e-12, rtol=0)
    assert not torch.allclose(a[:, :, t_out:], b[:, :, t_out:])


@pytest.mark.parametrize(
    "make",
    [
        lambda: CausalGroupNorm(8),
        lambda: CausalResnetBlock3d(8, 16),
        lambda: CausalAttnBlock3d(8),
        lambda: CausalHybridUpsample3d(8, spatial=True, temporal=False),
    ],
)
def test_blocks_are_causal(make):
    torch.manual_seed(0)
    module = make().double()
    _causal(module, torch.randn(1, 8, 5, 4, 4, dtype=torch.float64), 3, 3)


def test_hybrid_samplers_causal_and_shapes():
    torch.manual_seed(0)
    down = CausalHybridDownsample3d(4, spatial=True, temporal=True).double()
    x = torch.randn(1, 4, 5, 8, 8, dtype=torch.float64)
    assert down(x).shape == (1, 4, 3, 4, 4)
    _causal(down, x, 3, 2)  # output frame k sees input frames <= 2k
    up = CausalHybridUpsample3d(4, spatial=True, temporal=True).double()
    z = torch.randn(1, 4, 3, 4, 4, dtype=torch.float64)
    assert up(z).shape == (1, 4, 5, 8, 8)
    assert up(z[:, :, :1]).shape == (1, 4, 1, 8, 8)  # a single frame is not repeated
    _causal(up, z, 2, 3)  # input frame k feeds output frames 2k-1, 2k
    assert [k.split(".")[0] for k in CausalHybridUpsample3d(4, spatial=True, temporal=False).state_dict()] == [
        "conv2", "conv2", "conv3", "conv3"
    ]
    with pytest.raises(ValueError):
        CausalHybridDownsample3d(4, spatial=False, temporal=False)
