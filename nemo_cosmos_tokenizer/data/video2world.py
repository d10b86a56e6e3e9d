"""NVIDIA's Cosmos-1.0-Autoregressive Video2World post-training files, from a ``cosmos_ar`` build.

What ``video2world_prepare_dataset.py`` (cosmos1 ``autoregressive/nemo/post_training``) writes, and what their
``CosmosVideo2WorldDataset`` reads, in one folder:

- ``{split}_video_{i}.pt``: int32 ``[1 + L + 64]`` = ``[64000]`` (begin of video) + the ``L`` FSQ indices of the
  video in T, H, W order + ``[64002] * 64`` (padding; their trainer masks the loss there). With DV8x16x16 at
  33 x 640 x 1024, ``L = 12,800`` and the sequence is the 12,864 + 1 ids their dataset asserts;
- ``{split}_prompt_{i}.pt``: float32 ``[max_length, d_model]``: the T5 encoder's last hidden state of the prompt
  (tokenized to ``max_length`` = 512 with padding and truncation), zero after the prompt's tokens
  (``google-t5/t5-11b`` by default, ``d_model`` 1024);
- ``metadata.json``: ``{"train_samples", "test_samples", "val_samples"}``;
- and ours, ignored by NVIDIA's reader: ``samples.jsonl``, which video each pair of files holds (``split``, ``i``,
  the manifest's sample ``id`` and ``index``, the build's ``document``).

Splits: the videos are shuffled (here with a fixed ``seed``, so a rerun gives the same files; NVIDIA's shuffle is
unseeded) and cut as NVIDIA cuts them: ``train = a * n // total``, ``test = b * n // total``, ``val`` the rest of
``"a,b,c"``; every split must hold a video.

The videos come from a finished ``--layout cosmos_ar`` build (``<prefix>.bin/.idx``: chunked, resumable, on any
number of GPUs, with its failures report) and the prompts from the same manifest's captions. The export itself is
resumable (a file is written under a temporary name and renamed; existing ones are skipped) and shares its prompts
over every process of a torchrun job; each file's bytes depend only on its sample (``torch.save`` into memory,
one prompt per encoder call), so they are the same for any number of processes.
"""

from __future__ import annotations

import io
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

log = logging.getLogger(__name__)

__all__ = ["BOV_ID", "PAD_ID", "NUM_PAD", "Bfloat16Check", "T5PromptEncoder", "Video2WorldSummary",
           "as_read_by_nvidia", "check_bfloat16_ids", "export_video2world", "split_counts", "video_tokens"]

BOV_ID = 64000
"""Begin-of-video id of NVIDIA's Video2World sequences (their vocabulary: 64,000 codes + specials, 64,064)."""
PAD_ID = 64002
NUM_PAD = 64
DEFAULT_T5 = "google-t5/t5-11b"
T5_INSTALL_HINT = 'pip install "nemo-cosmos-tokenizer[t5]"  (Hugging Face transformers)'


def video_tokens(indices: np.ndarray | torch.Tensor) -> torch.Tensor:
    """FSQ indices (any shape, T, H, W order) -> int32 ``[BOV_ID] + indices + [PAD_ID] * 64``."""
    flat = torch.as_tensor(np.asarray(indices, dtype=np.int64)).reshape(-1).to(torch.int32)
    return torch.cat([torch.tensor([BOV_ID], dtype=torch.int32), flat,
                      torch.full((NUM_PAD,), PAD_ID, dtype=torch.int32)])


def split_counts(split: str, n: int) -> tuple[int, int, int]:
    """``(train, test, val)`` sizes of ``n`` videos for ``"a,b,c"``, as NVIDIA cuts them; refuses an empty split."""
    try:
        weights = [int(v) for v in split.split(",")]
    except ValueError:
        weights = []
    if len(weights) != 3 or min(weights) < 1:
        raise ValueError(f"split must be three positive integers 'train,test,val' (e.g. 4,1,1), got {split!r}")
    total = sum(weights)
    train, test = weights[0] * n // total, weights[1] * n // total
    counts = (train, test, n - train - test)
    if min(counts) < 1:
        raise ValueError(f"{n} videos split {split} leave an empty split {counts}: NVIDIA's dataset needs a video in "
                         "each; add videos or change --split")
    return counts


