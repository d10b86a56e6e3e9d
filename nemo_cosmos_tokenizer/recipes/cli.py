"""Registration with NeMo-Run's CLI (``nemo cosmos ...``); imported by the package only when nemo_run imports.

pyproject.toml's ``[project.entry-points."nemo_run.cli"] cosmos = "nemo_cosmos_tokenizer.recipes"`` makes ``nemo``
import this package, which registers:

* the entrypoint ``nemo cosmos build`` (:func:`~.build.build_video_tokens`, namespace ``cosmos``);
* its factories ``--factory dv8x16x16_720p | dv4x8x8_360p | di16x16_images`` (default: no preset);
* the executors ``executor=local_torchrun`` and ``executor=slurm_torchrun``.

Example::

    nemo cosmos build --factory dv8x16x16_720p config.input=captions.jsonl config.output_prefix=/data/clips \\
        config.text_tokenizer=tokenizer.model executor=local_torchrun executor.ntasks_per_node=8 --yes

No ``from __future__ import annotations`` here: NeMo-Run reads the factories' return annotations as objects.
"""

import os
import typing
from typing import Optional

import nemo_run as run

from ..data.build import BuildConfig
from .build import build_recipe, build_video_tokens
from .presets import PRESETS

NAMESPACE = "cosmos"


def _custom():
    """No preset: BuildConfig defaults, set every field on the command line (``config.<field>=...``)."""
    return build_recipe(None)


def _preset_factory(name: str):
    def factory():
        return build_recipe(name)

    factory.__name__ = name
    factory.__qualname__ = name
    factory.__doc__ = f"Preset {name}: " + ", ".join(f"{k}={v}" for k, v in PRESETS[name].items())
    return factory


def local_torchrun(nproc_per_node: int = 8) -> run.Config[run.LocalExecutor]:
    """This machine: ``nproc_per_node`` processes (one per GPU) under torchrun."""
    return run.Config(run.LocalExecutor, ntasks_per_node=nproc_per_node, launcher="torchrun")


def slurm_torchrun(
    account: str = "",
    partition: Optional[str] = None,
    nodes: int = 1,
    gpus_per_node: int = 8,
    time: str = "04:00:00",
    container_image: Optional[str] = None,
    job_dir: str = "nemo_run_jobs",
) -> run.Config[run.SlurmExecutor]:
    """SLURM from this machine (sbatch here): ``nodes`` x ``gpus_per_node`` GPUs, torchrun on every node."""
    return run.Config(
        run.SlurmExecutor,
        account=account,
        partition=partition,
        nodes=nodes,
        ntasks_per_node=gpus_per_node,
        gpus_per_node=gpus_per_node,
        time=time,
        container_image=container_image,
        tunnel=run.Config(run.LocalTunnel, job_dir=os.path.abspath(job_dir)),
        launcher="torchrun",
        packager=run.Config(run.Packager),  # the package is installed on the cluster (or in the container)
    )


def _evaluate_annotations(function, owner=None) -> None:
    """Replace postponed (string) annotations by the types they name.

    ``BuildConfig`` and the task are written with ``from __future__ import annotations``; NeMo-Run's parser reads
    ``inspect.signature`` without evaluating strings and refuses ``config.input=...`` as "Unsupported type:
    Optional[str]". The evaluated annotations mean the same to Python; only introspection sees objects.
    """
    hints = typing.get_type_hints(owner or function)
    function.__annotations__ = {k: hints.get(k, v) for k, v in function.__annotations__.items()}


def register() -> None:
    _evaluate_annotations(BuildConfig.__init__, BuildConfig)
    _evaluate_annotations(build_video_tokens)
    run.cli.entrypoint(
        namespace=NAMESPACE,
        name="build",
        help="tokenize videos + captions into Megatron shards on every GPU (resumable, same bytes for any GPU count)",
        default_factory=_custom,
    )(build_video_tokens)
    for name in PRESETS:
        run.cli.factory(target=build_video_tokens, name=name)(_preset_factory(name))
    run.cli.factory(name="local_torchrun")(local_torchrun)
    run.cli.factory(name="slurm_torchrun")(slurm_torchrun)
