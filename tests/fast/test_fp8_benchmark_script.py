"""``scripts/benchmark_fp8.py`` on a CPU: ``--help`` without importing torch, and a dry run of the whole table on a
narrow model with the emulated FP8 kernel (the GPU run is the lead's; see the script's docstring)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "benchmark_fp8.py"


def test_help_runs_without_importing_torch() -> None:
    code = (f"import runpy, sys; sys.argv = ['benchmark_fp8.py', '--help']\n"
            f"try:\n    runpy.run_path({str(SCRIPT)!r}, run_name='__main__')\n"
            "except SystemExit:\n    pass\nprint('TORCH' if 'torch' in sys.modules else 'NO-TORCH')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True).stdout
    assert "--kernels" in out and "Examples" in out and out.strip().endswith("NO-TORCH")


def test_dry_run_writes_the_table_and_json(tmp_path, capsys) -> None:
    spec = importlib.util.spec_from_file_location("benchmark_fp8", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = tmp_path / "fp8.json"
    code = script.main(["--models", "DV8x16x16", "--device", "cpu", "--dtype", "bfloat16", "--channels", "16",
                        "--height", "32", "--width", "48", "--frames", "9", "--batch", "2", "--calib-windows", "1",
                        "--kernels", "emulated", "--no-compile", "--warmup", "0", "--reps", "1", "--check",
                        "--json", str(out)])
    report = json.loads(out.read_text())
    rows = report["models"][0]["rows"]
    assert [r["precision"] for r in rows] == ["bf16", "fp8-emulated"] and "error" not in rows[1]
    assert rows[1]["encode"]["x_bf16"] > 0 and set(rows[1]["quality"]["paths"]) == {"eager", "fast-bf16", "fast-fp8"}
    assert code == (1 if script.failures(report) else 0)  # --check: 1 exactly when a bar was missed
    printed = capsys.readouterr().out
    assert "| DV8x16x16 | fp8-emulated | 89 (" in printed
