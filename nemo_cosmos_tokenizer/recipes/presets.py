"""Settings of the common dataset builds, as data, in one place: the YAML recipes under ``recipes/`` are generated
from the rows below (:func:`recipe_yaml`; ``python scripts/generate_recipes.py`` rewrites them,
and ``tests/recipes/test_presets.py`` fails when a file differs), and the NeMo-Run factories read :data:`PRESETS`.

Each preset holds only what defines the tokens and the throughput; the inputs, the output prefix and the text
tokenizer come from the command line (``--input``, ``--output-prefix``, ``--text-tokenizer``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

__all__ = ["PRESETS", "Preset", "preset_config", "recipe_yaml", "write_recipes"]

#: The command every recipe file starts with (``{name}`` and ``{args}`` filled in).
_COMMAND = ("# torchrun --nproc-per-node 8 scripts/build_video_token_dataset.py --config recipes/{name}.yaml "
            "{args}")
_NOTE_COLUMN = 26  # trailing comments start in this column (the width of the longest line plus some)


@dataclass(frozen=True)
class Preset:
    """One common build: its :class:`~nemo_cosmos_tokenizer.data.build.BuildConfig` fields and what its recipe file
    says about them."""

    name: str
    settings: Mapping[str, Any]
    """BuildConfig fields, in the order the recipe file lists them."""
    example_args: str
    """The rest of the example command line (inputs, output prefix, text tokenizer)."""
    about: tuple[str, ...]
    """Comment lines under the command (without ``# ``)."""
    notes: Mapping[str, str] = field(default_factory=dict)
    """Trailing comments of some settings."""


_ROWS: tuple[Preset, ...] = (
    Preset(
        name="dv8x16x16_720p",
        # 720p video: 33 frames (1 + 4 x 8) at 24 fps -> 5 x 45 x 80 = 18,000 visual tokens per clip.
        settings={"tokenizer": "Cosmos-1.0-Tokenizer-DV8x16x16", "resolution": [720, 1280], "num_frames": 33,
                  "fps": 24.0, "batch_size": 2, "num_workers": 8, "chunk_size": 256},
        example_args="--input captions.jsonl --output-prefix /data/tokens/clips_720p --text-tokenizer tokenizer.model",
        about=(
            "720p video with Cosmos-1.0-Tokenizer-DV8x16x16: 33 frames (1 + 4 x 8) sampled at 24 fps, 1280x720 "
            "(shortest side",
            "scaled to cover, centre crop) -> a 5 x 45 x 80 grid = 18,000 visual tokens per clip, bfloat16 on GPU.",
            'Same settings as nemo_cosmos_tokenizer.recipes.PRESETS["dv8x16x16_720p"] (NeMo-Run: --factory '
            "dv8x16x16_720p).",
            "Rerun the same command to resume; multi-node and SLURM: recipes/slurm/build_video_tokens.sbatch.",
            'Full speed on NVIDIA GPUs: add --fast --video-backend nvdec (pip install "nemo-cosmos-tokenizer[nvdec]"; '
            "decoding",
            "on the GPU, same frames as CPU decoding; num_workers then means decoder threads).",
        ),
        notes={
            "resolution": "[height, width], multiples of 16",
            "batch_size": "clips per encoder call; 720p x 33 frames is large: raise it only with memory to spare",
            "num_workers": "decoding processes per GPU, overlapping the encoder",
            "chunk_size": "samples per chunk shard: the unit of resume and of work split",
        },
    ),
    Preset(
        name="dv4x8x8_360p",
        # 360p video: 17 frames (1 + 4 x 4) at 24 fps -> 5 x 45 x 80 = 18,000 visual tokens per clip.
        settings={"tokenizer": "Cosmos-0.1-Tokenizer-DV4x8x8", "resolution": [360, 640], "num_frames": 17,
                  "fps": 24.0, "batch_size": 8, "num_workers": 8, "chunk_size": 512},
        example_args="--input captions.jsonl --output-prefix /data/tokens/clips_360p --text-tokenizer tokenizer.model",
        about=(
            "360p video with Cosmos-0.1-Tokenizer-DV4x8x8: 17 frames (1 + 4 x 4) sampled at 24 fps, 640x360 "
            "(shortest side",
            "scaled to cover, centre crop) -> a 5 x 45 x 80 grid = 18,000 visual tokens per clip, bfloat16 on GPU.",
            'Same settings as nemo_cosmos_tokenizer.recipes.PRESETS["dv4x8x8_360p"] (NeMo-Run: --factory '
            "dv4x8x8_360p).",
        ),
        notes={"resolution": "[height, width], multiples of 8"},
    ),
    Preset(
        name="di16x16_images",
        # Images (or single frames of videos): 512 x 512 -> 32 x 32 = 1,024 visual tokens per image.
        settings={"tokenizer": "Cosmos-0.1-Tokenizer-DI16x16", "resolution": [512, 512], "num_frames": 1,
                  "batch_size": 32, "num_workers": 8, "chunk_size": 2048},
        example_args="--input images.jsonl --output-prefix /data/tokens/images_512 --text-tokenizer tokenizer.model",
        about=(
            "Images (a video contributes its first frame) with Cosmos-0.1-Tokenizer-DI16x16 at 512x512 (shortest "
            "side scaled to",
            "cover, centre crop) -> a 1 x 32 x 32 grid = 1,024 visual tokens per image, bfloat16 on GPU.",
            'Same settings as nemo_cosmos_tokenizer.recipes.PRESETS["di16x16_images"] (NeMo-Run: --factory '
            "di16x16_images).",
        ),
    ),
)

#: preset name -> :class:`~nemo_cosmos_tokenizer.data.build.BuildConfig` fields.
PRESETS: dict[str, dict[str, Any]] = {row.name: dict(row.settings) for row in _ROWS}
_BY_NAME = {row.name: row for row in _ROWS}


def preset_config(name: str, **fields: Any):
    """A :class:`~nemo_cosmos_tokenizer.data.build.BuildConfig` of preset ``name`` with ``fields`` on top."""
    from ..data.build import BuildConfig

    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
    return BuildConfig(**{**PRESETS[name], **fields})


def _yaml_value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_yaml_value(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def recipe_yaml(name: str) -> str:
    """The text of ``recipes/<name>.yaml``: the command that runs it, what it builds, then its settings."""
    if name not in _BY_NAME:
        raise KeyError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
    row = _BY_NAME[name]
    lines = [_COMMAND.format(name=name, args=row.example_args), "#"]
    lines += [f"# {line}" for line in row.about]
    for key, value in row.settings.items():
        line = f"{key}: {_yaml_value(value)}"
        if key in row.notes:
            line = f"{line.ljust(_NOTE_COLUMN - 1)} # {row.notes[key]}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def write_recipes(directory: str | Path) -> list[Path]:
    """Write every preset's recipe file into ``directory`` (the repository's ``recipes/``)."""
    directory = Path(directory)
    paths = []
    for name in PRESETS:
        path = directory / f"{name}.yaml"
        path.write_text(recipe_yaml(name), encoding="utf-8")
        paths.append(path)
    return paths

