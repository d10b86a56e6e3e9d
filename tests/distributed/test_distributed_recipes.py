"""Launch recipes: the YAML recipes equal the presets, the SLURM script runs (srun/scontrol faked, one "node" of 2
CPU processes), and the NeMo-Run recipe runs with ``LocalExecutor(launcher="torchrun")`` (when nemo_run is
installed: ``pip install "nemo-cosmos-tokenizer[run]"``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from scaleout_helpers import REPO, SETTINGS, clean_env, dataset_bytes, free_port

from nemo_cosmos_tokenizer.data.build import load_build_config
from nemo_cosmos_tokenizer.recipes import PRESETS, preset_config
from nemo_cosmos_tokenizer.registry import get_config

SBATCH = REPO / "recipes" / "slurm" / "build_video_tokens.sbatch"


def _have_nemo_run() -> bool:
    try:
        import nemo_run  # noqa: F401
    except ImportError:
        return False
    return True


needs_nemo_run = pytest.mark.skipif(not _have_nemo_run(), reason='needs nemo_run: pip install "nemo-cosmos-tokenizer[run]"')


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_yaml_recipe_equals_its_preset(name):
    path = REPO / "recipes" / f"{name}.yaml"
    first = path.read_text().splitlines()[0]
    assert first.startswith("# torchrun --nproc-per-node ") and f"--config recipes/{name}.yaml" in first
    assert "scripts/build_video_token_dataset.py" in first and (REPO / "scripts" / "build_video_token_dataset.py").is_file()
    assert load_build_config(path) == preset_config(name)
    config = preset_config(name)
    model = get_config(config.tokenizer)
    assert model.is_discrete and config.height % model.spatial_compression == 0 == config.width % model.spatial_compression
    t = model.temporal_compression if model.is_video else 1
    assert (config.num_frames - 1) % t == 0


def _settings_yaml(dist_work, path: Path) -> Path:
    path.write_text(yaml.safe_dump({**SETTINGS, "tokenizer": str(dist_work["model_dir"])}))
    return path


def test_slurm_script_runs_on_one_fake_node(dist_work, reference, tmp_path):
    assert subprocess.run(["bash", "-n", str(SBATCH)], capture_output=True).returncode == 0
    first = SBATCH.read_text().splitlines()[1]
    assert first.startswith("# sbatch ") and "recipes/slurm/build_video_tokens.sbatch" in first

    # srun runs its command once (one node); scontrol names that node.
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "srun").write_text(
        '#!/bin/sh\nwhile [ $# -gt 0 ]; do case "$1" in --*) shift;; *) break;; esac; done\n'
        'echo "srun runs: $*" >&2\nexec "$@"\n'
    )
    (fake / "scontrol").write_text('#!/bin/sh\n[ "$1 $2" = "show hostnames" ] && echo 127.0.0.1\n')
    for tool in ("srun", "scontrol"):
        (fake / tool).chmod(0o755)
    port = free_port()
    env = clean_env(
        PATH=f"{fake}:{os.environ['PATH']}", SLURM_JOB_ID="4242", SLURM_JOB_NUM_NODES="1",
        SLURM_JOB_NODELIST="localhost", SLURM_SUBMIT_DIR=str(REPO), GPUS_PER_NODE="2", PYTHON=sys.executable,
        RDZV_PORT=str(port), RECIPE=str(_settings_yaml(dist_work, tmp_path / "recipe.yaml")), OMP_NUM_THREADS="1",
    )
    prefix = tmp_path / "out" / "ds"
    args = ["--input", str(dist_work["manifest"]), "--output-prefix", str(prefix),
            "--text-tokenizer", str(dist_work["spm"])]
    done = subprocess.run(["bash", str(SBATCH), *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, done.stderr[-4000:]
    rendered = next(line for line in done.stderr.splitlines() if line.startswith("srun runs: "))
    assert f"-m torch.distributed.run --nnodes 1 --nproc-per-node 2 --rdzv-backend c10d --rdzv-endpoint 127.0.0.1:{port}" in rendered
    assert "--rdzv-id 4242-0" in rendered and "--no-progress --input" in rendered
    ref_config, _ = reference
    assert dataset_bytes(prefix) == dataset_bytes(ref_config.output_prefix)
    assert json.loads(Path(f"{prefix}.summary.json").read_text())["world_size"] == 2


@pytest.mark.skipif(_have_nemo_run(), reason="nemo_run is installed")
def test_recipes_without_nemo_run_say_how_to_install():
    from nemo_cosmos_tokenizer import recipes

    assert recipes.HAVE_NEMO_RUN is False
    for make in (recipes.dv8x16x16_720p, recipes.local_executor):
        with pytest.raises(ImportError, match=r"nemo-cosmos-tokenizer\[run\]"):
            make()


@needs_nemo_run
def test_nemo_run_recipes_and_executors():
    import fiddle as fdl
    import nemo_run as run

    from nemo_cosmos_tokenizer import recipes
    from nemo_cosmos_tokenizer.data.build import BuildConfig

    assert recipes.HAVE_NEMO_RUN and hasattr(recipes.build_video_tokens, "cli_entrypoint")  # `nemo cosmos build`
    for name, make in recipes.RECIPES.items():
        partial = make(input="m.jsonl", output_prefix="out/ds", text_tokenizer="t.model")
        assert isinstance(partial, run.Partial) and partial.__fn_or_cls__ is recipes.build_video_tokens
        config = fdl.build(partial.config)
        assert isinstance(config, BuildConfig) and config == preset_config(
            name, input="m.jsonl", output_prefix="out/ds", text_tokenizer="t.model")
    script = recipes.script_recipe("dv4x8x8_360p", input="m.jsonl", merge=False)
    assert isinstance(script, run.Script)
    assert script.to_command()[:2] == ["-m", "nemo_cosmos_tokenizer.cli.build_dataset"]
    assert script.args[-1] == "--no-merge" and ["--resolution", "360", "640"] == script.args[2:5]
    local = recipes.local_executor(nproc_per_node=4)
    assert isinstance(local, run.LocalExecutor) and local.nproc_per_node() == 4 and local.launcher == "torchrun"
    slurm = recipes.slurm_executor(account="acct", partition="batch", nodes=3, gpus_per_node=8, job_dir="/tmp/j")
    assert isinstance(slurm, run.SlurmExecutor) and (slurm.nnodes(), slurm.nproc_per_node()) == (3, 8)
    assert slurm.launcher == "torchrun"


@needs_nemo_run
def test_nemo_run_local_executor_with_torchrun(dist_work, reference, tmp_path, monkeypatch):
    import nemo_run as run

    from nemo_cosmos_tokenizer.recipes import build_recipe, local_executor

    # torchrun on PATH must be this interpreter's (NeMo-Run calls `torchrun`).
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "torchrun").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m torch.distributed.run "$@"\n')
    (shim / "torchrun").chmod(0o755)
    for key in list(os.environ):
        if key not in clean_env():
            monkeypatch.delenv(key)
    monkeypatch.setenv("PATH", f"{shim}:{os.environ['PATH']}")
    monkeypatch.setenv("NEMORUN_HOME", str(tmp_path / "nemo_run"))
    prefix = tmp_path / "out" / "ds"
    recipe = build_recipe(
        input=str(dist_work["manifest"]), output_prefix=str(prefix), text_tokenizer=str(dist_work["spm"]),
        tokenizer=str(dist_work["model_dir"]), **SETTINGS,
    )
    executor = local_executor(nproc_per_node=2, env_vars={"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"})
    run.run(recipe, executor=executor, name="cosmos-tokens", tail_logs=False)
    ref_config, _ = reference
    assert dataset_bytes(prefix) == dataset_bytes(ref_config.output_prefix)
    summary = json.loads(Path(f"{prefix}.summary.json").read_text())
    assert summary["world_size"] == 2 and summary["backend"] == "gloo"


@needs_nemo_run
def test_nemo_cli_entry_point(dist_work, tmp_path):
    from importlib.metadata import entry_points

    if "cosmos" not in entry_points(group="nemo_run.cli").names:
        pytest.skip("the package is not installed (pip install -e .): no nemo_run.cli entry point")
    nemo = shutil.which("nemo", path=str(Path(sys.executable).parent)) or shutil.which("nemo")
    if nemo is None:
        pytest.skip("no `nemo` command next to this interpreter")
    done = subprocess.run(
        [nemo, "cosmos", "build", "--factory", "dv8x16x16_720p", f"config.input={dist_work['manifest']}",
         f"config.output_prefix={tmp_path / 'ds'}", f"config.text_tokenizer={dist_work['spm']}",
         "config.resolution=[360,640]", "run.executor=local_torchrun", "run.executor.ntasks_per_node=2",
         "--dryrun", "--yes"],
        cwd=tmp_path, env=clean_env(NEMORUN_HOME=str(tmp_path / "nemo_run")), capture_output=True, text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Dry run" in done.stdout and "ntasks_per_node=2" in done.stdout
    assert "Cosmos-1.0-Tokenizer-DV8x16x16" in done.stdout and "[360, 640]" in done.stdout
