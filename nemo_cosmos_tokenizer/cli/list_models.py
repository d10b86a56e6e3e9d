"""``list-models``: the released Cosmos tokenizers with their compression and parameter counts."""

from __future__ import annotations

import argparse
import json

HELP = "list the released tokenizers (and the built-in offline ones) with compression and parameter counts"
DESCRIPTION = """List the released Cosmos tokenizers: name, family, compression (T x H x W for video, H x W for
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


def _row(name: str, kind: str, config, hub_repo: str | None) -> dict:
    import torch

    from ..networks import build_tokenizer

    with torch.device("meta"):
        model = build_tokenizer(config)
    return {
        "name": name,
        "kind": kind,
        "family": config.family,
        "compression": config.compression_label,
        "patch_size": config.patch_size,
        "hub_repo": hub_repo,
        "encoder_params": model.num_parameters("encoder"),
        "decoder_params": model.num_parameters("decoder"),
        "total_params": model.num_parameters("autoencoder"),
    }


def model_rows(builtin: bool = False) -> list[dict]:
    """One dict per released model (``kind`` ``"released"``): name, family, compression, patch_size, hub_repo,
    *_params; ``builtin=True``: then one per built-in tokenizer (``kind`` ``"builtin"``, ``hub_repo`` ``None``)."""
    from ..registry import BUILTIN_MODELS, get_spec, list_models

    rows = [_row(name, "released", get_spec(name).config, get_spec(name).hub_repo) for name in list_models()]
    if builtin:
        rows += [_row(name, "builtin", spec.config, None) for name, spec in BUILTIN_MODELS.items()]
    return rows


def run(args: argparse.Namespace) -> int:
    rows = model_rows(builtin=True)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    header = ("name", "family", "compression", "patch", "encoder", "decoder", "total")
    table = [header] + [
        (
            r["name"],
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
        cells = [cell.ljust(w) if j < 3 else cell.rjust(w) for j, (cell, w) in enumerate(zip(row, widths))]
        print("  ".join(cells).rstrip())
    return 0
