"""Fixtures of the scale-out tests (helpers in ``scaleout_helpers.py``): the inputs and model, and a reference build."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # scaleout_helpers

from scaleout_helpers import build_config  # noqa: E402


@pytest.fixture(scope="session")
def dist_work(tmp_path_factory):
    """Inputs, manifest, text tokenizer and the saved conformance DV8x16x16 model (shared by the module)."""
    from conformance_helpers import load_conformance_model

    from nemo_cosmos_tokenizer.data.samples import make_sample_inputs
    from nemo_cosmos_tokenizer.hub.convert import save_pretrained

    root = tmp_path_factory.mktemp("scaleout")
    inputs = make_sample_inputs(root / "inputs")
    rows = [json.loads(line) for line in inputs.manifest.read_text().splitlines()]
    rows += [
        {"path": "red_square.mp4", "id": "red_square-late", "start": 1.0, "text": "The red square, later on."},
        {"path": "missing.mp4", "text": "A file that does not exist."},
        {"path": "stripes.mp4", "id": "stripes-late", "start": 1.0, "text": "The stripes, later on."},
    ]
    manifest = root / "inputs" / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    model_dir = save_pretrained(load_conformance_model("DV8x16x16"), root / "dv8x16x16")
    return {"root": root, "manifest": manifest, "spm": inputs.text_tokenizer, "model_dir": Path(model_dir),
            "num_samples": len(rows)}


@pytest.fixture(scope="session")
def reference(dist_work):
    """One process, in this process: the bytes every other layout must reproduce."""
    from nemo_cosmos_tokenizer.data.build import run_build
    from nemo_cosmos_tokenizer.distributed import DistEnv

    config = build_config(dist_work, dist_work["root"] / "reference" / "ds")
    summary = run_build(config, env=DistEnv())
    return config, summary