class T5PromptEncoder:
    """The prompt embedding of NVIDIA's ``CosmosT5TextEncoder``: a Hugging Face T5 encoder and its tokenizer, from a
    local folder or a hub name (``transformers`` is needed: the ``t5`` extra)."""

    def __init__(self, name_or_path: str = DEFAULT_T5, device: str | torch.device = "cpu", max_length: int = 512,
                 local_files_only: bool = False) -> None:
        try:
            from transformers import AutoTokenizer, T5EncoderModel
        except ImportError as err:
            raise ImportError(f"Video2World prompt embeddings need transformers: {T5_INSTALL_HINT}") from err
        self.name = str(name_or_path)
        self.device = torch.device(device)
        self.max_length = max_length
        self.tokenizer = AutoTokenizer.from_pretrained(self.name, local_files_only=local_files_only)
        self.model = T5EncoderModel.from_pretrained(self.name, local_files_only=local_files_only).to(self.device).eval()

    @torch.inference_mode()
    def encode(self, prompt: str) -> torch.Tensor:
        """float ``[max_length, d_model]`` on the CPU, zero after the prompt's tokens."""
        batch = self.tokenizer([prompt], return_tensors="pt", truncation=True, padding="max_length",
                               max_length=self.max_length)
        mask = batch["attention_mask"].to(self.device)
        hidden = self.model(input_ids=batch["input_ids"].to(self.device), attention_mask=mask).last_hidden_state
        hidden = hidden.clone()  # [1, max_length, d_model]
        hidden[0, int(mask[0].sum()) :] = 0
        return hidden[0].cpu()


@dataclass(frozen=True)
class Video2WorldSummary:
    output_dir: str
    train_samples: int
    test_samples: int
    val_samples: int
    written_files: int
    """Files this run wrote (this process; the others were already there or written by other ranks)."""
    sequence_length: int

    def format(self) -> str:
        return (f"Video2World: {self.train_samples} train, {self.test_samples} test, {self.val_samples} val videos "
                f"in {self.output_dir} (sequences of {self.sequence_length} ids; {self.written_files} files written "
                "by this process)")


def as_read_by_nvidia(tokens: torch.Tensor) -> torch.Tensor:
    """The ids NVIDIA's ``CosmosVideo2WorldDataset`` trains on: it loads ``{split}_video_{i}.pt`` and casts it with
    ``.to(torch.bfloat16)`` before ``.to(torch.int64)``. bfloat16 holds 8 significant bits, so an id survives only
    if it is at most 256 or a multiple of the spacing there (2 up to 512, ..., 256 from 32,768): most of the 64,000
    codes come back as a neighbour, and the padding id 64,002 as 64,000, the begin-of-video id."""
    return torch.as_tensor(tokens).to(torch.bfloat16).to(torch.int64)


@dataclass(frozen=True)
class Bfloat16Check:
    """What a bfloat16 round trip does to the ids of a Video2World folder (:func:`check_bfloat16_ids`)."""

    files: int
    ids: int
    changed: int
    """Ids that NVIDIA's reader turns into another id."""
    examples: tuple[tuple[int, int], ...]
    """Up to 5 ``(stored, read)`` pairs."""

    def format(self) -> str:
        shown = ", ".join(f"{a} -> {b}" for a, b in self.examples)
        return (f"{self.changed} of {self.ids} ids in {self.files} video files change in NVIDIA's reader "
                f"(.to(torch.bfloat16).to(torch.int64)){': ' + shown if shown else ''}")


