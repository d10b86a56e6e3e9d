"""Fixtures of the evaluation tests: random stand-ins for the metric weights that cannot ship
(see ``tests/evaluation_helpers.py``)."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest
import torch

from evaluation_helpers import TinyI3D, make_vgg16


@pytest.fixture
def fake_torchvision(monkeypatch):
    module = types.ModuleType("torchvision")
    module.models = types.SimpleNamespace(vgg16=lambda pretrained=False, **kwargs: make_vgg16())
    monkeypatch.setitem(sys.modules, "torchvision", module)
    for name in [m for m in sys.modules if m == "lpips" or m.startswith("lpips.")]:
        monkeypatch.delitem(sys.modules, name)  # re-import against this torchvision
    return module


@pytest.fixture(scope="session")
def vgg16_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("weights") / "vgg16-397923af.pth"
    torch.save(make_vgg16().state_dict(), path)
    return path


@pytest.fixture(scope="session")
def i3d_file(tmp_path_factory) -> Path:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        module = torch.jit.script(TinyI3D().eval())
    path = tmp_path_factory.mktemp("weights") / "i3d_torchscript.pt"
    module.save(str(path))
    return path
