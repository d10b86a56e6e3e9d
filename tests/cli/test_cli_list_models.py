"""``nemo-cosmos-tokenizer list-models`` and the subcommand dispatcher."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nemo_cosmos_tokenizer import list_models
from nemo_cosmos_tokenizer.cli.main import SUBCOMMANDS, build_parser, main
from nemo_cosmos_tokenizer.registry import get_spec, list_builtin_models

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
        # A Tokenize1 re-release has the reference shapes of the 1.0 model it names as its architecture.
        reference = get_spec(row["name"]).same_architecture_as or row["name"]
        counts = json.loads((conformance_dir / "real_configs" / f"{reference}.json").read_text())["param_count"]
        assert (row["encoder_params"], row["decoder_params"], row["total_params"]) == (
            counts["encoder_jit"], counts["decoder_jit"], counts["full_model"])
    dv = rows[list_models().index("Cosmos-0.1-Tokenizer-DV8x16x16")]
    assert dv["family"] == "DV" and dv["compression"] == "8x16x16" and dv["patch_size"] == 4
    assert dv["release"] == "0.1" and dv["files"] == ["encoder.jit", "decoder.jit", "autoencoder.jit"]
    t1 = rows[list_models().index("Cosmos-Tokenize1-DV8x16x16-720p")]
    assert (t1["release"], t1["family"], t1["hub_repo"]) == ("Tokenize1", "DV", "nvidia/Cosmos-Tokenize1-DV8x16x16-720p")
    assert t1["files"] == ["encoder.jit", "decoder.jit", "autoencoder.jit", "ema.jit"]
    cv = rows[list_models().index("Cosmos-Tokenize1-CV8x8x8-720p")]
    assert cv["files"] == ["encoder.jit", "decoder.jit", "autoencoder.jit", "mean_std.pt"]
    assert sorted({r["release"] for r in rows}) == ["0.1", "1.0", "Tokenize1"]


def test_list_models_table(capsys):
    assert main(["list-models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "release", "family", "compression", "patch", "encoder", "decoder", "total"]
    released = len(list_models())
    assert lines[released + 1] == "" and lines[released + 2].startswith("built in (random weights")
    assert lines[released + 3].split()[:4] == ["tiny-random-dv8x16x16", "built-in", "DV", "8x16x16"]
    assert len(lines) == released + 3 + len(list_builtin_models())
    lines = lines[:released + 1]
    assert lines[1].split() == ["Cosmos-0.1-Tokenizer-CI8x8", "0.1", "CI", "8x8", "4", "31.15M", "45.64M", "76.79M"]
    assert lines[-1].split() == ["Cosmos-Tokenize1-DV4x8x8-360p", "Tokenize1", "DV", "4x8x8", "2", "46.65M", "65.97M",
                                 "112.62M"]


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