def check_bfloat16_ids(folder: str | os.PathLike, limit: int | None = None) -> Bfloat16Check:
    """Load the ``*_video_*.pt`` files of ``folder`` (the first ``limit``, sorted) and count the ids that NVIDIA's
    Video2World reader changes (:func:`as_read_by_nvidia`). Any count above 0 means its model trains on other ids
    than the stored ones: read the files as integers instead (see the README's Video2World section)."""
    files = sorted(Path(folder).glob("*_video_*.pt"))[:limit]
    if not files:
        raise FileNotFoundError(f"no *_video_*.pt file in {folder}")
    total = changed = 0
    examples: list[tuple[int, int]] = []
    for path in files:
        stored = torch.load(path, map_location="cpu", weights_only=True).to(torch.int64)
        read = as_read_by_nvidia(stored)
        wrong = stored != read
        total += stored.numel()
        changed += int(wrong.sum())
        for a, b in zip(stored[wrong][: 5 - len(examples)].tolist(), read[wrong].tolist()):
            examples.append((a, b))
    return Bfloat16Check(len(files), total, changed, tuple(examples))


def _save_atomic(tensor: torch.Tensor, path: Path) -> None:
    buffer = io.BytesIO()  # in memory: the archive's inner name does not depend on a temporary file name
    torch.save(tensor, buffer)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(buffer.getvalue())
    os.replace(tmp, path)


