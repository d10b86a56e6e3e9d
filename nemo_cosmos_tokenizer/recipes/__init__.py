"""Recipes for building video-token datasets at scale: presets, and NeMo-Run tasks, factories and executors.

* :data:`PRESETS` / :func:`preset_config`: the common setups as data (``recipes/*.yaml`` are generated from them);
* :func:`build_video_tokens`: the task every rank runs (plain Python);
* :func:`build_recipe`, :func:`dv8x16x16_720p`, :func:`dv4x8x8_360p`, :func:`di16x16_images` -> ``run.Partial``;
  :func:`script_recipe` -> ``run.Script`` of the command-line builder;
* :func:`local_executor` (``LocalExecutor(launcher="torchrun")``), :func:`slurm_executor` (``SlurmExecutor``).

NeMo-Run is optional (``pip install "nemo-cosmos-tokenizer[run]"``): this package imports without it, and the
functions that need it raise an ImportError with that hint. When it is installed, importing this package (which
``nemo`` does through the ``nemo_run.cli`` entry point ``cosmos``) registers ``nemo cosmos build`` and its
factories (:mod:`.cli`).
"""

from .build import (
    RECIPES,
    build_recipe,
    build_video_tokens,
    di16x16_images,
    dv4x8x8_360p,
    dv8x16x16_720p,
    local_executor,
    script_recipe,
    slurm_executor,
)
from .presets import PRESETS, preset_config

__all__ = [
    "PRESETS",
    "RECIPES",
    "build_recipe",
    "build_video_tokens",
    "di16x16_images",
    "dv4x8x8_360p",
    "dv8x16x16_720p",
    "local_executor",
    "preset_config",
    "script_recipe",
    "slurm_executor",
]


def _register_cli() -> bool:
    try:
        import nemo_run  # noqa: F401
    except ImportError:
        return False
    from . import cli

    cli.register()
    return True


HAVE_NEMO_RUN = _register_cli()
