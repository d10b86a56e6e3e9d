"""Settings of the common dataset builds, as data: the YAML recipes under ``recipes/`` and the NeMo-Run factories
are both made from :data:`PRESETS` (a test keeps the YAML files equal to it).

Each preset holds only what defines the tokens and the throughput; the inputs, the output prefix and the text
tokenizer come from the command line (``--input``, ``--output-prefix``, ``--text-tokenizer``).
"""

from __future__ import annotations

from typing import Any

#: preset name -> :class:`~nemo_cosmos_tokenizer.data.build.BuildConfig` fields.
PRESETS: dict[str, dict[str, Any]] = {
    # 720p video: 33 frames (1 + 4 x 8) at 24 fps -> 5 x 45 x 80 = 18,000 visual tokens per clip.
    "dv8x16x16_720p": {
        "tokenizer": "Cosmos-1.0-Tokenizer-DV8x16x16",
        "resolution": [720, 1280],
        "num_frames": 33,
        "fps": 24.0,
        "batch_size": 2,
        "num_workers": 8,
        "chunk_size": 256,
    },
    # 360p video: 17 frames (1 + 4 x 4) at 24 fps -> 5 x 45 x 80 = 18,000 visual tokens per clip.
    "dv4x8x8_360p": {
        "tokenizer": "Cosmos-0.1-Tokenizer-DV4x8x8",
        "resolution": [360, 640],
        "num_frames": 17,
        "fps": 24.0,
        "batch_size": 8,
        "num_workers": 8,
        "chunk_size": 512,
    },
    # Images (or single frames of videos): 512 x 512 -> 32 x 32 = 1,024 visual tokens per image.
    "di16x16_images": {
        "tokenizer": "Cosmos-0.1-Tokenizer-DI16x16",
        "resolution": [512, 512],
        "num_frames": 1,
        "batch_size": 32,
        "num_workers": 8,
        "chunk_size": 2048,
    },
}


def preset_config(name: str, **fields: Any):
    """A :class:`~nemo_cosmos_tokenizer.data.build.BuildConfig` of preset ``name`` with ``fields`` on top."""
    from ..data.build import BuildConfig

    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
    return BuildConfig(**{**PRESETS[name], **fields})
