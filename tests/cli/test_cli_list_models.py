"""``nemo-cosmos-tokenizer list-models`` and the subcommand dispatcher."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nemo_cosmos_tokenizer import list_models
from nemo_cosmos_tokenizer.registry import list_builtin_models
from nemo_cosmos_tokenizer.cli.main import SUBCOMMANDS, build_parser, main

REPO = Path(__file__).resolve().parents[2]


def test_list_models_json_matches_real_configs(capsys, conformance_dir):
    assert main(["list-models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    released = [r for r in rows if r["kind"] == "released"]
    assert [r["name"] for r in released] == list_models()
    builtin = [r for r in rows if r["kind"] == "builtin"]
    assert [r["name"] for r in builtin] == list_builtin_models() and all(r["hub_repo"] is None for r in builtin)
    assert rows == released + builtin  # released first
    rows = released
    for row in rows:
        counts = json.loads((conformance_dir / "real_configs" / f"{row['name']}.json").read_text())["param_count"]
        assert (row["encoder_params"], row["decoder_params"], row["total_params"]) == (
            counts["encoder_jit"], counts["decoder_jit"], counts["full_model"])
    dv = rows[list_models().index("Cosmos-0.1-Tokenizer-DV8x16x16")]
    assert dv["family"] == "DV" and dv["compression"] == "8x16x16" and dv["patch_size"] == 4


def test_list_models_table(capsys):
    assert main(["list-models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "family", "compression", "patch", "encoder", "decoder", "total"]
    released = len(list_models())
    assert lines[released + 1] == "" and lines[released + 2].startswith("built in (random weights")
    assert lines[released + 3].split()[:3] == ["tiny-random-dv8x16x16", "DV", "8x16x16"]
    assert len(lines) == released + 3 + len(list_builtin_models())
    assert lines[1].split() == ["Cosmos-0.1-Tokenizer-CI8x8", "CI", "8x8", "4", "31.15M", "45.64M", "76.79M"]


def test_dispatcher_needs_a_command_and_every_module_has_the_interface(capsys):
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    import importlib

    for name, module_name in SUBCOMMANDS.items():
        module = importlib.import_module(module_name)
        assert callable(module.add_arguments) and callable(module.run) and module.HELP, name
        assert "examples:" in module.DESCRIPTION, f"{name} --help has no examples"
    assert "examples:" in build_parser().format_help()


def test_python_dash_m_entry_point():
    out = subprocess.run(
        [sys.executable, "-m", "nemo_cosmos_tokenizer.cli", "list-models"],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    assert "Cosmos-1.0-Tokenizer-DV4x8x8-LowRes" in out