def _videos(prefix: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The written samples of a finished cosmos_ar build, in document order: ``{"index", "id"}``, and the sidecar."""
    from .build.config import CHUNK_NAME
    from .writer import read_json

    sidecar_file = Path(f"{prefix}.json")
    if not sidecar_file.is_file():
        raise FileNotFoundError(f"{sidecar_file} not found: build the videos first with --layout cosmos_ar")
    sidecar = read_json(sidecar_file)
    if sidecar.get("layout", {}).get("preset") != "cosmos_ar":
        raise ValueError(f"{prefix} was not built with --layout cosmos_ar (layout {sidecar.get('layout', {}).get('preset')})")
    chunks = Path(prefix).parent / sidecar["chunks"]["directory"]
    written = []
    for chunk_id in range(sidecar["chunks"]["count"]):
        written += read_json(chunks / f"{CHUNK_NAME.format(chunk_id)}.json")["written"]
    return written, sidecar


def export_video2world(
    prefix: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    manifest: str | os.PathLike | None = None,
    t5: str | T5PromptEncoder = DEFAULT_T5,
    split: str = "4,1,1",
    seed: int = 0,
    max_length: int = 512,
    device: str = "auto",
    local_files_only: bool = False,
    env=None,
) -> Video2WorldSummary | None:
    """Write NVIDIA's Video2World files (see the module docstring) for the ``cosmos_ar`` build at ``prefix``.

    Call it from every rank of a job (or one process); returns the summary on rank 0, ``None`` elsewhere.
    ``manifest``: where the prompts are (default: the build's manifest, checked against its recorded checksum).
    ``t5``: a local folder or hub name of a T5 encoder (with its tokenizer), or a :class:`T5PromptEncoder`.
    """
    from .. import distributed as dist_utils
    from .manifest import read_manifest

    prefix = str(prefix)
    written, sidecar = _videos(prefix)
    source = manifest or sidecar["manifest"]["source"]
    samples = {s.index: s for s in read_manifest(source).samples}
    if manifest is None and read_manifest(source).checksum != sidecar["manifest"]["sha256"]:
        raise ValueError(f"{source} changed since {prefix} was built; pass the build's manifest")
    missing = [w["id"] for w in written
               if w["index"] not in samples or not isinstance(samples[w["index"]].text, str)]
    if missing:
        raise ValueError(f"no prompt (caption) for {len(missing)} videos, e.g. {missing[:3]}: give every video a "
                         "'text' in the manifest (or a sidecar .txt)")
    counts = split_counts(split, len(written))
    order = np.random.default_rng(seed).permutation(len(written)).tolist()
    names = [f"train_{{kind}}_{i}.pt" for i in range(counts[0])] + [f"test_{{kind}}_{i}.pt" for i in range(counts[1])]
    names += [f"val_{{kind}}_{i}.pt" for i in range(counts[2])]
    out = Path(output_dir)

    env = env or dist_utils.get_dist_env()
    with dist_utils.distributed_session(device, env=env) as (env, dev):
        out.mkdir(parents=True, exist_ok=True)
        mine = [k for k in range(len(names)) if k % env.world_size == env.rank]
        todo = [k for k in mine
                if not all((out / names[k].format(kind=kind)).is_file() for kind in ("video", "prompt"))]
        encoder = None
        if todo:
            encoder = t5 if isinstance(t5, T5PromptEncoder) else T5PromptEncoder(t5, dev, max_length, local_files_only)
        from megatron.core.datasets.indexed_dataset import IndexedDataset

        dataset = IndexedDataset(prefix)
        files = 0
        for k in todo:
            doc = order[k]  # the k-th file holds document order[k]
            prompt = samples[written[doc]["index"]].text
            _save_atomic(video_tokens(np.array(dataset[doc])), out / names[k].format(kind="video"))
            _save_atomic(encoder.encode(prompt).contiguous(), out / names[k].format(kind="prompt"))
            files += 2
        done = dist_utils.all_gather_object(files)
        if not env.is_main:
            return None
        from .writer import write_json_atomic

        rows = []
        for k, name in enumerate(names):
            split_name, _, i = name.removesuffix(".pt").split("_")
            sample = written[order[k]]
            rows.append({"split": split_name, "i": int(i), "id": sample["id"], "index": sample["index"],
                         "document": order[k]})
        tmp = out / f"samples.jsonl.tmp-{os.getpid()}"
        tmp.write_text("".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows), encoding="utf-8")
        os.replace(tmp, out / "samples.jsonl")
        metadata = {"train_samples": counts[0], "test_samples": counts[1], "val_samples": counts[2]}
        write_json_atomic(out / "metadata.json", metadata)  # last: the export is complete
        summary = Video2WorldSummary(str(out), *counts, written_files=done[0],
                                     sequence_length=1 + int(sidecar["document_length"]) + NUM_PAD)
        log.info("%s", summary.format())
        return summary


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m nemo_cosmos_tokenizer.data.video2world PREFIX OUTPUT_DIR [--t5 ...]`` (or under torchrun)."""
    import argparse

    parser = argparse.ArgumentParser(
        description="Write NVIDIA's Video2World post-training files ({split}_video_{i}.pt, {split}_prompt_{i}.pt, "
        "metadata.json) from a --layout cosmos_ar build; prompts from the build's manifest captions.",
        epilog="example: python -m nemo_cosmos_tokenizer.data.video2world data/ar data/v2w --t5 google-t5/t5-11b",
    )
    parser.add_argument("prefix", help="output prefix of a finished --layout cosmos_ar build")
    parser.add_argument("output_dir", help="folder for the .pt files and metadata.json")
    parser.add_argument("--t5", default=DEFAULT_T5, help=f"T5 encoder: local folder or hub name (default {DEFAULT_T5})")
    parser.add_argument("--split", default="4,1,1", help="train,test,val weights (default 4,1,1)")
    parser.add_argument("--seed", type=int, default=0, help="shuffle seed (default 0)")
    parser.add_argument("--max-length", type=int, default=512, help="prompt tokens (default 512)")
    parser.add_argument("--manifest", help="the manifest with the prompts (default: the build's)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--local-files-only", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        summary = export_video2world(args.prefix, args.output_dir, manifest=args.manifest, t5=args.t5,
                                     split=args.split, seed=args.seed, max_length=args.max_length,
                                     device=args.device, local_files_only=args.local_files_only)
    except (FileNotFoundError, ValueError, ImportError) as err:
        print(f"error: {err}", flush=True)
        return 2
    if summary is not None:
        print(summary.format())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
