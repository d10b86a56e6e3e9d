"""The presets are defined once (nemo_cosmos_tokenizer/recipes/presets.py); recipes/*.yaml are generated from them."""

from __future__ import annotations

from pathlib import Path

import yaml

from nemo_cosmos_tokenizer.recipes.presets import PRESETS, recipe_yaml, write_recipes

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def _build_recipes() -> set[str]:
    """The dataset builder's recipe files; ``train_*.yaml`` are megatron/train.py's TrainConfig files, not presets."""
    return {p.stem for p in RECIPES.glob("*.yaml") if not p.stem.startswith("train_")}


def test_recipe_files_are_generated_from_the_presets():
    assert _build_recipes() == set(PRESETS), "a recipe file without a preset, or the reverse"
    for name in PRESETS:
        assert (RECIPES / f"{name}.yaml").read_text(encoding="utf-8") == recipe_yaml(name), (
            f"recipes/{name}.yaml differs from its preset: run `python scripts/generate_recipes.py`")


def test_generated_yaml_holds_exactly_the_preset(tmp_path):
    for path in write_recipes(tmp_path):
        assert yaml.safe_load(path.read_text()) == PRESETS[path.stem]
        assert path.read_text().splitlines()[0].startswith(
            f"# torchrun --nproc-per-node 8 scripts/build_video_token_dataset.py --config recipes/{path.stem}.yaml ")
