"""Fixtures of the Megatron tests: a tiny build with the built-in random tokenizer, a 1-process gloo group."""

from __future__ import annotations

import pytest

pytest.importorskip("megatron.core")


@pytest.fixture(scope="session")
def tiny_build(tmp_path_factory):
    """The demo inputs (5 clips + 1 image, 6 documents) built at 32x32, 9 frames: grids of 2 x 2 x 2."""
    from build_helpers import build_tiny_demo

    config, _ = build_tiny_demo(tmp_path_factory.mktemp("megatron_build"))
    return config.output_prefix


@pytest.fixture(scope="module")
def process_group():
    """megatron-core's dataset builder calls torch.distributed.get_rank(): a 1-process gloo group."""
    import socket

    import torch.distributed as dist

    if dist.is_initialized():
        yield
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()
