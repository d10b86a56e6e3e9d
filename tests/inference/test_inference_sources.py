"""The Python entry point takes every name the commands take: ``from_pretrained`` of the built-ins (video and
image), of one ``.jit`` file, and of a misspelt name (the resolver's message, which never suggests a name it would
refuse); JIT files made by ``export_jit`` in bfloat16 run in the dtype they were traced in."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from nemo_cosmos_tokenizer import CausalVideoTokenizer, ImageTokenizer
from nemo_cosmos_tokenizer.hub.resolve import CheckpointNotFoundError, WrongFamilyError
from nemo_cosmos_tokenizer.hub.sources import UnknownTokenizerError, resolve_tokenizer_source
from nemo_cosmos_tokenizer.inference.from_source import load_tokenizer
from nemo_cosmos_tokenizer.registry import BUILTIN_MODELS, UnknownModelError, get_config, resolve_name

PACKAGE = Path(__file__).resolve().parents[2] / "nemo_cosmos_tokenizer"


@pytest.mark.parametrize("name,cls", [("tiny-random-dv8x16x16", CausalVideoTokenizer),
                                      ("Tiny-Random-DI8x8", ImageTokenizer)])
def test_from_pretrained_takes_the_builtins(name, cls):
    tok = cls.from_pretrained(name, device="cpu", dtype="float32")
    assert tok.name == name.lower() and tok.mode == "torch" and tok.dtype == torch.float32
    assert tok.config == BUILTIN_MODELS[name.lower()].config
    # The same weights as the commands' loader (seeded: every load is the same network).
    same = load_tokenizer(name, device="cpu", dtype="float32")
    assert type(same) is cls
    for (k, a), (_, b) in zip(tok.network.state_dict().items(), same.network.state_dict().items()):
        assert torch.equal(a, b), k
    encoder_only = cls.from_pretrained(name, load_decoder=False, device="cpu", dtype="float32")
    assert encoder_only.network.decoder is None
    other = ImageTokenizer if cls is CausalVideoTokenizer else CausalVideoTokenizer
    with pytest.raises(WrongFamilyError, match=f"use {cls.__name__} for it"):
        other.from_pretrained(name)
    with pytest.raises(ValueError, match="built in .*leave use_pytorch unset"):
        cls.from_pretrained(name, use_pytorch=False)
    with pytest.raises(ValueError, match="ema.jit"):
        cls.from_pretrained(name, ema=True)


def test_builtin_image_tokenizer_spreads_its_codes():
    tok = ImageTokenizer.from_pretrained("tiny-random-di8x8", device="cpu", dtype="float32")
    images = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    indices, codes = tok.encode_uint8(images)
    assert indices.shape == (2, 8, 8) and indices.dtype == torch.int32 and codes.shape == (2, 6, 8, 8)
    # Random weights give a nearly constant FSQ input; the scaled quant_conv spreads the 128 tokens over many codes.
    assert indices.unique().numel() > 64
    assert tok(images).shape == images.shape


def test_a_misspelt_name_gets_the_commands_message_and_only_names_it_accepts():
    for typo in ("tiny-random-dv8x16", "tiny-random-di8x", "Cosmos-0.1-Tokenizer-DV4x8x9"):
        with pytest.raises(UnknownTokenizerError) as info:
            CausalVideoTokenizer.from_pretrained(typo)
        message = str(info.value)
        suggested = re.search(r"Did you mean: (.*?)\?", message).group(1).split(", ")
        assert typo not in suggested and "a built-in (tiny-random-dv8x16x16, tiny-random-di8x8" in message
        for name in suggested:  # every hint is a name the entry point takes
            assert resolve_tokenizer_source(name).kind in ("builtin", "released"), name
    # The registry resolves released names only: its hints are released names, and a built-in is named as such.
    with pytest.raises(UnknownModelError) as info:
        resolve_name("tiny-random-dv8x16")
    hint = re.search(r"Did you mean: (.*?)\?", str(info.value))
    assert hint is None or "tiny-random" not in hint.group(1), str(info.value)
    assert "tiny-random-dv8x16x16" not in str(info.value)
    with pytest.raises(UnknownModelError, match="tiny-random-dv8x16x16 is a built-in tokenizer .*not a released"):
        get_config("tiny-random-dv8x16x16")


def test_from_pretrained_takes_one_jit_file(jit_case_dir):
    d = jit_case_dir("DV4x8x8")
    both = CausalVideoTokenizer.from_pretrained(d / "autoencoder.jit", device="cpu", dtype="float32")
    folder = CausalVideoTokenizer.from_pretrained(d, device="cpu", dtype="float32")
    x = torch.rand(1, 3, 5, 16, 16) * 2 - 1
    assert torch.equal(both.encode(x)[0], folder.encode(x)[0])
    encoder = CausalVideoTokenizer.from_pretrained(str(d / "encoder.jit"), load_decoder=False, device="cpu",
                                                   dtype="float32")
    assert torch.equal(encoder.encode(x)[0], folder.encode(x)[0])
    with pytest.raises(CheckpointNotFoundError, match="holds only the encoder; this also needs the decoder"):
        CausalVideoTokenizer.from_pretrained(d / "encoder.jit")
    with pytest.raises(CheckpointNotFoundError, match="not a .jit file"):
        CausalVideoTokenizer.from_pretrained(d / "config.json")


def test_bfloat16_jit_files_run_in_their_dtype_whatever_was_asked(tmp_path):
    """``export_jit``'s bfloat16 files hold casts to bfloat16 in their graphs: cast to float32 (the CPU default)
    they failed with "Input type (CPUBFloat16Type) and weight type (torch.FloatTensor)"."""
    from nemo_cosmos_tokenizer.hub.jit_export import export_jit
    from nemo_cosmos_tokenizer.hub.sources import build_builtin_network

    network = build_builtin_network("tiny-random-di8x8")
    export_jit(network, tmp_path, dtype=torch.bfloat16)
    jit = ImageTokenizer(checkpoint=tmp_path / "autoencoder.jit", checkpoint_enc=tmp_path / "encoder.jit",
                         checkpoint_dec=tmp_path / "decoder.jit", device="cpu", dtype="float32", mode="jit")
    assert jit.mode == "jit" and jit.dtype == torch.bfloat16  # the files' dtype, not the one asked for
    x = torch.rand(2, 3, 16, 24) * 2 - 1  # float32 input: cast to the module's dtype at the boundary
    indices, codes = jit.encode(x)
    assert indices.shape == (2, 2, 3) and codes.dtype == torch.bfloat16
    assert jit.decode(indices).shape == (2, 3, 16, 24) and jit.autoencode(x).shape == (2, 3, 16, 24)
    # The same weights in our network at bfloat16 give the same tokens (the traced code is ours, in bfloat16).
    native = ImageTokenizer.from_network(network, device="cpu", dtype="bfloat16")
    assert torch.equal(native.encode(x)[0], indices)
    # The uint8 path of reconstruct-images.
    images = np.random.default_rng(1).integers(0, 256, (1, 20, 28, 3), dtype=np.uint8)
    assert jit(images).shape == images.shape


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth (lazy, TYPE_CHECKING and __getattr__ imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            found.add("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_hub_sources_and_inference_from_source_do_not_import_each_other():
    """hub sits below inference: inference.from_source may use hub.sources, never the other way round."""
    sources = _imports(PACKAGE / "hub" / "sources.py")
    assert not [m for m in sources if "inference" in m], sources
    assert "..hub.sources" in _imports(PACKAGE / "inference" / "from_source.py")


def test_resolve_suffix_takes_the_newest_release_of_a_suffix():
    from nemo_cosmos_tokenizer.registry import list_models, resolve_suffix

    newest = [m for m in list_models() if m.lower().endswith("-dv8x16x16")][-1]
    assert resolve_suffix("DV8x16x16") == newest
    assert resolve_suffix("dv8x16x16") == newest
    assert resolve_suffix("Cosmos-0.1-Tokenizer-DV8x16x16") == "Cosmos-0.1-Tokenizer-DV8x16x16"  # full names as given
    with pytest.raises(UnknownModelError):
        resolve_suffix("DV3x3x3")
