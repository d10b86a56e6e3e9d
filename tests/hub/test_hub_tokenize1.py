"""The Cosmos-Tokenize1 repositories: 26 names offline, EMA weights, latent statistics (mean_std.pt); no network.

Fake repositories hold either placeholder bytes (resolution only), or tiny conformance-weight models exported with
export_jit plus a config.json of their reduced architecture (loading). Real sizes only on the meta device.
"""

import copy
import json

import pytest
import torch
from safetensors.torch import load_file

from nemo_cosmos_tokenizer import CausalVideoTokenizer, ImageTokenizer, build_tokenizer, list_models
from nemo_cosmos_tokenizer.cli._tokenizer_args import add_tokenizer_arguments, load_tokenizer
from nemo_cosmos_tokenizer.hub.jit_export import export_jit
from nemo_cosmos_tokenizer.hub.resolve import CheckpointNotFoundError, resolve_pretrained
from nemo_cosmos_tokenizer.inference.latent_stats import LatentStats, LatentStatsError
from nemo_cosmos_tokenizer.inference.tokenizers import tokenizer_class
from nemo_cosmos_tokenizer.registry import get_config, get_spec
from tokenizer_helpers import FakeHub, go_offline, use_endpoint, write_hf_cache

CV = "Cosmos-Tokenize1-CV8x8x8-720p"
DV = "Cosmos-Tokenize1-DV8x16x16-720p"
CI = "Cosmos-Tokenize1-CI8x8-360p"

# From ../shared/reference/TOKENIZE1.md (cosmos-predict1 at 4ed35fa), written out here independently of registry.py.
TOKENIZE1 = {
    "Cosmos-Tokenize1-CV8x8x8-720p": "Cosmos-1.0-Tokenizer-CV8x8x8",
    "Cosmos-Tokenize1-DV8x16x16-720p": "Cosmos-1.0-Tokenizer-DV8x16x16",
    "Cosmos-Tokenize1-CI8x8-360p": "Cosmos-1.0-Tokenizer-CI8x8-LowRes",
    "Cosmos-Tokenize1-CI16x16-360p": "Cosmos-1.0-Tokenizer-CI16x16-LowRes",
    "Cosmos-Tokenize1-CV4x8x8-360p": "Cosmos-1.0-Tokenizer-CV4x8x8-LowRes",
    "Cosmos-Tokenize1-DI8x8-360p": "Cosmos-1.0-Tokenizer-DI8x8-LowRes",
    "Cosmos-Tokenize1-DI16x16-360p": "Cosmos-1.0-Tokenizer-DI16x16-LowRes",
    "Cosmos-Tokenize1-DV4x8x8-360p": "Cosmos-1.0-Tokenizer-DV4x8x8-LowRes",
}


def _case_of(name: str) -> str:
    """The conformance case with the family and compression of a released name (e.g. ``DV8x16x16``)."""
    config = get_config(name)
    return f"{config.family}{config.compression_label}"


def test_tokenize1_rows_are_the_published_repositories(conformance_dir):
    assert [n for n in list_models() if n.startswith("Cosmos-Tokenize1-")] == list(TOKENIZE1)
    for name, same_as in TOKENIZE1.items():
        spec = get_spec(name)
        assert spec.hub_repo == f"nvidia/{name}" and spec.release == "Tokenize1"
        assert spec.same_architecture_as == same_as and spec.config == get_config(same_as)
        assert spec.config.patch_size == (4 if name.endswith("-720p") else 2)  # "patch size 2" for the 360p ones
        ref = json.loads((conformance_dir / "real_configs" / f"{same_as}.json").read_text())
        assert ref["kwargs"]["name"] == spec.config.family
    # Extra files: mean_std.pt has a published MD5 for CV8x8x8-720p only; ema.jit is what the AR models name.
    assert {n: get_spec(n).files[3:] for n in TOKENIZE1 if get_spec(n).files[3:]} == {
        CV: ("mean_std.pt",), DV: ("ema.jit",)}


def _meta_state_dict(entries) -> dict[str, torch.Tensor]:
    return {key: torch.empty(shape, dtype=getattr(torch, dtype), device="meta") for key, shape, dtype in entries}


