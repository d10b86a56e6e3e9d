"""The NeMo ModelPT classes with the installed NeMo: list_available_models, .nemo save/restore, from_pretrained."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("nemo.core", reason="NeMo is not installed (pip install 'nemo-cosmos-tokenizer[nemo]')")


def test_core_imports_do_not_import_nemo():
    code = (
        "import sys, nemo_cosmos_tokenizer, nemo_cosmos_tokenizer.networks, nemo_cosmos_tokenizer.inference, "
        "nemo_cosmos_tokenizer.hub.resolve, nemo_cosmos_tokenizer.hub.convert\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('nemo', 'lightning', 'omegaconf', 'av', 'decord'))\n"
        "assert not heavy, heavy\n"
    )
    repo_root = str(Path(__file__).resolve().parents[2])
    subprocess.run([sys.executable, "-c", code], check=True, cwd=repo_root)


@pytest.fixture(scope="module")
def nemo_module():
    from nemo_cosmos_tokenizer.integrations import nemo as module

    return module


def test_list_available_models_and_registration(nemo_module):
    from nemo.core import ModelPT
    from nemo.core.classes.common import ALLOWED_TARGET_PREFIXES, PretrainedModelInfo

    assert "nemo_cosmos_tokenizer.integrations.nemo." in ALLOWED_TARGET_PREFIXES
    assert issubclass(nemo_module.CausalVideoTokenizer, ModelPT)
    for cls in (nemo_module.CosmosTokenizerModel, nemo_module.CausalVideoTokenizer, nemo_module.ImageTokenizer):
        infos = cls.list_available_models()
        assert len(infos) == 26 and all(isinstance(i, PretrainedModelInfo) for i in infos)
    infos = {i.pretrained_model_name: i for i in nemo_module.CausalVideoTokenizer.list_available_models()}
    dv = infos["Cosmos-0.1-Tokenizer-DV4x8x8"]
    assert dv.location == "https://huggingface.co/nvidia/Cosmos-0.1-Tokenizer-DV4x8x8"
    assert dv.class_ is nemo_module.CausalVideoTokenizer and dv.aliases == ["Cosmos-Tokenizer-DV4x8x8"]
    assert infos["Cosmos-1.0-Tokenizer-CI8x8-LowRes"].class_ is nemo_module.ImageTokenizer
    assert "Cosmos-1.0-Tokenizer-DV8x16x16" in nemo_module.CausalVideoTokenizer.get_available_model_names()


@pytest.mark.parametrize("use_pytorch", [True, False])
def test_save_restore_round_trip(nemo_module, jit_case_dir, tmp_path, use_pytorch):
    d = jit_case_dir("DV4x8x8")
    model = nemo_module.CausalVideoTokenizer.from_pretrained(d, dtype="float32", device="cpu", use_pytorch=use_pytorch)
    assert model.tokenizer.mode == ("torch" if use_pytorch else "jit")
    x = torch.rand(1, 3, 9, 32, 32) * 2 - 1
    indices, codes = model.encode(x)
    recon = model.decode(indices)
    path = tmp_path / "dv.nemo"
    model.save_to(str(path))
    assert model.tokenizer.mode == ("torch" if use_pytorch else "jit")  # a jit model is converted only for saving
    restored = nemo_module.CausalVideoTokenizer.restore_from(str(path), map_location="cpu")
    assert type(restored) is nemo_module.CausalVideoTokenizer and restored.tokenizer.mode == "torch"
    assert restored.config == model.config and restored.cfg.dtype == "float32"
    restored_indices, restored_codes = restored.encode(x)
    assert torch.equal(restored_indices, indices) and torch.equal(restored_codes, codes)
    assert torch.equal(restored.decode(indices), recon)
    video = (torch.rand(1, 4, 20, 24, 3) * 255).to(torch.uint8).numpy()
    assert (restored(video) == model(video)).all()


def test_partial_model_and_wrong_family(nemo_module, jit_case_dir, tmp_path):
    from nemo_cosmos_tokenizer.hub.resolve import WrongFamilyError

    d = jit_case_dir("DV4x8x8")
    encoder_only = nemo_module.CausalVideoTokenizer.from_pretrained(d, load_decoder=False, dtype="float32")
    assert encoder_only.cfg.load_dec_model is False
    assert not any(k.startswith("tokenizer.network.decoder.") for k in encoder_only.state_dict())
    encoder_only.save_to(str(tmp_path / "enc.nemo"))
    restored = nemo_module.CosmosTokenizerModel.restore_from(str(tmp_path / "enc.nemo"), map_location="cpu")
    assert type(restored) is nemo_module.CausalVideoTokenizer
    with pytest.raises(RuntimeError, match="without decoder weights"):
        restored.decode(torch.zeros(1, 1, 4, 4, dtype=torch.int32))
    with pytest.raises(WrongFamilyError, match="use ImageTokenizer"):
        nemo_module.CausalVideoTokenizer.from_pretrained(jit_case_dir("CI8x8"), dtype="float32")
    image = nemo_module.CosmosTokenizerModel.from_pretrained(jit_case_dir("CI8x8"), dtype="float32")
    assert image.tokenizer.config.family == "CI"


def test_from_pretrained_takes_the_builtins(nemo_module):
    """The NeMo entry point takes every name the commands take, built-ins included (no download)."""
    video = nemo_module.CausalVideoTokenizer.from_pretrained("tiny-random-dv8x16x16", device="cpu", dtype="float32")
    assert video.tokenizer.name == "tiny-random-dv8x16x16" and video.cfg.tokenizer_type == "tiny-random-dv8x16x16"
    image = nemo_module.CosmosTokenizerModel.from_pretrained("tiny-random-di8x8", device="cpu", dtype="float32")
    assert image.tokenizer.config.family == "DI" and type(image.tokenizer).__name__ == "ImageTokenizer"
    indices, _ = image.encode(torch.rand(1, 3, 16, 16) * 2 - 1)
    assert indices.shape == (1, 2, 2)
