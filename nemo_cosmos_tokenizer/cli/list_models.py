"""``list-models``: the released Cosmos tokenizers with their compression and parameter counts."""

from __future__ import annotations

import argparse
import json

HELP = "list the 26 released tokenizers with release, compression and parameter counts"
DESCRIPTION = """List the released Cosmos tokenizers: name, release (0.1, 1.0 or Tokenize1: the repositories
cosmos-predict1 downloads), family (CI/DI/CV/DV), compression (T x H x W for video, H x W for
images), Haar patch size and the parameters of the encoder (encoder + quant_conv), decoder
(post_quant_conv + decoder) and both. Counts come from building each network at real size on the meta
device (no memory, no download).

examples:
  nemo-cosmos-tokenizer list-models
  nemo-cosmos-tokenizer list-models --json
"""

__all__ = ["HELP", "DESCRIPTION", "add_arguments", "run", "model_rows"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON list instead of a table")


def model_rows() -> list[dict]:
    """One dict per released model: name, release, family, compression, patch_size, hub_repo, files, *_params."""
    import torch

    from ..networks import build_tokenizer
    from ..registry import get_spec, list_models

    rows = []
    for name in list_models():
        spec = get_spec(name)
        c = spec.config
        with torch.device("meta"):
            model = build_tokenizer(c)
        rows.append(
            {
                "name": name,
                "release": spec.release,
                "family": c.family,
                "compression": c.compression_label,
                "patch_size": c.patch_size,
                "hub_repo": spec.hub_repo,
                "files": list(spec.files),
                "encoder_params": model.num_parameters("encoder"),
                "decoder_params": model.num_parameters("decoder"),
                "total_params": model.num_parameters("autoencoder"),
            }
        )
    return rows


def run(args: argparse.Namespace) -> int:
    rows = model_rows()
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
    for row in table:
        cells = [cell.ljust(w) if i < 4 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))]
        print("  ".join(cells).rstrip())
    return 0