@pytest.mark.parametrize("name", list_models())
def test_every_name_resolves_offline_and_its_layouts_strict_load_at_real_size(name, tmp_path, monkeypatch,
                                                                              conformance_dir):
    spec = get_spec(name)
    src = tmp_path / "src"
    src.mkdir()
    files = {}
    for filename in spec.files + ("config.json",):
        files[filename] = src / filename
        # NVIDIA's config.json describes no architecture: the registry row gives it.
        content = '{"architectures": ["CosmosTokenizer"]}' if filename == "config.json" else f"{name}/{filename}"
        files[filename].write_text(content)
    write_hf_cache(tmp_path / "cache", spec.hub_repo, files)
    go_offline(monkeypatch, tmp_path / "cache")

    resolved = resolve_pretrained(f"nvidia/{name}", {"encoder", "decoder", "autoencoder"})
    assert resolved.name == name and resolved.config == spec.config and resolved.source == spec.hub_repo
    assert {p: f.read_text() for p, f in resolved.files.items()} == {
        p: f"{name}/{p}.jit" for p in ("encoder", "decoder", "autoencoder")}
    if spec.latent_stats_file:
        assert resolved.latent_stats.read_text() == f"{name}/mean_std.pt"
    else:
        assert resolved.latent_stats is None
    if spec.ema_file:
        ema = resolve_pretrained(name, {"autoencoder"}, ema=True)
        assert ema.files == {"autoencoder": ema.files["autoencoder"]}
        assert ema.files["autoencoder"].read_text() == f"{name}/ema.jit"
    else:
        with pytest.raises(CheckpointNotFoundError, match=f"{spec.hub_repo} has no ema.jit .*Load {name} without"):
            resolve_pretrained(name, {"autoencoder"}, ema=True)

    # Every layout the repository holds, at real size (the reference key/shape lists), loads strictly into the
    # row's architecture; ema.jit has the autoencoder.jit layout (NVIDIA traces the whole network for it).
    ref = json.loads((conformance_dir / "real_configs" / f"{spec.same_architecture_as or name}.json").read_text())
    with torch.device("meta"):
        model = build_tokenizer(spec.config)
    layouts = {"encoder": "encoder", "decoder": "decoder", "autoencoder": "autoencoder"}
    if spec.ema_file:
        layouts["ema"] = "autoencoder"
    for layout, part in layouts.items():
        model.load_cosmos_state_dict(_meta_state_dict(ref[f"{part}_state_dict"]), part=part)
    with pytest.raises(RuntimeError, match="missing keys"):
        model.load_cosmos_state_dict(_meta_state_dict(ref["autoencoder_state_dict"][1:]), part="autoencoder")


@pytest.fixture(scope="module")
def ema_dir(tmp_path_factory, load_conformance_model):
    """``ema.jit`` of DV8x16x16 with weights other than the case's (a stand-in for EMA weights)."""
    model = copy.deepcopy(load_conformance_model("DV8x16x16"))
    with torch.no_grad():
        for param in model.parameters():
            param.mul_(0.5).add_(0.01)
    directory = tmp_path_factory.mktemp("ema")
    export_jit(model, directory, dtype=torch.float32, parts=("autoencoder",))
    (directory / "autoencoder.jit").rename(directory / "ema.jit")
    return directory / "ema.jit", model


def _repo(case_dir, **extra):
    files = {name: case_dir / name for name in ("encoder.jit", "decoder.jit", "autoencoder.jit", "config.json")}
    return {**files, **extra}


def _weights(tokenizer) -> dict[str, torch.Tensor]:
    return {k: v for k, v in tokenizer.network.cosmos_state_dict("autoencoder").items()}


@pytest.mark.parametrize("name", list(TOKENIZE1))
def test_tokenize1_names_load_from_the_offline_cache(name, jit_case_dir, load_conformance_model, tmp_path,
                                                     monkeypatch):
    """from_pretrained(<name>) with HF_HUB_OFFLINE: tiny weights of that family and compression load strictly
    (the 18 earlier names load the same way in test_hub_pretrained.py / test_inference_tokenizers.py)."""
    case = _case_of(name)
    write_hf_cache(tmp_path / "cache", get_spec(name).hub_repo, _repo(jit_case_dir(case)))
    go_offline(monkeypatch, tmp_path / "cache")
    cls = tokenizer_class(get_config(name).family)
    tok = cls.from_pretrained(name, load_full_model=True, dtype="float32", device="cpu", latent_stats=False)
    assert tok.name == name and tok.mode == "torch"
    expected = load_conformance_model(case).cosmos_state_dict("autoencoder")
    ours = _weights(tok)
    assert list(ours) == list(expected) and all(torch.equal(ours[k], expected[k]) for k in expected)


