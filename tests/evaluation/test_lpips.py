"""LPIPS (VGG) against the ``lpips`` package under identical random weights; weight lookup and strict loading.

The ``lpips`` package imports torchvision for its VGG16 backbone, which cannot be installed beside this CPU torch
build; the ``fake_torchvision`` fixture hands it a VGG16 feature stack built from torchvision's published layout
with seeded random weights (see ``tests/evaluation_helpers.py``). Everything LPIPS itself does (input scaling, the
five slices, channel normalisation, linear heads, spatial mean, sum) is then the package's own code, with its own
v0.1 VGG heads file; ours loads the same backbone from a torchvision-format file and the same heads file.
Install it without dependencies: ``pip install --no-deps lpips==0.1.4``.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from evaluation_helpers import decode_video
from nemo_cosmos_tokenizer.evaluation import MissingWeightsError
from nemo_cosmos_tokenizer.evaluation.lpips_vgg import load_lpips
from nemo_cosmos_tokenizer.evaluation.scoring import lpips_input
from nemo_cosmos_tokenizer.evaluation.weights import find_weights

needs_lpips = pytest.mark.skipif(importlib.util.find_spec("lpips") is None,
                                 reason="the lpips package is the independent reference: pip install --no-deps lpips")


def _heads_file():
    spec = importlib.util.find_spec("lpips")
    from pathlib import Path

    return Path(list(spec.submodule_search_locations)[0]) / "weights" / "v0.1" / "vgg.pth"


@needs_lpips
def test_lpips_equals_the_lpips_package(fake_torchvision, vgg16_file, media_dir):
    import lpips

    reference = lpips.LPIPS(net="vgg", pnet_rand=True, verbose=False).eval()  # random trunk, the package's heads
    ours, files = load_lpips(vgg16_file, _heads_file())
    assert files["vgg16"]["sha256"] and files["lpips_heads"]["path"] == str(_heads_file())

    frames = decode_video(media_dir / "plant_tiny_64x48.mp4")[:3, :32]  # [3, 32, 64, 3] (small: VGG16 on a CPU)
    rng = np.random.default_rng(0)
    noisy = np.clip(frames.astype(int) + rng.integers(-40, 41, frames.shape), 0, 255).astype(np.uint8)
    x, y = lpips_input(torch.from_numpy(frames)), lpips_input(torch.from_numpy(noisy))
    # TokenBench's input: 2 * (p / 255 - 0.5) in float64, then float32.
    expected_x = torch.from_numpy(2 * (frames / 255.0 - 0.5)).to(torch.float32).permute(0, 3, 1, 2)
    assert torch.equal(x, expected_x)
    with torch.no_grad():
        ours_values = ours(x, y)  # one batch of 4 frames
        ref_values = torch.stack([reference(x[i:i + 1], y[i:i + 1]).reshape(()) for i in range(len(x))])  # TokenBench
    # float32 convolutions of 13 layers (sums of up to 4,608 products) in another batch shape: ~1e-6 relative
    # differences at most on a value that is a mean of positive terms; 1e-4 leaves room for any CPU's kernels.
    torch.testing.assert_close(ours_values, ref_values, rtol=1e-4, atol=1e-7)
    assert (ref_values > 0).all()
    with torch.no_grad():
        same = ours(x, x)
    assert torch.equal(same, torch.zeros_like(same))


@needs_lpips
def test_lpips_heads_found_in_the_lpips_package(monkeypatch, tmp_path):
    monkeypatch.setenv("NCT_EVAL_WEIGHTS", str(tmp_path))
    assert find_weights("lpips_heads") == _heads_file()


def test_missing_weights_name_the_file_and_where_to_get_it(monkeypatch, tmp_path):
    monkeypatch.setenv("NCT_EVAL_WEIGHTS", str(tmp_path / "empty"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(MissingWeightsError) as err:
        find_weights("vgg16")
    message = str(err.value)
    assert "vgg16-397923af.pth" in message and "download.pytorch.org" in message and str(tmp_path / "empty") in message
    with pytest.raises(MissingWeightsError, match="i3d_torchscript.pt.*--i3d-weights"):
        find_weights("i3d")
    with pytest.raises(MissingWeightsError, match="does not exist"):
        find_weights("i3d", tmp_path / "nope.pt")


def test_loading_is_strict(tmp_path, vgg16_file):
    heads = {f"lin{k}.model.1.weight": torch.zeros(1, c, 1, 1) for k, c in enumerate((64, 128, 256, 512, 512))}
    torch.save(heads, tmp_path / "vgg.pth")
    model, _ = load_lpips(vgg16_file, tmp_path / "vgg.pth")
    assert torch.equal(model.heads[3].weight, heads["lin3.model.1.weight"])

    torch.save({**heads, "lin5.model.1.weight": torch.zeros(1, 8, 1, 1)}, tmp_path / "extra.pth")
    with pytest.raises(ValueError, match="not the LPIPS VGG heads"):
        load_lpips(vgg16_file, tmp_path / "extra.pth")
    backbone = torch.load(vgg16_file)
    del backbone["features.28.bias"]
    torch.save(backbone, tmp_path / "vgg_missing.pth")
    with pytest.raises(ValueError, match="features.28.bias|28.bias"):
        load_lpips(tmp_path / "vgg_missing.pth", tmp_path / "vgg.pth")
