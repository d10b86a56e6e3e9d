"""The tiny demo build several test folders train, sample or blend on (tests/ is on sys.path: tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path


def build_tiny_demo(root: Path, merge: bool = True, **config_fields):
    """The demo inputs (5 clips + 1 image: 6 documents) built at 32x32, 9 frames, with the built-in random tokenizer
    (grids of 2 x 2 x 2); ``config_fields`` override :class:`BuildConfig` fields. Returns ``(config, summary)``."""
    from nemo_cosmos_tokenizer.data import BuildConfig
    from nemo_cosmos_tokenizer.data.build import run_build
    from nemo_cosmos_tokenizer.data.samples import make_sample_inputs
    from nemo_cosmos_tokenizer.distributed import DistEnv

    inputs = make_sample_inputs(root / "inputs")
    fields = dict(input=str(inputs.manifest), output_prefix=str(root / "tokens"),
                  text_tokenizer=str(inputs.text_tokenizer), tokenizer="tiny-random-dv8x16x16",
                  resolution=[32, 32], num_frames=9, device="cpu", progress=False)
    config = BuildConfig(**{**fields, **config_fields})
    return config, run_build(config, merge=merge, env=DistEnv())