def test_ema_weights_are_picked_by_the_flag(jit_case_dir, ema_dir, load_conformance_model, tmp_path, monkeypatch,
                                            conformance_dir):
    ema_file, ema_model = ema_dir
    case_dir = jit_case_dir("DV8x16x16")
    repos = {f"nvidia/{DV}": _repo(case_dir, **{"ema.jit": ema_file}), f"nvidia/{CI}": _repo(jit_case_dir("CI8x8"))}
    with FakeHub(repos) as hub:
        use_endpoint(monkeypatch, hub.url, tmp_path / "cache")
        ema = CausalVideoTokenizer.from_pretrained(DV, ema=True, dtype="float32", device="cpu")
        assert sorted(hub.downloads()) == ["config.json", "ema.jit"]  # only the EMA file, not encoder/decoder.jit
        plain = CausalVideoTokenizer.from_pretrained(DV, dtype="float32", device="cpu")
        expected_ema = ema_model.cosmos_state_dict("autoencoder")
        expected_plain = load_conformance_model("DV8x16x16").cosmos_state_dict("autoencoder")
        ema_weights, plain_weights = _weights(ema), _weights(plain)
        assert all(torch.equal(ema_weights[k], v) for k, v in expected_ema.items())
        assert all(torch.equal(plain_weights[k], v) for k, v in expected_plain.items())
        x = load_file(str(conformance_dir / "DV8x16x16" / "input.safetensors"))["input"]
        assert torch.equal(ema.encode(x)[0], ema_model.encode(x)[0])
        # Encoder only from the EMA file: the decoder side is dropped as for any encoder-only load.
        enc = CausalVideoTokenizer.from_pretrained(DV, ema=True, load_decoder=False, dtype="float32", device="cpu")
        assert enc.network.decoder is None and torch.equal(enc.encode(x)[0], ema.encode(x)[0])
        try:  # the NeMo model passes ema through (the same files; NeMo is optional)
            from nemo_cosmos_tokenizer.integrations.nemo import CausalVideoTokenizer as NemoVideoTokenizer
        except ImportError:
            NemoVideoTokenizer = None
        if NemoVideoTokenizer is not None:
            nemo_ema = NemoVideoTokenizer.from_pretrained(DV, ema=True, dtype="float32", device="cpu")
            assert torch.equal(nemo_ema.encode(x)[0].cpu(), ema.encode(x)[0])

        hub.requests.clear()
        with pytest.raises(CheckpointNotFoundError, match=rf"nvidia/{CI} has no ema.jit .*only {DV} has one"):
            ImageTokenizer.from_pretrained(CI, ema=True)
        with pytest.raises(ValueError, match="jit mode runs NVIDIA's"):
            CausalVideoTokenizer.from_pretrained(DV, ema=True, use_pytorch=False)
        assert hub.requests == []  # refused before any request

        # The CLI flag.
        import argparse

        parser = argparse.ArgumentParser()
        add_tokenizer_arguments(parser, default_tokenizer=DV)
        args = parser.parse_args(["in.mp4", "--ema", "--dtype", "float32", "--device", "cpu"])
        from_cli = _weights(load_tokenizer(args, "video"))
        assert all(torch.equal(from_cli[k], v) for k, v in expected_ema.items())


def test_ema_in_a_local_directory(jit_case_dir, ema_dir, tmp_path):
    d = tmp_path / "Cosmos-Tokenize1-DV8x16x16-720p"
    d.mkdir()
    for name, src in _repo(jit_case_dir("DV8x16x16")).items():
        (d / name).write_bytes(src.read_bytes())
    with pytest.raises(CheckpointNotFoundError, match="has no ema.jit .*holds: autoencoder.jit, config.json"):
        CausalVideoTokenizer.from_pretrained(d, ema=True)
    (d / "ema.jit").write_bytes(ema_dir[0].read_bytes())
    tok = CausalVideoTokenizer.from_pretrained(d, ema=True, dtype="float32", device="cpu")
    assert tok.name == DV
    weights = _weights(tok)
    assert all(torch.equal(weights[k], v) for k, v in ema_dir[1].cosmos_state_dict("autoencoder").items())


