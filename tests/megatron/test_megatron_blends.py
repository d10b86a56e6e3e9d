"""The chunk shards of a ``--no-merge`` build in megatron-core 0.16: the printed, token-weighted ``--data-path``
gives the samples training asks for, the unweighted list does not, and the failures the inspector warns about
are the ones megatron-core has (an ``AssertionError`` without weights, a hang in ``_get_num_epochs`` with them)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("megatron.core")

from nemo_cosmos_tokenizer.megatron import SidecarTokenizer, megatron_settings  # noqa: E402
from nemo_cosmos_tokenizer.megatron.blend import blend_oversamples, blend_surplus  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def no_merge_build(tmp_path_factory):
    """The demo inputs (6 documents of 39-53 tokens) in chunks of 2, not merged: 3 shards of 92 tokens each."""
    from build_helpers import build_tiny_demo

    config, summary = build_tiny_demo(tmp_path_factory.mktemp("no_merge"), merge=False, chunk_size=2)
    return config.output_prefix, summary


def _build(blend, tokenizer, *, seq_length, split, sizes, surplus=0.005):
    """What Megatron-LM's pretrain_gpt.py builds from ``--data-path`` (parsed by megatron-core's own parser)."""
    from megatron.core.datasets.blended_megatron_dataset_builder import BlendedMegatronDatasetBuilder
    from megatron.core.datasets.gpt_dataset import GPTDataset, GPTDatasetConfig
    from megatron.core.datasets.utils import get_blend_from_list

    config = GPTDatasetConfig(
        random_seed=1234, sequence_length=seq_length, blend=get_blend_from_list(blend), split=split,
        path_to_cache=None, tokenizer=tokenizer, reset_position_ids=True, reset_attention_mask=True,
        eod_mask_loss=True, mid_level_dataset_surplus=surplus,
    )
    return BlendedMegatronDatasetBuilder(GPTDataset, sizes, lambda: True, config).build()


def _flag(args: list[str], name: str) -> list[str]:
    """The values of ``name`` in a flat argument list (up to the next ``--flag``)."""
    start = args.index(name) + 1
    end = next((i for i in range(start, len(args)) if args[i].startswith("--")), len(args))
    return args[start:end]


def test_weighted_files_and_sidecar(no_merge_build):
    prefix, summary = no_merge_build
    lines = Path(f"{prefix}.data_paths_weighted.txt").read_text().splitlines()
    plain = Path(f"{prefix}.data_paths.txt").read_text().split()
    assert [line.split()[1] for line in lines] == plain == summary.data_path and len(plain) == 3
    settings = megatron_settings(prefix, split="1,1,0")
    # The build's token counts (from its chunk records) are the ones megatron-core reads from each .idx.
    assert [int(line.split()[0]) for line in lines] == [settings.tokens_per_prefix[p] for p in plain]
    assert sum(settings.tokens_per_prefix.values()) == settings.tokens
    assert "data_paths_weighted.txt)" in summary.format()
    assert _flag(settings.megatron_lm_args(), "--data-path") == " ".join(lines).split()


@pytest.mark.parametrize("seq_length", [64, 128])
def test_printed_flags_give_the_requested_samples(no_merge_build, process_group, seq_length):
    """80 training samples asked for: the printed weighted blend gives them (each shard repeated over epochs, in
    proportion to its tokens); the bare prefixes give one epoch (3 samples) or, once a shard's 92 tokens are fewer
    than seq_length + 1, megatron-core's AssertionError."""
    prefix, _ = no_merge_build
    tokenizer = SidecarTokenizer(prefix)
    settings = megatron_settings(prefix, split="1,1,0", samples=[80, 4, 0])
    args = settings.megatron_lm_args()
    assert settings.split_ok and _flag(args, "--split") == ["1,1,0"]
    train, valid, test = _build(_flag(args, "--data-path"), tokenizer, seq_length=seq_length, split="1,1,0",
                                sizes=[80, 4, 0])
    assert len(train) >= 80 and len(valid) >= 4 and test is None
    counts = np.bincount(np.asarray(train.dataset_index[:80]), minlength=3)
    assert counts.tolist() == [27, 27, 26]  # equal token counts: equal shares
    sample = train[79]["tokens"].numpy()
    assert sample.shape == (seq_length,) and (sample == tokenizer.eod).any()

    # The bare prefixes, all documents in training: one epoch per shard (92 tokens: one 64-token sample each),
    # then, at 128 > 92 - 1 tokens, 0 samples from every shard and megatron-core's AssertionError.
    plain = list(settings.data_path)
    if seq_length == 64:
        assert len(_build(plain, tokenizer, seq_length=seq_length, split="1,0,0", sizes=[80, 0, 0])[0]) == 3
    else:
        with pytest.raises(AssertionError):
            _build(plain, tokenizer, seq_length=seq_length, split="1,0,0", sizes=[80, 0, 0])


