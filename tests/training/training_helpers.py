"""Tiny training settings shared by the training tests (import as ``from training_helpers import ...``)."""

from __future__ import annotations

from pathlib import Path

#: A DV4x8x8 at minimal width: 5-frame 32x32 clips -> 2 x 4 x 4 ids of a 64-code FSQ; a step takes ~0.1 s on a CPU.
TINY = dict(family="DV", spatial_compression=8, temporal_compression=4, patch_size=4, channels=8, channels_mult=[1, 2],
            num_res_blocks=1, z_channels=4, levels=[4, 4, 4], num_frames=5, resolution=[32, 32], batch_size=2,
            lr=1e-3, warmup_steps=1, device="cpu", dtype="float32", num_workers=0, progress=False, log_every=1,
            eval_every=1000, save_every=1000, seed=0)


def tiny_config(clips: Path, output_dir: Path, **changes):
    from nemo_cosmos_tokenizer.training import TokenizerTrainConfig

    fields = dict(TINY, input=str(clips), val_input=str(clips), val_samples=2, output_dir=str(output_dir))
    fields.update(changes)
    return TokenizerTrainConfig(**fields)


def tiny_network(seed: int = 0):
    """A randomly initialised network of the :data:`TINY` architecture (float32, CPU)."""
    import torch

    from nemo_cosmos_tokenizer.config import TokenizerConfig
    from nemo_cosmos_tokenizer.networks import build_tokenizer

    config = TokenizerConfig(family="DV", spatial_compression=8, temporal_compression=4, channels=8,
                             channels_mult=(1, 2), num_res_blocks=1, z_channels=4, levels=(4, 4, 4))
    torch.manual_seed(seed)
    return build_tokenizer(config)


def cli_flags(settings: dict) -> list[str]:
    """``train-tokenizer`` flags for config fields: ``--name value``, ``--[no-]name`` for booleans, comma-joined
    lists; ``None`` values are left out (the field's default)."""
    argv: list[str] = []
    for key, value in settings.items():
        if value is None:
            continue
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            argv.append(flag if value else "--no-" + key.replace("_", "-"))
        elif isinstance(value, (list, tuple)):
            argv += [flag, ",".join(map(str, value))]
        else:
            argv += [flag, str(value)]
    return argv
