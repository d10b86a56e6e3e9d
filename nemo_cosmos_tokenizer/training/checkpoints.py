"""Training checkpoints (resume the same run) and the final outputs.

* ``<output_dir>/checkpoints/step_<N>/state.pt``: network, EMA, optimisers, discriminator, the step, every RNG
  state and the log so far; written under a temporary folder name, then renamed; ``checkpoints/latest`` (a text
  file, replaced atomically) names the newest. The data position is the step itself (batches are a function of
  the step: :mod:`.data`), so nothing else is needed to continue exactly.
* ``<output_dir>/final/``: our safetensors format (``config.json`` + ``model.safetensors``, EMA weights when EMA is
  on) and ``train_config.yaml``: ``CausalVideoTokenizer.from_pretrained(<output_dir>/final)`` /
  ``ImageTokenizer``, and ``build-dataset --tokenizer <output_dir>/final``, load it.
* ``<output_dir>/jit/`` (``export_jit``): NVIDIA's ``encoder.jit`` / ``decoder.jit`` / ``autoencoder.jit`` and our
  ``config.json`` (which tells loaders the architecture of a size NVIDIA never released).
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..networks import CosmosTokenizer
from .config import TokenizerTrainConfig

__all__ = ["RESUME_KEYS", "export_jit_dir", "latest_checkpoint", "load_state", "rng_state", "save_state",
           "set_rng_state", "write_final"]

#: Settings a resumed run must share with its checkpoint (the others, e.g. max_steps or eval_every, may change).
RESUME_KEYS = ("input", "architecture", "family", "spatial_compression", "temporal_compression", "patch_size",
               "channels", "channels_mult", "num_res_blocks", "z_channels", "latent_channels", "levels", "init", "mode",
               "num_frames", "resolution", "fps", "image_every", "batch_size", "seed", "adversarial_weight",
               "ema_decay", "ema_warmup")


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _checkpoints(output_dir: str | os.PathLike) -> Path:
    return Path(output_dir) / "checkpoints"


def latest_checkpoint(output_dir: str | os.PathLike) -> Path | None:
    """The folder ``checkpoints/latest`` names, if it is complete."""
    pointer = _checkpoints(output_dir) / "latest"
    if not pointer.is_file():
        return None
    folder = _checkpoints(output_dir) / pointer.read_text(encoding="utf-8").strip()
    return folder if (folder / "state.pt").is_file() else None


def save_state(output_dir: str | os.PathLike, step: int, state: dict[str, Any], keep: int = 2) -> Path:
    """Write ``checkpoints/step_<step>/state.pt`` (temporary folder, then rename), point ``latest`` at it and keep
    the newest ``keep`` checkpoints."""
    root = _checkpoints(output_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step}"
    tmp = root / f".step_{step}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    torch.save(state, tmp / "state.pt")
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    pointer_tmp = root / f".latest.tmp-{os.getpid()}"
    pointer_tmp.write_text(final.name + "\n", encoding="utf-8")
    os.replace(pointer_tmp, root / "latest")
    steps = sorted((int(p.name.split("_")[1]) for p in root.glob("step_*") if p.name.split("_")[1].isdigit()))
    for old in steps[:-keep]:
        shutil.rmtree(root / f"step_{old}", ignore_errors=True)
    return final


def load_state(folder: Path, config: TokenizerTrainConfig) -> dict[str, Any]:
    """The state of a checkpoint folder, after checking it was made by the same run (:data:`RESUME_KEYS`)."""
    from .config import TrainConfigError

    state = torch.load(folder / "state.pt", map_location="cpu", weights_only=False)
    # Checkpoints from before ``ema_warmup`` existed used a constant decay: --no-ema-warmup resumes them.
    saved, now = {"ema_warmup": False, **state["config"]}, config.to_dict()
    changed = [k for k in RESUME_KEYS if saved.get(k) != now.get(k)]
    if changed:
        raise TrainConfigError(
            f"{folder} was written by a run with other settings: "
            + ", ".join(f"{k}={saved.get(k)!r} (now {now.get(k)!r})" for k in changed),
            "use another --output-dir for a new run, or --no-resume to start this one again from the beginning",
        )
    return state


def _write_dir(target: Path, write) -> Path:
    """Call ``write(tmp_folder)`` and rename the folder to ``target`` (replacing an older one)."""
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    write(tmp)
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, target)
    return target


def write_final(network: CosmosTokenizer, config: TokenizerTrainConfig, output_dir: str | os.PathLike,
                summary: dict[str, Any]) -> Path:
    """``<output_dir>/final/``: our format (the weights of ``network`` as given) + ``train_config.yaml`` +
    ``train_summary.json``."""
    from omegaconf import OmegaConf

    from ..hub.convert import save_pretrained

    def write(folder: Path) -> None:
        save_pretrained(network, folder)
        (folder / "train_config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(config.to_dict())),
                                                  encoding="utf-8")
        (folder / "train_summary.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")

    return _write_dir(Path(output_dir) / "final", write)


def export_jit_dir(network: CosmosTokenizer, output_dir: str | os.PathLike, example: torch.Tensor | None = None
                   ) -> Path:
    """``<output_dir>/jit/``: NVIDIA's three ``.jit`` files (bfloat16, traced as NVIDIA does) and our
    ``config.json`` naming the architecture."""
    from ..hub.convert import CONFIG_FILE, FORMAT_NAME, FORMAT_VERSION
    from ..hub.jit_export import export_jit

    def write(folder: Path) -> None:
        export_jit(network, folder, example_input=example)
        data = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "config": network.config.to_dict()}
        (folder / CONFIG_FILE).write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")

    return _write_dir(Path(output_dir) / "jit", write)
