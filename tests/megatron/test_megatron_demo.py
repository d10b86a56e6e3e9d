"""The end-to-end demo's presets: without CUDA the CPU one (README: minutes on 2 cores), whose flags train_gpt.py
takes."""

from __future__ import annotations

import pytest

from nemo_cosmos_tokenizer.megatron.demo import CPU_PRESET, GPU_PRESET, pick_preset


def test_auto_picks_the_cpu_preset_without_cuda_or_with_device_cpu():
    assert pick_preset("auto", "auto", cuda_available=False) is CPU_PRESET
    assert pick_preset("auto", "cpu", cuda_available=True) is CPU_PRESET
    assert pick_preset("auto", "auto", cuda_available=True) is GPU_PRESET
    assert pick_preset("gpu", "auto", cuda_available=False) is GPU_PRESET  # asked for: as asked
    with pytest.raises(ValueError, match="unknown preset"):
        pick_preset("tpu", "auto", cuda_available=False)


def test_cpu_preset_flags_are_train_gpt_settings_that_run_on_a_cpu():
    from nemo_cosmos_tokenizer.cli.train_gpt import build_parser

    args = build_parser().parse_args(list(CPU_PRESET.train_flags))
    assert (args.device, args.position_embedding) == ("cpu", "learned_absolute")  # rope needs CUDA in megatron-core
    assert args.max_steps * args.micro_batch_size * 128 <= 300_000  # tokens of the whole run: minutes at ~400/s
    assert CPU_PRESET.size % 16 == 0 and (CPU_PRESET.frames - 1) % 8 == 0  # the built-in's compression
