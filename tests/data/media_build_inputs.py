"""Shared set-up of small builder tests: a manifest of some shared-media clips, a sentencepiece model trained on
their captions and the DV8x16x16 conformance model saved as a pretrained directory (imported by test modules;
``from conftest import ...`` is not reliable under pytest)."""

from __future__ import annotations

import json
from pathlib import Path


def make_build_inputs(root: Path, media_dir: Path, videos: tuple[str, ...]) -> tuple[Path, Path, Path, Path]:
    """``(root, manifest, sentencepiece model, tokenizer dir)`` for the ``videos`` of ``captions.jsonl``."""
    from conformance_helpers import load_conformance_model

    from nemo_cosmos_tokenizer.data.samples import train_sentencepiece
    from nemo_cosmos_tokenizer.hub.convert import save_pretrained

    entries = [json.loads(line) for line in (media_dir / "captions.jsonl").read_text().splitlines()]
    entries = [{**e, "path": str(media_dir / e["path"])} for e in entries if e["path"] in videos]
    manifest = root / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(e) + "\n" for e in entries))
    spm = train_sentencepiece([e["text"] for e in entries] * 20, root / "spm")
    model_dir = save_pretrained(load_conformance_model("DV8x16x16"), root / "dv8x16x16")
    return root, manifest, spm, model_dir
