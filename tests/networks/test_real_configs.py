"""The 26 released names at real size (meta device): key -> shape -> dtype lists in JIT order and parameter counts
equal ``conformance/real_configs/<name>.json`` (a Tokenize1 name: that of the 1.0 model it re-releases)."""

import json

import pytest
import torch

from nemo_cosmos_tokenizer import TokenizerConfig, build_tokenizer, get_config, list_models
from nemo_cosmos_tokenizer.registry import get_spec


@pytest.mark.parametrize("name", list_models())
def test_real_config_layout(conformance_dir, name):
    reference = get_spec(name).same_architecture_as or name
    ref = json.loads((conformance_dir / "real_configs" / f"{reference}.json").read_text())
    config = get_config(name)
    assert TokenizerConfig.from_cosmos_kwargs(ref["kwargs"]) == config
    with torch.device("meta"):
        model = build_tokenizer(config)
    for part in ("encoder", "decoder", "autoencoder"):
        ours = [[k, list(v.shape), str(v.dtype).removeprefix("torch.")] for k, v in model.cosmos_state_dict(part).items()]
        assert ours == ref[f"{part}_state_dict"], f"{name} {part}"
    counts = ref["param_count"]
    assert model.num_parameters("encoder") == counts["encoder_jit"]
    assert model.num_parameters("decoder") == counts["decoder_jit"]
    assert model.num_parameters() == counts["full_model"]
    # Only learnable tensors are persistent: state_dict() is the parameters, the JIT constants are buffers.
    assert set(model.state_dict()) == {k for k, _ in model.named_parameters()}


def test_list_models_has_26():
    names = list_models()
    assert len(names) == 26 and len(set(names)) == 26
    assert sum(n.startswith("Cosmos-Tokenize1-") for n in names) == 8
    # Every Tokenize1 row re-releases a 1.0 architecture with a reference config of its own.
    for name in names:
        spec = get_spec(name)
        assert (spec.release == "Tokenize1") == (spec.same_architecture_as is not None)
        if spec.same_architecture_as:
            assert get_spec(spec.same_architecture_as).release == "1.0"
