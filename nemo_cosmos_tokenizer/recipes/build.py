"""NeMo-Run recipes for the dataset builder: the task every rank runs, factories for the common setups, executors.

The task, :func:`build_video_tokens`, is a plain function (no NeMo-Run needed to call it): every process of a
torchrun job calls it and :func:`~nemo_cosmos_tokenizer.data.build.run_build` takes it from there.
The factories wrap it in ``run.Partial`` (or the CLI in ``run.Script``) for an executor to launch::

    import nemo_run as run
    from nemo_cosmos_tokenizer.recipes import build_recipe, local_executor, slurm_executor

    recipe = build_recipe("dv8x16x16_720p", input="captions.jsonl", output_prefix="/data/clips",
                          text_tokenizer="tokenizer.model")
    run.run(recipe, executor=local_executor(nproc_per_node=8))                  # this node, torchrun
    run.run(recipe, executor=slurm_executor(account="acct", partition="batch", nodes=4))

NeMo-Run is imported only inside these functions (``pip install "nemo-cosmos-tokenizer[run]"``).
"""

from __future__ import annotations

import logging
import os
from typing import Any, Optional, Sequence

from ..data.build import BuildConfig
from .presets import PRESETS

INSTALL_HINT = 'pip install "nemo-cosmos-tokenizer[run]"'
CLI_MODULE = "nemo_cosmos_tokenizer.cli.build_dataset"


def nemo_run():
    """``import nemo_run`` with an install hint."""
    try:
        import nemo_run as run
    except ImportError as err:
        raise ImportError(f"NeMo-Run recipes need nemo_run: {INSTALL_HINT}") from err
    return run


def build_video_tokens(config: BuildConfig, merge: bool = True) -> dict[str, Any]:
    """Build (or resume) the dataset of ``config`` with every process of the job; what each rank runs.

    Returns the run summary on rank 0 (also printed and written to ``<prefix>.summary.json``), ``{}`` elsewhere.
    """
    from ..data.build import run_build

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        logging.getLogger("megatron").setLevel(logging.WARNING)
    summary = run_build(config, merge=merge)
    if summary is None:
        return {}
    print(summary.format(), flush=True)
    return summary.to_dict()


# --------------------------------------------------------------------------------------------------- recipes
def build_recipe(
    preset: Optional[str] = None,
    *,
    input: Optional[str] = None,
    output_prefix: Optional[str] = None,
    text_tokenizer: Optional[str] = None,
    merge: bool = True,
    **fields: Any,
):
    """``run.Partial(build_video_tokens, config=run.Config(BuildConfig, ...))``: preset < keyword fields."""
    run = nemo_run()
    if preset is not None and preset not in PRESETS:
        raise KeyError(f"unknown preset {preset!r}; presets: {', '.join(PRESETS)}")
    settings = {**(PRESETS[preset] if preset else {}), **fields}
    paths = {"input": input, "output_prefix": output_prefix, "text_tokenizer": text_tokenizer}
    settings.update({k: v for k, v in paths.items() if v is not None})
    BuildConfig(**settings)  # validate now, not on the cluster
    return run.Partial(build_video_tokens, config=run.Config(BuildConfig, **settings), merge=merge)


def dv8x16x16_720p(input: Optional[str] = None, output_prefix: Optional[str] = None,
                   text_tokenizer: Optional[str] = None):
    """Video at 1280x720, 33 frames at 24 fps, Cosmos-1.0-Tokenizer-DV8x16x16 (18,000 visual tokens per clip)."""
    return build_recipe("dv8x16x16_720p", input=input, output_prefix=output_prefix, text_tokenizer=text_tokenizer)


def dv4x8x8_360p(input: Optional[str] = None, output_prefix: Optional[str] = None,
                 text_tokenizer: Optional[str] = None):
    """Video at 640x360, 17 frames at 24 fps, Cosmos-0.1-Tokenizer-DV4x8x8 (18,000 visual tokens per clip)."""
    return build_recipe("dv4x8x8_360p", input=input, output_prefix=output_prefix, text_tokenizer=text_tokenizer)


