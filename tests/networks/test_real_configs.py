"""The 18 released names at real size (meta device): key -> shape -> dtype lists in JIT order and parameter counts
equal ``conformance/real_configs/<name>.json``."""

import json

import pytest
import torch

from nemo_cosmos_tokenizer import TokenizerConfig, build_tokenizer, get_config, list_models


@pytest.mark.parametrize("name", list_models())
def test_real_config_layout(conformance_dir, name):
    ref = json.loads((conformance_dir / "real_configs" / f"{name}.json").read_text())
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


def test_list_models_has_18():
    assert len(list_models()) == 18