def test_empty_shard_part_failures_are_what_we_say(no_merge_build, process_group, monkeypatch):
    """Split "99,1,0" leaves each 2-document shard's valid part empty. Unweighted: AssertionError at once.
    Weighted (the printed flags): the shard's GPTDataset asks _get_num_epochs for a sample count with 0 tokens per
    epoch, the call that never returns (see test_get_num_epochs_never_returns_on_zero_tokens)."""
    from megatron.core.datasets.gpt_dataset import GPTDataset

    prefix, _ = no_merge_build
    tokenizer = SidecarTokenizer(prefix)
    settings = megatron_settings(prefix)  # the default 99,1,0
    assert [p.split for p in settings.split_problems] == ["valid"] * 3
    assert all("loops forever in _get_num_epochs" in w for w in settings.warnings()[:3])
    assert settings.suggested_split and "merge the shards" in settings.warnings()[3]
    with pytest.raises(AssertionError):
        _build(list(settings.data_path), tokenizer, seq_length=64, split="99,1,0", sizes=[80, 2, 0])

    class Hang(Exception):
        pass

    original = GPTDataset._get_num_epochs

    def guarded(self, num_tokens_per_epoch):
        if num_tokens_per_epoch == 0 and self.num_samples is not None:
            raise Hang(self.index_split.name)
        return original(self, num_tokens_per_epoch)

    monkeypatch.setattr(GPTDataset, "_get_num_epochs", guarded)
    weighted = _flag(megatron_settings(prefix, split="99,1,0").megatron_lm_args(), "--data-path")
    with pytest.raises(Hang, match="valid"):
        _build(weighted, tokenizer, seq_length=64, split="99,1,0", sizes=[80, 2, 0])


def test_get_num_epochs_never_returns_on_zero_tokens(tmp_path):
    """megatron-core 0.16's _get_num_epochs with 0 tokens per epoch and a sample count (even 0, what NeMo asks of a
    validation split with limit_val_batches=0) does not return: the loop runs for seconds where it would take
    microseconds. (The merged-dataset case of the README: a single prefix always gets a sample count.)"""
    import megatron.core

    if not megatron.core.__version__.startswith("0.16."):
        pytest.skip("checked against megatron-core 0.16")
    script = textwrap.dedent("""
        from types import SimpleNamespace
        from megatron.core.datasets.gpt_dataset import GPTDataset
        print("ready", flush=True)
        fake = SimpleNamespace(num_samples=0, config=SimpleNamespace(sequence_length=64, add_extra_token_to_sequence=True))
        print("returned", GPTDataset._get_num_epochs(fake, 0), flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(3)
        assert proc.poll() is None, proc.stdout.read()
    finally:
        proc.kill()
        proc.wait()


def test_many_shards_need_a_surplus(no_merge_build, process_group, tmp_path):
    """One big shard (30 copies of a chunk) and 39 small ones, 80 training samples: the ceilings of 40 shards'
    targets add up past megatron-core's 0.5 % margin and BlendedDataset raises IndexError; with the surplus
    blend_surplus finds (and the inspector prints), the same blend builds."""
    from nemo_cosmos_tokenizer.data.writer import merge_shards

    prefix, summary = no_merge_build
    first = summary.data_path[0]
    big = str(tmp_path / "big")
    merge_shards([first] * 30, big, np.uint16)
    small = []
    for i in range(39):
        target = tmp_path / f"small{i:02d}"
        for suffix in (".bin", ".idx"):
            Path(f"{target}{suffix}").hardlink_to(f"{first}{suffix}")
        small.append(str(target))
    weights = [30 * 92] + [92] * 39
    assert blend_oversamples(weights, 80) and not blend_oversamples(weights, 80 * 1000)
    surplus = blend_surplus(weights, [80])
    assert surplus is not None and surplus > 0.005
    blend = [item for w, p in zip(weights, [big, *small]) for item in (str(w), p)]
    tokenizer = SidecarTokenizer(prefix)
    with pytest.raises(IndexError, match="oversamples"):
        _build(blend, tokenizer, seq_length=64, split="1,0,0", sizes=[80, 0, 0])
    train = _build(blend, tokenizer, seq_length=64, split="1,0,0", sizes=[80, 0, 0], surplus=surplus)[0]
    assert len(train) >= 80


def test_trainer_blends_the_shards_by_tokens(no_merge_build, process_group, tmp_path):
    """scripts/train_gpt.py on a --no-merge build: the weighted blend, so the steps it asks for are there (an
    unweighted one would stop at one epoch: 3 samples of 64 tokens here)."""
    from nemo_cosmos_tokenizer.megatron.config import TrainConfig
    from nemo_cosmos_tokenizer.megatron.train import build_datasets

    prefix, _ = no_merge_build
    config = TrainConfig(data_prefix=prefix, output_dir=str(tmp_path), split="1,1,0")
    train, valid, test = build_datasets(config, SidecarTokenizer(prefix), 64, [80, 4, None])
    assert len(train) >= 80 and len(valid) >= 4 and test is None
