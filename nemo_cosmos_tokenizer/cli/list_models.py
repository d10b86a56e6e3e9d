"""``list-models``: the released Cosmos tokenizers with their compression and parameter counts, then the built-in
ones (offline, random weights)."""

from __future__ import annotations

import argparse
import json

HELP = "list the 26 released tokenizers (and the built-in offline ones) with release, compression and parameter counts"
DESCRIPTION = """List the released Cosmos tokenizers: name, release (0.1, 1.0 or Tokenize1: the repositories
cosmos-predict1 downloads), family (CI/DI/CV/DV), compression (T x H x W for video, H x W for
images), Haar patch size and the parameters of the encoder (encoder + quant_conv), decoder
(post_quant_conv + decoder) and both. Counts come from building each network at real size on the meta
device (no memory, no download). Then the built-in tokenizers: random weights from a fixed seed, no download,
for trying every command offline (their tokens carry no visual meaning). Every --tokenizer accepts both kinds.

examples:
  nemo-cosmos-tokenizer list-models
  nemo-cosmos-tokenizer list-models --json
"""

__all__ = ["HELP", "DESCRIPTION", "add_arguments", "run", "model_rows"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON list instead of a table")


def _row(name: str, kind: str, release: str, config, hub_repo: str | None, files: list[str]) -> dict:
    import torch

    from ..networks import build_tokenizer

    with torch.device("meta"):
        model = build_tokenizer(config)
    return {
        "name": name,
        "kind": kind,
        "release": release,
        "family": config.family,
        "compression": config.compression_label,
        "patch_size": config.patch_size,
        "hub_repo": hub_repo,
        "files": files,
        "encoder_params": model.num_parameters("encoder"),
        "decoder_params": model.num_parameters("decoder"),
        "total_params": model.num_parameters("autoencoder"),
    }


def model_rows(builtin: bool = False) -> list[dict]:
    """One dict per released model (``kind`` ``"released"``): name, release, family, compression, patch_size,
    hub_repo, files, *_params; ``builtin=True``: then one per built-in tokenizer (``kind`` ``"builtin"``, release
    ``"built-in"``, ``hub_repo`` ``None``, no files)."""
    from ..registry import BUILTIN_MODELS, get_spec, list_models

    rows = []
    for name in list_models():
        spec = get_spec(name)
        rows.append(_row(name, "released", spec.release, spec.config, spec.hub_repo, list(spec.files)))
    if builtin:
        rows += [_row(name, "builtin", "built-in", spec.config, None, []) for name, spec in BUILTIN_MODELS.items()]
    return rows


def run(args: argparse.Namespace) -> int:
    rows = model_rows(builtin=True)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    header = ("name", "release", "family", "compression", "patch", "encoder", "decoder", "total")
    table = [header] + [
        (
            r["name"],
            r["release"],
            r["family"],
            r["compression"],
            str(r["patch_size"]),
            f"{r['encoder_params'] / 1e6:.2f}M",
            f"{r['decoder_params'] / 1e6:.2f}M",
            f"{r['total_params'] / 1e6:.2f}M",
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    released = 1 + sum(r["kind"] == "released" for r in rows)
    for i, row in enumerate(table):
        if i == released:
            print("\nbuilt in (random weights from a fixed seed, no download; tokens carry no visual meaning):")
        cells = [cell.ljust(w) if j < 4 else cell.rjust(w) for j, (cell, w) in enumerate(zip(row, widths))]
        print("  ".join(cells).rstrip())
    return 0
