"""Name/path resolution and Hub downloads (fake hub over real HTTP, hand-made HF cache); no network."""

import json

import pytest

from nemo_cosmos_tokenizer.hub.resolve import (
    CheckpointNotFoundError,
    WrongFamilyError,
    check_family,
    config_from_json,
    config_from_path,
    family_from_state_dict,
    parse_tokenizer_config,
    resolve_pretrained,
)
from nemo_cosmos_tokenizer.registry import UnknownModelError, get_config
from tokenizer_helpers import COMMIT, FakeHub, go_offline, use_endpoint, write_hf_cache

NAME = "Cosmos-0.1-Tokenizer-DV4x8x8"
REPO = f"nvidia/{NAME}"
KWARGS = {"name": "DV", "spatial_compression": 8, "temporal_compression": 4, "channels": 4,
          "channels_mult": [2, 4, 4], "num_res_blocks": 1, "z_channels": 16, "levels": [8, 8, 8, 5, 5, 5]}


@pytest.fixture
def repo_files(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("encoder.jit", "decoder.jit", "autoencoder.jit"):
        (src / name).write_bytes(name.encode() * 10)
    (src / "config.json").write_text(json.dumps({"architectures": ["CosmosTokenizer"], "kwargs": KWARGS}))
    return {p.name: p for p in src.iterdir()}


def test_config_json_formats(tmp_path):
    nvidia = tmp_path / "nvidia.json"
    nvidia.write_text('{"architectures": ["CosmosTokenizer"]}')  # what NVIDIA's repositories hold
    assert config_from_json(nvidia) is None
    ours = tmp_path / "ours.json"
    cfg = get_config("Cosmos-1.0-Tokenizer-CV4x8x8-LowRes")
    ours.write_text(json.dumps({"tokenizer_config": cfg.to_dict(), "name": "x"}))
    assert config_from_json(ours) == cfg
    flat = tmp_path / "flat.json"
    flat.write_text(json.dumps(cfg.to_cosmos_kwargs()))
    assert config_from_json(flat) == cfg
    assert parse_tokenizer_config(KWARGS).channels == 4
    assert parse_tokenizer_config("Cosmos-Tokenizer-DV4x8x8") == get_config(NAME)
    with pytest.raises(ValueError, match="tokenizer_config"):
        parse_tokenizer_config({"foo": 1})


def test_config_from_released_name_in_path(tmp_path):
    d = tmp_path / "ckpts" / "Cosmos-0.1-Tokenizer-CV4x8x8"
    d.mkdir(parents=True)
    assert config_from_path(d / "encoder.jit") == (get_config("Cosmos-0.1-Tokenizer-CV4x8x8"), "Cosmos-0.1-Tokenizer-CV4x8x8")
    cache = tmp_path / "models--nvidia--Cosmos-1.0-Tokenizer-DV8x16x16" / "snapshots" / COMMIT
    cache.mkdir(parents=True)
    assert config_from_path(cache)[1] == "Cosmos-1.0-Tokenizer-DV8x16x16"
    assert config_from_path(tmp_path) == (None, None)


def test_family_checks():
    assert family_from_state_dict({"encoder.patcher3d.wavelets": 0, "quantizer._levels": 0}) == "DV"
    assert family_from_state_dict({"decoder.unpatcher.wavelets": 0}) == "CI"
    assert family_from_state_dict({"x": 0}) is None
    check_family("CV", ("CV", "DV"), "x", "CausalVideoTokenizer")
    with pytest.raises(WrongFamilyError, match="continuous image.*use ImageTokenizer"):
        check_family("CI", ("CV", "DV"), "model X", "CausalVideoTokenizer")


def test_download_only_needed_files(tmp_path, monkeypatch, repo_files):
    with FakeHub({REPO: repo_files}) as hub:
        use_endpoint(monkeypatch, hub.url, tmp_path / "default-cache")
        resolved = resolve_pretrained(NAME, {"encoder"}, cache_dir=tmp_path / "cache")
        assert sorted(hub.downloads()) == ["config.json", "encoder.jit"]
        assert resolved.name == NAME and resolved.format == "jit" and resolved.source == REPO
        assert resolved.files["encoder"].read_bytes() == repo_files["encoder.jit"].read_bytes()
        assert str(tmp_path / "cache") in str(resolved.files["encoder"])
        assert resolved.config.channels == 4  # the reduced architecture of config.json wins over the registry
        # Aliases and the nvidia/ prefix resolve to the same repository; the cache answers without a download.
        hub.requests.clear()
        again = resolve_pretrained("nvidia/cosmos-tokenizer-dv4x8x8", {"encoder", "decoder"},
                                   cache_dir=tmp_path / "cache", revision="main")
        assert sorted(hub.downloads()) == ["decoder.jit"]
        assert again.files["encoder"] == resolved.files["encoder"]
        # Default cache (HF_HUB_CACHE) when no cache_dir is given.
        default = resolve_pretrained(NAME, {"autoencoder"})
        assert str(tmp_path / "default-cache") in str(default.files["autoencoder"])


def test_hub_errors(tmp_path, monkeypatch, repo_files):
    files = {k: v for k, v in repo_files.items() if k != "decoder.jit"}
    with FakeHub({REPO: files}) as hub:
        use_endpoint(monkeypatch, hub.url, tmp_path / "cache")
        with pytest.raises(CheckpointNotFoundError, match="has no file 'decoder.jit'"):
            resolve_pretrained(NAME, {"decoder"})
        with pytest.raises(CheckpointNotFoundError, match="revision 'v9' does not exist"):
            resolve_pretrained(NAME, {"encoder"}, revision="v9")
        with pytest.raises(CheckpointNotFoundError, match="someone/missing was not found"):
            resolve_pretrained("someone/missing", {"encoder"})
        with pytest.raises(UnknownModelError, match="Did you mean: Cosmos-0.1-Tokenizer-DV4x8x8"):
            resolve_pretrained("Cosmos-0.1-Tokenizer-DV4x8x9", {"encoder"})
        with pytest.raises(UnknownModelError):
            resolve_pretrained("nvidia/Cosmos-2.0-Tokenizer-DV4x8x8", {"encoder"})
        with pytest.raises(CheckpointNotFoundError, match="no such checkpoint directory"):
            resolve_pretrained(str(tmp_path / "nowhere"), {"encoder"})
        assert hub.downloads() == []


def test_offline_from_hand_made_cache(tmp_path, monkeypatch, repo_files):
    cache = tmp_path / "hf-cache"
    write_hf_cache(cache, REPO, {k: v for k, v in repo_files.items() if k != "autoencoder.jit"})
    go_offline(monkeypatch, cache)
    resolved = resolve_pretrained(NAME, {"encoder", "decoder"})
    assert resolved.files["decoder"].read_bytes() == repo_files["decoder.jit"].read_bytes()
    assert resolved.config.channels == 4
    pinned = resolve_pretrained(NAME, {"encoder"}, revision=COMMIT)
    assert pinned.files["encoder"] == resolved.files["encoder"]
    with pytest.raises(CheckpointNotFoundError, match="autoencoder.jit .* offline mode is on"):
        resolve_pretrained(NAME, {"autoencoder"})
    with pytest.raises(CheckpointNotFoundError, match="offline"):
        resolve_pretrained("Cosmos-0.1-Tokenizer-CI8x8", {"encoder"})


def test_local_files_only_with_explicit_cache(tmp_path, repo_files):
    cache = tmp_path / "hf-cache"
    write_hf_cache(cache, REPO, repo_files)
    resolved = resolve_pretrained(NAME, {"autoencoder"}, cache_dir=cache, local_files_only=True)
    assert resolved.files["autoencoder"].is_file()


def test_local_directory(tmp_path, repo_files):
    d = tmp_path / "my-ckpt"
    d.mkdir()
    (d / "encoder.jit").write_bytes(b"x")
    (d / "config.json").write_text(json.dumps(KWARGS))
    resolved = resolve_pretrained(d, {"encoder"})
    assert resolved.format == "jit" and resolved.files == {"encoder": d / "encoder.jit"}
    assert resolved.config.channels == 4
    with pytest.raises(CheckpointNotFoundError, match="has no decoder.jit .*holds: config.json, encoder.jit"):
        resolve_pretrained(d, {"encoder", "decoder"})
    (d / "model.safetensors").write_bytes(b"")
    assert resolve_pretrained(d, {"encoder", "decoder"}).format == "safetensors"
    assert resolve_pretrained(d, {"encoder"}, jit=True).format == "jit"
    with pytest.raises(CheckpointNotFoundError, match="is a file"):
        resolve_pretrained(d / "encoder.jit", {"encoder"})