# ------------------------------------------------------------------------------------------ latent statistics
C, T_STATS = 16, 4  # the CV8x8x8 case has 16 latent channels; statistics for chunks of up to 4 latent frames


@pytest.fixture
def stats_tensors():
    g = torch.Generator().manual_seed(0)
    mean = torch.randn(C * T_STATS, generator=g)
    std = torch.rand(C * T_STATS, generator=g) + 0.5
    return mean, std


def _reference_normalize(latent, mean, std, chunk):
    """cosmos-predict1's steps, written out: stats view(C, -1)[:, :chunk] as [1, C, chunk, 1, 1]; the latent cut
    into chunks along time ("b c (n t) h w -> (b n) c t h w"), each (x - mean) / std, put back together."""
    b, c, t, h, w = latent.shape
    m = mean.view(c, -1)[:, :chunk].reshape(1, c, chunk, 1, 1)
    s = std.view(c, -1)[:, :chunk].reshape(1, c, chunk, 1, 1)
    chunks = latent.reshape(b, c, t // chunk, chunk, h, w).permute(0, 2, 1, 3, 4, 5).reshape(-1, c, chunk, h, w)
    out = (chunks - m) / s
    return out.reshape(b, t // chunk, c, chunk, h, w).permute(0, 2, 1, 3, 4, 5).reshape(b, c, t, h, w)


@pytest.fixture
def cv_hub(jit_case_dir, stats_tensors, tmp_path, monkeypatch):
    torch.save(stats_tensors, tmp_path / "mean_std.pt")
    repos = {f"nvidia/{CV}": _repo(jit_case_dir("CV8x8x8"), **{"mean_std.pt": tmp_path / "mean_std.pt"}),
             f"nvidia/{DV}": _repo(jit_case_dir("DV8x16x16")),
             "nvidia/Cosmos-Tokenize1-CV4x8x8-360p": _repo(jit_case_dir("CV4x8x8"))}
    with FakeHub(repos) as hub:
        use_endpoint(monkeypatch, hub.url, tmp_path / "cache")
        yield hub


def test_mean_std_is_loaded_and_normalises_as_cosmos_predict1(cv_hub, stats_tensors, conformance_dir):
    mean, std = stats_tensors
    tok = CausalVideoTokenizer.from_pretrained(CV, dtype="float32", device="cpu")
    assert sorted(cv_hub.downloads()) == ["config.json", "decoder.jit", "encoder.jit", "mean_std.pt"]
    assert tok.latent_stats.mean.shape == (C, T_STATS)
    x = load_file(str(conformance_dir / "CV8x8x8" / "input.safetensors"))["input"]
    (latent,) = tok.encode(x)  # [1, 16, 3, 4, 4]: one chunk of 3 latent frames
    # Elementwise (x - m) / s with the same float32 operands: identical bits, whatever the CPU or thread count.
    assert torch.equal(tok.normalize_latent(latent), _reference_normalize(latent, mean, std, latent.shape[2]))
    long = torch.randn(2, C, 6, 3, 5, generator=torch.Generator().manual_seed(1)) * 3
    for chunk in (1, 2, 3):
        assert torch.equal(tok.normalize_latent(long, chunk), _reference_normalize(long, mean, std, chunk))
    # Round trip: three float32 roundings of values up to |x| + |m|.
    back = tok.denormalize_latent(tok.normalize_latent(long, 3), 3)
    atol = 8 * torch.finfo(torch.float32).eps * float(long.abs().max() + mean.abs().max())
    torch.testing.assert_close(back, long, rtol=0, atol=atol)
    # A bfloat16 tokenizer holds bfloat16 statistics (cosmos-predict1's is_bf16 VAEs), applied in the latent's dtype.
    bf16 = CausalVideoTokenizer.from_pretrained(CV, dtype="bfloat16", device="cpu", load_encoder=False)
    ref = _reference_normalize(long, mean.bfloat16().float(), std.bfloat16().float(), 2)
    assert torch.equal(bf16.normalize_latent(long, 2), ref)


def test_latent_stats_errors(cv_hub, stats_tensors, tmp_path):
    tok = CausalVideoTokenizer.from_pretrained(CV, dtype="float32", device="cpu")
    with pytest.raises(LatentStatsError, match="up to 4 latent frames, the latent has 6; pass chunk_latent_frames"):
        tok.normalize_latent(torch.zeros(1, C, 6, 2, 2))
    with pytest.raises(LatentStatsError, match="6 frames cannot be cut into chunks of 4"):
        tok.normalize_latent(torch.zeros(1, C, 6, 2, 2), 4)
    with pytest.raises(LatentStatsError, match=r"latents \[B, 16, \(t\), h, w\]"):
        tok.normalize_latent(torch.zeros(1, 8, 3, 2, 2))
    with pytest.raises(LatentStatsError, match="an image latent .* needs per-channel statistics"):
        tok.denormalize_latent(torch.zeros(1, C, 2, 2))

    cv_hub.requests.clear()
    with pytest.raises(CheckpointNotFoundError, match="discrete causal video tokenizer: its tokens are integer"):
        CausalVideoTokenizer.from_pretrained(DV, latent_stats=True)
    with pytest.raises(CheckpointNotFoundError, match="CV4x8x8-360p has no mean_std.pt .*for " + CV + " only"):
        CausalVideoTokenizer.from_pretrained("Cosmos-Tokenize1-CV4x8x8-360p", latent_stats=True)
    assert cv_hub.requests == []
    no_stats = CausalVideoTokenizer.from_pretrained(CV, latent_stats=False, dtype="float32", device="cpu")
    assert "mean_std.pt" not in cv_hub.downloads() and no_stats.latent_stats is None
    with pytest.raises(ValueError, match="has no latent statistics.*LatentStats.load"):
        no_stats.normalize_latent(torch.zeros(1, C, 1, 2, 2))
    dv = CausalVideoTokenizer.from_pretrained(DV, dtype="float32", device="cpu", load_decoder=False)
    with pytest.raises(TypeError, match="discrete: its tokens are integer indices"):
        dv.normalize_latent(torch.zeros(1, 6, 1, 2, 2))

    # Files that are not NVIDIA's statistics.
    torch.save((torch.zeros(10), torch.ones(10)), tmp_path / "bad.pt")
    with pytest.raises(LatentStatsError, match="10 values; both must be a multiple of the model's 16"):
        LatentStats.load(tmp_path / "bad.pt", C)
    torch.save({"mean": torch.zeros(16)}, tmp_path / "dict.pt")
    with pytest.raises(LatentStatsError, match="pair of tensors"):
        LatentStats.load(tmp_path / "dict.pt", C)
    torch.save((torch.zeros(16), torch.zeros(16)), tmp_path / "zero_std.pt")
    with pytest.raises(LatentStatsError, match="std > 0"):
        LatentStats.load(tmp_path / "zero_std.pt", C)


def test_per_channel_statistics_and_local_directories(jit_case_dir, stats_tensors, tmp_path):
    # Stored as [1, C, T, 1, 1] instead of flat: read channel-major all the same.
    mean, std = stats_tensors
    d = tmp_path / "Cosmos-Tokenize1-CV8x8x8-720p"
    d.mkdir()
    for name, src in _repo(jit_case_dir("CV8x8x8")).items():
        (d / name).write_bytes(src.read_bytes())
    tok = CausalVideoTokenizer.from_pretrained(d, dtype="float32", device="cpu")
    assert tok.latent_stats is None  # the directory has none
    with pytest.raises(CheckpointNotFoundError, match="has no mean_std.pt"):
        CausalVideoTokenizer.from_pretrained(d, latent_stats=True)
    torch.save((mean.reshape(1, C, T_STATS, 1, 1), std.reshape(1, C, T_STATS, 1, 1)), d / "mean_std.pt")
    tok = CausalVideoTokenizer.from_pretrained(d, dtype="float32", device="cpu")
    latent = torch.randn(1, C, 4, 2, 2)
    assert torch.equal(tok.normalize_latent(latent), _reference_normalize(latent, mean, std, 4))
    # One value per channel (an image model's statistics): [1, C, 1, 1], for image and video latents alike.
    per_channel = LatentStats.load(_save(tmp_path / "pc.pt", mean[:C], std[:C]), C)
    image = torch.randn(2, C, 3, 3)
    assert torch.equal(per_channel.normalize(image), (image - mean[:C].view(1, C, 1, 1)) / std[:C].view(1, C, 1, 1))
    video = torch.randn(1, C, 5, 2, 2)
    assert torch.equal(per_channel.normalize(video),
                       (video - mean[:C].view(1, C, 1, 1, 1)) / std[:C].view(1, C, 1, 1, 1))


def _save(path, mean, std):
    torch.save((mean, std), path)
    return path
