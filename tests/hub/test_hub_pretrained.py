"""from_pretrained end to end: a fake Hub over HTTP, a hand-made HF cache with HF_HUB_OFFLINE=1, local dirs.

The repositories carry released names but hold tiny conformance-weight models exported with export_jit; their
config.json (NVIDIA's ``architectures`` key plus the reduced reference kwargs) tells from_pretrained the size.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from nemo_cosmos_tokenizer import CausalVideoTokenizer, ImageTokenizer
from nemo_cosmos_tokenizer.hub.convert import save_pretrained
from nemo_cosmos_tokenizer.hub.resolve import CheckpointNotFoundError, WrongFamilyError
from nemo_cosmos_tokenizer.registry import UnknownModelError
from tokenizer_helpers import FakeHub, use_endpoint, write_hf_cache

DV = "Cosmos-0.1-Tokenizer-DV4x8x8"
CI = "Cosmos-0.1-Tokenizer-CI8x8"


def _repo(d):
    return {name: d / name for name in ("encoder.jit", "decoder.jit", "autoencoder.jit", "config.json")}


@pytest.fixture
def hub(jit_case_dir, tmp_path, monkeypatch):
    repos = {f"nvidia/{DV}": _repo(jit_case_dir("DV4x8x8")), f"nvidia/{CI}": _repo(jit_case_dir("CI8x8"))}
    with FakeHub(repos) as server:
        use_endpoint(monkeypatch, server.url, tmp_path / "hf-cache")
        yield server


def test_from_pretrained_through_the_hub(hub, conformance_dir, tmp_path):
    x = load_file(str(conformance_dir / "DV4x8x8" / "input.safetensors"))["input"]
    golden = load_file(str(conformance_dir / "DV4x8x8" / "output.safetensors"))
    tok = CausalVideoTokenizer.from_pretrained(DV, load_decoder=False, dtype="float32", device="cpu")
    assert sorted(hub.downloads()) == ["config.json", "encoder.jit"]  # only what the flags need
    assert tok.mode == "torch" and tok.name == DV and tok.config.channels == 4
    indices, codes = tok.encode(x)
    assert torch.equal(indices, golden["indices"])
    # NeMo's keyword, a legacy alias, the cache: only decoder.jit is new.
    hub.requests.clear()
    full = CausalVideoTokenizer.from_pretrained(tokenizer_type="Cosmos-Tokenizer-DV4x8x8", dtype="float32")
    assert hub.downloads() == ["decoder.jit"]
    torch.testing.assert_close(full.decode(indices), golden["reconstruction"], atol=2e-4, rtol=1e-4)
    # Native full model: autoencoder.jit alone provides both sides. Jit mode runs the files as they are.
    hub.requests.clear()
    auto = CausalVideoTokenizer.from_pretrained(DV, load_full_model=True, dtype="float32", revision="main")
    assert hub.downloads() == ["autoencoder.jit"]
    jit = CausalVideoTokenizer.from_pretrained(DV, load_full_model=True, use_pytorch=False, dtype="float32")
    assert jit.mode == "jit" and jit.jit_autoencoder is not None
    assert torch.equal(auto.autoencode(x), jit.autoencode(x))
    assert torch.equal(auto.encode(x)[0], indices)
    # An explicit cache_dir is used instead of the default cache.
    own = CausalVideoTokenizer.from_pretrained(DV, load_decoder=False, cache_dir=tmp_path / "own", dtype="float32")
    assert (tmp_path / "own" / f"models--nvidia--{DV}").is_dir() and torch.equal(own.encode(x)[0], indices)
    image = ImageTokenizer.from_pretrained(CI, dtype="float32")
    assert image.config.family == "CI"


def test_from_pretrained_errors(hub):
    with pytest.raises(WrongFamilyError, match="continuous image tokenizer .*use ImageTokenizer"):
        CausalVideoTokenizer.from_pretrained(CI)
    with pytest.raises(WrongFamilyError, match="use CausalVideoTokenizer"):
        ImageTokenizer.from_pretrained("nvidia/" + DV)
    assert hub.downloads() == []  # refused before any download
    with pytest.raises(UnknownModelError, match="Did you mean"):
        CausalVideoTokenizer.from_pretrained("Cosmos-0.1-Tokenizer-DV4x4x4")
    with pytest.raises(CheckpointNotFoundError, match="nvidia/Cosmos-0.1-Tokenizer-CV8x8x8 was not found"):
        CausalVideoTokenizer.from_pretrained("Cosmos-0.1-Tokenizer-CV8x8x8")  # not served by the fake hub
    with pytest.raises(CheckpointNotFoundError, match="revision 'v2' does not exist"):
        CausalVideoTokenizer.from_pretrained(DV, revision="v2")
    with pytest.raises(ValueError, match="nothing to load"):
        CausalVideoTokenizer.from_pretrained(DV, load_encoder=False, load_decoder=False)


def test_from_pretrained_local_directories(jit_case_dir, load_conformance_model, tmp_path):
    d = jit_case_dir("DV4x8x8")
    from_jit = CausalVideoTokenizer.from_pretrained(d, dtype="float32")
    save_pretrained(load_conformance_model("DV4x8x8"), tmp_path / "st")
    from_st = CausalVideoTokenizer.from_pretrained(tmp_path / "st", load_decoder=False, dtype="float32")
    assert from_st.network.decoder is None
    x = torch.rand(1, 3, 5, 16, 16) * 2 - 1
    assert torch.equal(from_jit.encode(x)[0], from_st.encode(x)[0])
    with pytest.raises(CheckpointNotFoundError, match="jit mode needs NVIDIA's .jit files"):
        CausalVideoTokenizer.from_pretrained(tmp_path / "st", use_pytorch=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CheckpointNotFoundError, match="has no decoder.jit, encoder.jit"):
        CausalVideoTokenizer.from_pretrained(empty)


def test_offline_from_hand_made_cache_in_a_subprocess(jit_case_dir, tmp_path):
    """HF_HUB_OFFLINE=1 as a user sets it: read by huggingface_hub at import, so in a fresh interpreter."""
    cache = tmp_path / "cache"
    write_hf_cache(cache, f"nvidia/{DV}", {k: v for k, v in _repo(jit_case_dir("DV4x8x8")).items()
                                           if k != "autoencoder.jit"})
    script = textwrap.dedent(f"""
        import json, sys, torch
        from huggingface_hub import constants
        from nemo_cosmos_tokenizer import CausalVideoTokenizer
        from nemo_cosmos_tokenizer.hub.resolve import CheckpointNotFoundError
        assert constants.HF_HUB_OFFLINE
        tok = CausalVideoTokenizer.from_pretrained("nvidia/{DV}", dtype="float32")
        x = torch.zeros(1, 3, 5, 16, 16)
        indices, codes = tok.encode(x)
        try:
            CausalVideoTokenizer.from_pretrained("{DV}", load_full_model=True)
        except CheckpointNotFoundError as err:
            message = str(err)
        print(json.dumps({{"shape": list(indices.shape), "mode": tok.mode, "error": message}}))
    """)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache), "HF_ENDPOINT": "http://127.0.0.1:9"}
    repo_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join([repo_root, env.get("PYTHONPATH", "")])
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["shape"] == [1, 2, 2, 2] and out["mode"] == "torch"
    assert "autoencoder.jit" in out["error"] and "offline mode is on" in out["error"]