def di16x16_images(input: Optional[str] = None, output_prefix: Optional[str] = None,
                   text_tokenizer: Optional[str] = None):
    """Images at 512x512, Cosmos-0.1-Tokenizer-DI16x16 (1,024 visual tokens per image)."""
    return build_recipe("di16x16_images", input=input, output_prefix=output_prefix, text_tokenizer=text_tokenizer)


RECIPES = {"dv8x16x16_720p": dv8x16x16_720p, "dv4x8x8_360p": dv4x8x8_360p, "di16x16_images": di16x16_images}


def script_recipe(preset: Optional[str] = None, *, merge: bool = True, **fields: Any):
    """The same build as ``run.Script``: the command-line builder as a module (``python -m`` under torchrun), for
    environments that prefer a plain command to a serialized function. Fields become ``--flags``."""
    run = nemo_run()
    settings = {**(PRESETS[preset] if preset else {}), **fields}
    BuildConfig(**settings)
    args: list[str] = []
    for name, value in settings.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            if name == "progress" and not value:
                args.append("--no-progress")
            elif name == "local_files_only" and value:
                args.append(flag)
        elif isinstance(value, (list, tuple)):
            args += [flag, *map(str, value)]
        elif value is not None:
            args += [flag, str(value)]
    if not merge:
        args.append("--no-merge")
    return run.Script(path=CLI_MODULE, m=True, entrypoint="python", args=args)


# ------------------------------------------------------------------------------------------------- executors
def local_executor(nproc_per_node: int = 8, env_vars: Optional[dict[str, str]] = None):
    """This machine, ``nproc_per_node`` processes (one per GPU) under torchrun."""
    run = nemo_run()
    return run.LocalExecutor(ntasks_per_node=nproc_per_node, launcher="torchrun", env_vars=dict(env_vars or {}))


def slurm_executor(
    account: str,
    partition: Optional[str] = None,
    nodes: int = 1,
    gpus_per_node: int = 8,
    time: str = "04:00:00",
    container_image: Optional[str] = None,
    container_mounts: Sequence[str] = (),
    job_dir: Optional[str] = None,
    ssh_host: Optional[str] = None,
    ssh_user: Optional[str] = None,
    env_vars: Optional[dict[str, str]] = None,
    setup_lines: Optional[str] = None,
):
    """A SLURM job of ``nodes`` x ``gpus_per_node`` GPUs: one ``srun`` task per node starts torchrun, which starts
    one process per GPU (NeMo-Run's ``launcher="torchrun"``). Submitted from this machine (``sbatch`` here) or
    through SSH to ``ssh_host``; ``job_dir`` holds NeMo-Run's job files on the cluster.

    Nothing is packaged: ``nemo-cosmos-tokenizer[data]`` must be installed in ``container_image`` or in the Python
    that ``setup_lines`` (shell lines run before srun, e.g. ``source /shared/venv/bin/activate``) puts on PATH."""
    run = nemo_run()
    job_dir = job_dir or os.path.join(os.getcwd(), "nemo_run_jobs")
    if ssh_host:
        tunnel = run.SSHTunnel(host=ssh_host, user=ssh_user or os.environ.get("USER", ""), job_dir=job_dir)
    else:
        tunnel = run.LocalTunnel(job_dir=job_dir)
    return run.SlurmExecutor(
        account=account,
        partition=partition,
        nodes=nodes,
        ntasks_per_node=gpus_per_node,  # NeMo-Run turns this into torchrun --nproc-per-node, 1 task per node
        gpus_per_node=gpus_per_node,
        time=time,
        container_image=container_image,
        container_mounts=list(container_mounts),
        tunnel=tunnel,
        launcher="torchrun",
        env_vars=dict(env_vars or {}),
        packager=run.Packager(),
        setup_lines=setup_lines,
    )
