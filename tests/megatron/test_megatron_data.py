"""The Megatron data path: a tiny build read by megatron-core's GPTDataset through SidecarTokenizer (and through
Megatron-LM's NullTokenizer with the flags we print), the split check, and the flags themselves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("megatron.core")

from nemo_cosmos_tokenizer.megatron import SidecarTokenizer, check_split, megatron_settings, suggest_split  # noqa: E402
from nemo_cosmos_tokenizer.megatron.splits import split_ranges  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def _gpt_dataset(prefix, tokenizer, cache, *, num_samples=24, seq_length=64, split="1,0,0"):
    from megatron.core.datasets.blended_megatron_dataset_builder import BlendedMegatronDatasetBuilder
    from megatron.core.datasets.gpt_dataset import GPTDataset, GPTDatasetConfig

    config = GPTDatasetConfig(
        random_seed=1234, sequence_length=seq_length, blend=([prefix], None), split=split, path_to_cache=str(cache),
        tokenizer=tokenizer, reset_position_ids=True, reset_attention_mask=True, eod_mask_loss=True,
    )
    return BlendedMegatronDatasetBuilder(GPTDataset, [num_samples, None, None], lambda: True, config).build()


def _expected(tokens: np.ndarray, eod: int):
    """Independent statement of what eod_mask_loss / reset_position_ids / reset_attention_mask mean: positions
    count from 0 again after every eod, the eod input position carries no loss, and a token attends only to
    earlier tokens of its own document (the eod belongs to the document it ends)."""
    n = tokens.size
    segment = np.concatenate([[0], np.cumsum(tokens[:-1] == eod)])  # documents ended before position j
    positions = np.zeros(n, np.int64)
    for j in range(1, n):
        positions[j] = 0 if segment[j] != segment[j - 1] else positions[j - 1] + 1
    loss_mask = (tokens != eod).astype(np.float32)
    q, k = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    allowed = (k <= q) & (segment[q] == segment[k])
    return positions, loss_mask, allowed


def test_adapter_reports_the_layout(tiny_build):
    from nemo_cosmos_tokenizer.data.reader import VideoTokenDataset

    tok = SidecarTokenizer(tiny_build)
    sidecar = json.loads(Path(f"{tiny_build}.json").read_text())
    assert tok.vocab_size == sidecar["vocab_size"] and tok.eod == sidecar["eod_id"] and tok.pad == sidecar["pad_id"]
    assert tok.eod == tok.vocab_size - 1  # generic layout version 2: eod last
    ds = VideoTokenDataset(tiny_build)
    doc = ds.decode(0)
    tokens = ds.tokens(0)
    prompt = tok.prompt_ids(doc.text, doc.grid.shape)
    assert tokens[: len(prompt)].tolist() == prompt  # the prompt is exactly how the builder began the document
    assert tok.tokenize(doc.text) == tokens[1 : 1 + len(tok.tokenize(doc.text))].tolist()
    text = tok.detokenize(tokens)
    assert text.startswith("<|bos|>" + doc.text + "<|boi|>2*2*2<|grid|><|v:") and text.endswith("<|eoi|><|eod|>")
    assert text.count("<|row|>") == 4 and text.count("<|frame|>") == 2


def test_gpt_dataset_with_the_adapter_finds_documents(tiny_build, process_group, tmp_path):
    tok = SidecarTokenizer(tiny_build)
    train, valid, test = _gpt_dataset(tiny_build, tok, tmp_path / "cache")
    assert valid is None and test is None
    inner_eods = 0
    for i in range(len(train)):
        sample = train[i]
        tokens = sample["tokens"].numpy()
        positions, loss_mask, allowed = _expected(tokens, tok.eod)
        inner_eods += int((tokens[:-1] == tok.eod).sum())
        np.testing.assert_array_equal(sample["position_ids"].numpy(), positions)
        np.testing.assert_array_equal(sample["loss_mask"].numpy(), loss_mask)
        np.testing.assert_array_equal(~sample["attention_mask"][0].numpy(), allowed)  # megatron: True = masked
        np.testing.assert_array_equal(sample["labels"].numpy()[:-1], tokens[1:])
    assert inner_eods >= len(train)  # ~45-token documents in 64-token samples: boundaries inside most samples


def test_null_tokenizer_with_the_printed_flags_reads_the_same(tiny_build, process_group, tmp_path):
    """What stock Megatron-LM builds from ``--tokenizer-type NullTokenizer --vocab-size <printed>``."""
    from megatron.core.tokenizers.text.libraries.null_tokenizer import NullTokenizer

    settings = megatron_settings(tiny_build, split="1,0,0")
    args = settings.megatron_lm_args()
    null = NullTokenizer(int(args[args.index("--vocab-size") + 1]))
    assert args[args.index("--tokenizer-type") + 1] == "NullTokenizer"
    assert null.eod == settings.eod_id and null.vocab_size == settings.vocab_size
    ours = _gpt_dataset(tiny_build, SidecarTokenizer(tiny_build), tmp_path / "a")[0]
    theirs = _gpt_dataset(tiny_build, null, tmp_path / "b")[0]
    assert len(ours) == len(theirs)
    for i in range(len(ours)):
        for key in ("tokens", "labels", "loss_mask", "position_ids", "attention_mask"):
            np.testing.assert_array_equal(ours[i][key].numpy(), theirs[i][key].numpy())


def test_split_ranges_are_megatrons(tiny_build, process_group, tmp_path):
    """Our split arithmetic against the document ranges megatron-core actually builds (6 documents)."""
    tok = SidecarTokenizer(tiny_build)
    for split in ("4,1,1", "90,5,5", "50,50,0", "3,2,1", "5,1,0"):
        datasets = _gpt_dataset(tiny_build, tok, tmp_path / split.replace(",", "_"), num_samples=4, split=split)
        for dataset, bounds in zip(datasets, split_ranges(split, 6)):
            if bounds is None:
                assert dataset is None
            else:
                assert dataset.indices.tolist() == list(range(*bounds)), split


def test_split_check_and_suggestion():
    assert [(p.split, p.documents) for p in check_split("99,1,0", {"p": 6})] == [("valid", 6)]
    assert check_split("5,1,0", {"p": 6}) == [] and check_split("100,0,0", {"p": 6}) == []
    assert [p.split for p in check_split("98,1,1", {"p": 10})] == ["valid", "test"]
    assert suggest_split({"p": 6}) == "5,1,0"
    assert suggest_split({"p": 6}, "98,1,1") == "4,1,1"
    assert suggest_split({"p": 1000}) == "99,1,0"  # fine as asked
    assert suggest_split({"p": 1}) is None  # one document cannot feed two splits
    several = {"a": 30, "b": 7}
    choice = suggest_split(several)
    assert choice is not None and check_split(choice, several) == []


def test_printed_flags(tiny_build, capsys):
    from nemo_cosmos_tokenizer.cli import inspect_dataset

    assert inspect_dataset.main([tiny_build, "--print-megatron-args"]) == 0
    text = capsys.readouterr().out
    vocab = json.loads(Path(f"{tiny_build}.json").read_text())["vocab_size"]
    assert f"--tokenizer-type NullTokenizer --vocab-size {vocab - 1} " in text
    assert "--split 5,1,0" in text and "WARNING: split '99,1,0' leaves the valid split" in text
    assert "--seq-length 64 " in text  # documents of ~45 tokens
    assert inspect_dataset.main([tiny_build, "--print-megatron-args", "--json", "--split", "4,1,1",
                                 "--tensor-parallel", "2"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["split_problems"] == [] and data["padded_vocab_size"] % 256 == 0
    assert data["megatron_lm_args"][data["megatron_lm_args"].index("--split") + 1] == "4,1,1"
    # The ordinary inspection warns too.
    assert inspect_dataset.main([tiny_build, "--index", "0"]) == 0
    assert "leaves the valid split" in capsys.readouterr().err


def test_emu3_layout_has_no_stock_flags(tiny_build, tmp_path):
    """A layout whose eod is not its last id: no NullTokenizer flags, the adapter instead."""
    from nemo_cosmos_tokenizer.data.layout import TokenLayout

    sidecar = json.loads(Path(f"{tiny_build}.json").read_text())
    emu3 = TokenLayout.from_preset("emu3", sidecar["layout"]["text_vocab_size"], 64000)
    for suffix in (".bin", ".idx"):
        (tmp_path / f"emu3{suffix}").write_bytes(Path(f"{tiny_build}{suffix}").read_bytes())
    sidecar.update(layout=emu3.to_dict(), vocab_size=emu3.vocab_size, eod_id=emu3.eod_id, pad_id=emu3.pad_id,
                   megatron={"data_path": "emu3"})
    (tmp_path / "emu3.json").write_text(json.dumps(sidecar))
    settings = megatron_settings(tmp_path / "emu3")
    assert settings.null_tokenizer_vocab_size is None and settings.megatron_lm_args() is None
    assert "no stock --tokenizer-type reports eod 151850" in settings.format()
    tok = SidecarTokenizer(tmp_path / "emu3")
    assert (tok.vocab_size, tok.eod, tok.pad) == (216854, 151850, 151643)


def test_empty_split_hangs_megatron_but_not_us(tiny_build, tmp_path):
    """The condition check_split reports is the one that hangs megatron-core 0.16.1 (6 documents, "99,1,0"); the
    trainer refuses it at once with the split to use."""
    script = textwrap.dedent(f"""
        import socket, sys, torch.distributed as dist
        s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{{port}}", rank=0, world_size=1)
        from megatron.core.datasets.blended_megatron_dataset_builder import BlendedMegatronDatasetBuilder
        from megatron.core.datasets.gpt_dataset import GPTDataset, GPTDatasetConfig
        from nemo_cosmos_tokenizer.megatron import SidecarTokenizer
        config = GPTDatasetConfig(random_seed=1, sequence_length=64, blend=([{tiny_build!r}], None),
            split=sys.argv[1], path_to_cache=None, tokenizer=SidecarTokenizer({tiny_build!r}),
            reset_position_ids=True, reset_attention_mask=True, eod_mask_loss=True)
        BlendedMegatronDatasetBuilder(GPTDataset, [8, 2, None], lambda: True, config).build()
        print("built")
    """)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    ok = subprocess.run([sys.executable, "-c", script, "5,1,0"], capture_output=True, text=True, timeout=300, env=env)
    assert "built" in ok.stdout, ok.stderr[-2000:]
    import megatron.core

    if megatron.core.__version__.startswith("0.16."):
        # A build that finishes in far less time (above) never returns with the empty valid split.
        with pytest.raises(subprocess.TimeoutExpired):
            subprocess.run([sys.executable, "-c", script, "99,1,0"], capture_output=True, timeout=30, env=env)

    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "train_gpt.py"), "--data-prefix", tiny_build, "--output-dir",
         str(tmp_path / "run"), "--device", "cpu", "--position-embedding", "learned_absolute", "--split", "99,1,0"],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert done.returncode == 2
    assert "leaves the valid split" in done.stderr and "use --split 5,1,0" in done.stderr
