#!/usr/bin/env python3
"""The aten op sequence of the fast path's compiled encode / decode graphs, for comparing two code versions on CPU.

``torch.compile`` hands Inductor the graph that AOTAutograd traces from the fast modules; when two versions of the
code give the same sequence of ops with the same shapes (parameter names aside), Inductor generates the same kernels,
so their GPU speed is the same by construction. Models: DV8x16x16, CV8x8x8, CV4x8x8 at base width 8 (the structure
of the real models, small tensors), float32 on CPU; no GPU needed (about a minute per version on 2 cores).

Example (the old version from git, then this checkout)::

    mkdir -p /tmp/old && git archive b435988 nemo_cosmos_tokenizer | tar -x -C /tmp/old
    python scripts/fast_graph_ops.py --tree /tmp/old --out /tmp/ops_old.json
    python scripts/fast_graph_ops.py --out /tmp/ops_new.json --compare /tmp/ops_old.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

MODELS = ("Cosmos-1.0-Tokenizer-DV8x16x16", "Cosmos-1.0-Tokenizer-CV8x8x8", "Cosmos-0.1-Tokenizer-CV4x8x8")


def graph_ops() -> dict[str, list[str]]:
    import torch
    from torch._dynamo.backends.common import aot_autograd

    import nemo_cosmos_tokenizer as nct
    from nemo_cosmos_tokenizer.fast import optimize

    def capture(store: list[str]):
        def forward_compiler(gm, inputs):
            for node in gm.graph.nodes:
                if node.op == "call_function":
                    val = node.meta.get("val")
                    store.append(f"{node.target}|{tuple(val.shape) if hasattr(val, 'shape') else ''}")
            return gm.forward
        return aot_autograd(fw_compiler=forward_compiler)

    out: dict[str, list[str]] = {}
    for name in MODELS:
        config = dataclasses.replace(nct.get_config(name), channels=8)
        torch.manual_seed(0)
        model = nct.build_tokenizer(config).eval()
        fast = optimize(model, compile=False, auto_verify=False)
        s, t = config.spatial_compression, config.temporal_compression
        x = torch.rand(2, 3, 1 + 2 * t, 2 * s, 3 * s) * 2 - 1  # [B, 3, T, H, W]
        pre = None
        for part, module in (("encode", fast.encoder), ("decode", fast.decoder)):
            ops: list[str] = []
            torch._dynamo.reset()
            fn = torch.compile(module, backend=capture(ops), fullgraph=True, dynamic=False)
            with torch.no_grad():
                if part == "encode":
                    pre = fn(x)
                else:
                    fn(pre if model.quantizer is None else model.quantizer(pre)[1])
            out[f"{name}:{part}"] = ops
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", default=str(Path(__file__).resolve().parents[1]),
                        help="directory holding the nemo_cosmos_tokenizer package to trace (default: this checkout)")
    parser.add_argument("--out", required=True, help="JSON file for the op lists")
    parser.add_argument("--compare", default=None, help="another version's JSON: report whether the graphs are equal")
    args = parser.parse_args()
    sys.path.insert(0, args.tree)
    ops = graph_ops()
    Path(args.out).write_text(json.dumps(ops))
    for key, seq in ops.items():
        print(f"{key}: {len(seq)} ops")
    if args.compare:
        other = json.loads(Path(args.compare).read_text())
        same = all(other.get(k) == v for k, v in ops.items()) and set(other) == set(ops)
        for key in ops:
            print(f"{key}: {'identical' if other.get(key) == ops[key] else 'DIFFERENT'}")
        sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
