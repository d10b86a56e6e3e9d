"""Video2World export: NVIDIA's per-sample ``.pt`` layout from a ``cosmos_ar`` build, with a tiny randomly
initialised T5 (built here from a ``T5Config``, saved as a local folder) in place of ``google-t5/t5-11b``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from nemo_cosmos_tokenizer.data.build import BuildConfig, run_build
from nemo_cosmos_tokenizer.data.manifest import read_manifest
from nemo_cosmos_tokenizer.data.video2world import export_video2world, split_counts, video_tokens
from nemo_cosmos_tokenizer.distributed import DistEnv

pytest.importorskip("transformers")
MAX_LENGTH = 48


def t5_tokenizer(captions: list[str]):
    """A T5 tokenizer with a real vocabulary: a sentencepiece unigram model trained here on ``captions``, in T5's
    layout (``<pad>`` 0, ``</s>`` 1, ``<unk>`` 2, then the pieces with their scores), built the way transformers 5
    takes one (``vocab=[(piece, score), ...]``). ``T5TokenizerFast(vocab_file=...)`` ignores the file there and
    gives a 4-token vocabulary ("A red square slides." -> [3, 2, 3, 2, 3, 2, 3, 2, 1]); it is kept for 4.x."""
    import io

    import sentencepiece as spm
    import transformers
    from transformers import T5TokenizerFast

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(captions * 20), model_writer=model, model_type="unigram",
                                   vocab_size=100, hard_vocab_limit=False, normalization_rule_name="identity",
                                   minloglevel=2)
    sp = spm.SentencePieceProcessor(model_proto=model.getvalue())
    pieces = [(sp.id_to_piece(i), sp.get_score(i)) for i in range(sp.get_piece_size())
              if not (sp.is_control(i) or sp.is_unknown(i))]
    if int(transformers.__version__.split(".")[0]) >= 5:
        tokenizer = T5TokenizerFast(vocab=[("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), *pieces], extra_ids=0)
    else:  # 4.x converts a sentencepiece file
        import tempfile

        with tempfile.NamedTemporaryFile(suffix=".model", delete=False) as f:
            f.write(model.getvalue())
        tokenizer = T5TokenizerFast(vocab_file=f.name, extra_ids=0)
    return tokenizer, sp


def make_tiny_t5(folder: Path, captions: list[str]) -> Path:
    """A 1-layer T5 encoder with random weights, with a unigram vocabulary trained on ``captions`` as its tokenizer."""
    from transformers import T5Config, T5EncoderModel

    tokenizer, _ = t5_tokenizer(captions)
    torch.manual_seed(0)
    model = T5EncoderModel(T5Config(vocab_size=tokenizer.vocab_size, d_model=16, d_kv=4, d_ff=32, num_layers=1,
                                    num_heads=2))
    tokenizer.save_pretrained(folder / "t5")
    model.save_pretrained(folder / "t5")
    return folder / "t5"


def test_the_t5_tokenizer_has_a_real_vocabulary(tmp_path):
    """The prompts below are only as meaningful as the tokenizer: a degenerate one (every word -> unk) would pass
    them all."""
    from transformers import AutoTokenizer

    captions = ["A red square slides from left to right across a blue background.",
                "A white ball bounces up and down on a dark background.",
                "Green and yellow stripes scroll slowly to the left."]
    tokenizer, sp = t5_tokenizer(captions)
    assert tokenizer.vocab_size == 3 + sum(not (sp.is_control(i) or sp.is_unknown(i))
                                           for i in range(sp.get_piece_size())) > 30  # (the degenerate one: 4)
    saved = make_tiny_t5(tmp_path, captions)
    loaded = AutoTokenizer.from_pretrained(str(saved))  # as export_video2world loads it
    assert loaded.vocab_size == tokenizer.vocab_size
    ids = loaded("A red square slides.").input_ids
    assert ids[-1] == 1 and 2 not in ids  # </s> at the end, no unknown piece
    # T5's segmentation is the sentencepiece model's own.
    assert loaded.convert_ids_to_tokens(ids[:-1]) == sp.encode("A red square slides.", out_type=str)
    words = sorted({w.strip(".") for c in captions for w in c.split()})
    encoded = {w: tuple(loaded(w, add_special_tokens=False).input_ids) for w in words}
    assert len(set(encoded.values())) == len(words), encoded  # distinct words, distinct ids
    assert all(2 not in v for v in encoded.values())


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    from conformance_helpers import load_conformance_model

    from nemo_cosmos_tokenizer.data.samples import make_sample_inputs
    from nemo_cosmos_tokenizer.hub.convert import save_pretrained

    root = tmp_path_factory.mktemp("video2world")
    inputs = make_sample_inputs(root / "inputs")
    model_dir = save_pretrained(load_conformance_model("DV8x16x16"), root / "dv8x16x16")
    config = BuildConfig(input=str(inputs.manifest), output_prefix=str(root / "ar" / "ds"), tokenizer=str(model_dir),
                         layout="cosmos_ar", resolution=[32, 32], num_frames=9, batch_size=1, chunk_size=2,
                         device="cpu", dtype="float32", progress=False)
    run_build(config, env=DistEnv())
    t5 = make_tiny_t5(root, [s.text for s in read_manifest(inputs.manifest).samples])  # trained on the captions
    out = root / "v2w"
    summary = export_video2world(config.output_prefix, out, t5=str(t5), split="2,1,1", max_length=MAX_LENGTH,
                                 device="cpu", local_files_only=True, env=DistEnv())
    return config, t5, out, summary


def test_files_have_nvidia_layout(export):
    from megatron.core.datasets.indexed_dataset import IndexedDataset
    from transformers import AutoTokenizer, T5EncoderModel

    config, t5, out, summary = export
    samples = read_manifest(config.input).samples
    n = len(samples)  # the generated inputs all decode
    train, test, val = split_counts("2,1,1", n)
    assert (summary.train_samples, summary.test_samples, summary.val_samples) == (train, test, val)
    assert json.loads((out / "metadata.json").read_text()) == {"train_samples": train, "test_samples": test,
                                                               "val_samples": val}
    names = [f"{split}_{i}" for split, count in (("train", train), ("test", test), ("val", val)) for i in range(count)]
    assert sorted(p.name for p in out.glob("*.pt")) == sorted(
        f"{name.split('_')[0]}_{kind}_{name.split('_')[1]}.pt" for name in names for kind in ("video", "prompt"))

    documents = IndexedDataset(config.output_prefix)
    rows = {(r["split"], r["i"]): r for r in map(json.loads, (out / "samples.jsonl").read_text().splitlines())}
    tokenizer = AutoTokenizer.from_pretrained(str(t5))
    encoder = T5EncoderModel.from_pretrained(str(t5)).eval()
    seen, padded = [], []
    for name in names:
        split, i = name.split("_")
        video = torch.load(out / f"{split}_video_{i}.pt")
        assert video.dtype == torch.int32 and video.shape == (1 + 8 + 64,)  # 9 frames at 32x32 -> 2 x 2 x 2 ids
        assert video[0] == 64000 and (video[-64:] == 64002).all()
        row = rows[(split, int(i))]
        doc = row["document"]  # the build's document (all samples decode: document k is sample k)
        assert (row["index"], row["id"]) == (samples[doc].index, samples[doc].id)
        assert video[1:-64].tolist() == np.array(documents[doc]).tolist()
        seen.append(doc)
        # The prompt: the caption of that document's video through T5, zero after its tokens.
        batch = tokenizer([samples[doc].text], return_tensors="pt", padding="max_length", truncation=True,
                          max_length=MAX_LENGTH)
        with torch.no_grad():
            hidden = encoder(**batch).last_hidden_state[0]  # [MAX_LENGTH, 16]
        length = int(batch["attention_mask"].sum())
        expected = torch.cat([hidden[:length], torch.zeros(MAX_LENGTH - length, 16)])
        prompt = torch.load(out / f"{split}_prompt_{i}.pt")
        assert prompt.dtype == torch.float32 and prompt.shape == (MAX_LENGTH, 16)
        torch.testing.assert_close(prompt, expected, rtol=0, atol=0)  # the same ops on the same CPU: bit-equal
        assert not prompt[length:].any()
        padded.append(length < MAX_LENGTH)
    assert sorted(seen) == list(range(n)) and any(padded)  # some prompts end before MAX_LENGTH: zeros checked


def test_rerun_resumes_and_rewrites_identical_bytes(export):
    config, t5, out, _ = export
    before = {p.name: p.read_bytes() for p in out.glob("*.pt")}
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("*.pt")}
    (out / "test_video_0.pt").unlink()
    summary = export_video2world(config.output_prefix, out, t5=str(t5), split="2,1,1", max_length=MAX_LENGTH,
                                 device="cpu", local_files_only=True, env=DistEnv())
    assert summary.written_files == 2  # only the incomplete sample
    assert {p.name: p.read_bytes() for p in out.glob("*.pt")} == before
    assert all(p.stat().st_mtime_ns == stamps[p.name] for p in out.glob("*.pt") if not p.name.startswith("test_"))


def test_layout_and_split_errors(export, tmp_path):
    assert video_tokens(np.arange(3)).tolist() == [64000, 0, 1, 2] + [64002] * 64
    assert split_counts("4,1,1", 6) == (4, 1, 1) and split_counts("98,1,1", 200) == (196, 2, 2)
    with pytest.raises(ValueError, match="empty split"):
        split_counts("98,1,1", 10)
    with pytest.raises(ValueError, match="three positive integers"):
        split_counts("1,0,1", 10)
    with pytest.raises(FileNotFoundError, match="--layout cosmos_ar"):
        export_video2world(tmp_path / "nothing", tmp_path / "out", env=DistEnv())
