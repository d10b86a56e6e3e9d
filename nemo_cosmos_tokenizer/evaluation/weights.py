"""Where the metric networks' weights come from, and their checksums.

The weights TokenBench's metrics need cannot ship with this package, and their libraries download them at run time
(impossible on an air-gapped cluster). Each is looked up, in order, at

1. an explicit path (``EvalConfig.vgg16_weights`` / ``lpips_heads`` / ``i3d_weights``, or the CLI flag);
2. the folder ``$NCT_EVAL_WEIGHTS`` (default ``~/.cache/nemo_cosmos_tokenizer/eval``), under the file's usual name;
3. the cache its own library uses: torchvision's hub cache for VGG16, the installed ``lpips`` (or ``torchmetrics``)
   package for the LPIPS heads, the hub cache and TokenBench's folder for the I3D TorchScript.

A missing file raises :class:`MissingWeightsError`, which names the file, the places searched and where it comes
from. Every file used is recorded in ``metrics.json`` with its sha256.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["WEIGHT_FILES", "MissingWeightsError", "WeightFile", "eval_weights_dir", "file_sha256", "find_weights"]


@dataclass(frozen=True)
class WeightFile:
    """One file a metric needs."""

    key: str
    """``vgg16``, ``lpips_heads`` or ``i3d``."""

    filename: str
    """Its usual file name (what the cache folders hold)."""

    what: str
    source: str
    """Where to get it (shown when it is missing)."""


WEIGHT_FILES: dict[str, WeightFile] = {
    "vgg16": WeightFile(
        "vgg16", "vgg16-397923af.pth", "torchvision's ImageNet VGG16 (IMAGENET1K_V1), the LPIPS backbone",
        "https://download.pytorch.org/models/vgg16-397923af.pth (torchvision.models.vgg16(weights='IMAGENET1K_V1') "
        "saves it to $TORCH_HOME/hub/checkpoints/)",
    ),
    "lpips_heads": WeightFile(
        "lpips_heads", "vgg.pth", "the LPIPS v0.1 linear heads for VGG",
        "the `lpips` pip package (lpips/weights/v0.1/vgg.pth), or "
        "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/vgg.pth",
    ),
    "i3d": WeightFile(
        "i3d", "i3d_torchscript.pt", "StyleGAN-V's I3D TorchScript (the rFVD feature network TokenBench uses)",
        "https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt?dl=1 (StyleGAN-V; TokenBench keeps it at "
        "pretrained_ckpts/opensora/eval/fvd/styleganv/i3d_torchscript.pt)",
    ),
}


#: The ``evaluate`` flag that passes each file.
_FLAGS = {"vgg16": "--vgg16-weights", "lpips_heads": "--lpips-heads", "i3d": "--i3d-weights"}


class MissingWeightsError(FileNotFoundError):
    """A metric's weight file is not on this machine."""


def eval_weights_dir() -> Path:
    """``$NCT_EVAL_WEIGHTS`` or ``~/.cache/nemo_cosmos_tokenizer/eval``."""
    return Path(os.environ.get("NCT_EVAL_WEIGHTS", "~/.cache/nemo_cosmos_tokenizer/eval")).expanduser()


def _torch_hub_checkpoints() -> Path:
    # torch.hub.get_dir(): $TORCH_HOME/hub (default ~/.cache/torch/hub); torchvision saves weights under checkpoints/.
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def _package_dir(name: str) -> Path | None:
    """The folder of an installed package, without importing it (``lpips`` imports torchvision)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def candidate_paths(key: str) -> list[Path]:
    """Where :func:`find_weights` looks for ``key`` (after an explicit path), in order."""
    entry = WEIGHT_FILES[key]
    paths = [eval_weights_dir() / entry.filename]
    if key == "lpips_heads":
        paths = [eval_weights_dir() / "lpips_vgg_v0.1.pth", *paths]
        packaged = (("lpips", "weights/v0.1/vgg.pth"), ("torchmetrics", "functional/image/lpips_models/vgg.pth"))
        for package, sub in packaged:
            folder = _package_dir(package)
            if folder is not None:
                paths.append(folder / sub)
    elif key == "vgg16":
        paths.append(_torch_hub_checkpoints() / entry.filename)
    elif key == "i3d":
        paths += [_torch_hub_checkpoints() / entry.filename,
                  Path("pretrained_ckpts/opensora/eval/fvd/styleganv") / entry.filename]
    return paths


def find_weights(key: str, explicit: str | os.PathLike | None = None) -> Path:
    """The weight file ``key`` (see :data:`WEIGHT_FILES`): ``explicit`` if given, else the first existing candidate.

    Raises :class:`MissingWeightsError` naming the file, the places searched and where to download it.
    """
    entry = WEIGHT_FILES[key]
    if explicit is not None:
        path = Path(explicit).expanduser()
        if path.is_file():
            return path
        raise MissingWeightsError(f"{entry.what}: {path} does not exist; get {entry.filename} from {entry.source}")
    searched = candidate_paths(key)
    for path in searched:
        if path.is_file():
            return path
    where = "\n  ".join(str(p) for p in searched)
    raise MissingWeightsError(
        f"{entry.what} not found ({entry.filename}); searched:\n  {where}\n"
        f"Get it from {entry.source} and put it in {eval_weights_dir()} (or $NCT_EVAL_WEIGHTS), or pass its path "
        f"({_FLAGS[key]})."
    )


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
