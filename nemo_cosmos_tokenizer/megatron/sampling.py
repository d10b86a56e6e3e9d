"""Generate the video block of a document from a caption, with only layout-valid ids, and decode it to mp4.

The library behind ``scripts/sample_video.py``. A caption-first document is
``bos caption boi shape grid (v..v row)*H' frame ... eoi eod``: once the prompt ``bos caption boi shape grid`` fixes
the grid ``T' x H' x W'``, every later position is either a visual id (sampled from the model's logits restricted
to the ``codebook_size`` visual ids) or a separator whose id is fixed (row, frame, eoi, eod: written, not sampled).
:func:`block_plan` lists that per position; :func:`generate_documents` follows it with any next-token model, so
the result always parses with :meth:`TokenLayout.decode_document`.

The model is called on the whole prefix at each visual position (no KV cache): ``T' H' W'`` forward passes, fine for
the small grids of a demo, slow for real 33-frame 720p grids.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch

from ..data.layout import TokenLayout
from .tokenizer import SidecarTokenizer

log = logging.getLogger(__name__)

#: ``next_logits(tokens [B, L] int64) -> logits [B, V] float`` for the position after the last token.
NextLogits = Callable[[torch.Tensor], torch.Tensor]


def block_plan(layout: TokenLayout, grid_shape: tuple[int, int, int]) -> list[Optional[int]]:
    """After the prompt: ``None`` where a visual id is sampled, else the fixed id (row, frame, eoi, eod)."""
    t, h, w = (int(x) for x in grid_shape)
    if min(t, h, w) < 1:
        raise ValueError(f"grid shape must be positive T' x H' x W', got {grid_shape}")
    row = [None] * w + [layout.row_sep_id]
    frame = row * h + [layout.frame_sep_id]
    return frame * t + [layout.eoi_id, layout.eod_id]


def _sample(logits: torch.Tensor, temperature: float, top_k: int | None, generator: torch.Generator | None) -> torch.Tensor:
    """Index per row of ``logits [B, C]``: argmax at temperature 0, else a draw from the top-k softmax."""
    if temperature <= 0:
        return logits.argmax(dim=-1)
    logits = logits.float() / temperature
    if top_k is not None and 0 < top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]  # [B, 1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(-1).to(logits.device)


@torch.no_grad()
def generate_documents(
    next_logits: NextLogits,
    prompt: Sequence[int],
    layout: TokenLayout,
    grid_shape: tuple[int, int, int],
    *,
    num_samples: int = 1,
    temperature: float = 1.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """``num_samples`` whole documents (int64 ``[B, len(prompt) + len(plan)]``) continuing ``prompt``.

    Visual positions draw from the logits of the ``codebook_size`` visual ids only (``vision_offset + k``); the
    other positions get their fixed id, so every document parses.
    """
    plan = block_plan(layout, grid_shape)
    tokens = torch.tensor([list(prompt)] * num_samples, dtype=torch.long, device=device)  # [B, L0]
    lo, hi = layout.vision_offset, layout.vision_offset + layout.codebook_size
    for fixed in plan:
        if fixed is None:
            logits = next_logits(tokens)  # [B, V]
            if logits.shape[-1] < hi:
                raise ValueError(f"the model has {logits.shape[-1]} outputs, the layout's visual ids reach {hi - 1}")
            chosen = _sample(logits[:, lo:hi], temperature, top_k, generator) + lo  # [B]
        else:
            chosen = torch.full((num_samples,), fixed, dtype=torch.long, device=device)
        tokens = torch.cat([tokens, chosen[:, None]], dim=1)
    return tokens.cpu().numpy()


def gpt_next_logits(model) -> NextLogits:
    """:data:`NextLogits` of a megatron-core ``GPTModel`` (tensor parallel 1): causal attention, positions from 0."""

    def next_logits(tokens: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(tokens.shape[1], device=tokens.device)[None].expand_as(tokens)  # [B, L]
        logits = model(tokens, positions, None)  # [B, L, V]
        return logits[:, -1].float()

    return next_logits


@dataclass(frozen=True)
class SampleResult:
    caption: str
    grid_shape: tuple[int, int, int]
    documents: list[list[int]]
    videos: list[str]
    checkpoint: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def dataset_grid_shape(tokenizer: SidecarTokenizer, prefix: str) -> tuple[int, int, int]:
    """The grid of the dataset's first document (what the model saw most, for a single-resolution build)."""
    from ..data.reader import VideoTokenDataset

    doc = VideoTokenDataset(prefix, tokenizer.text_tokenizer).decode(0)
    return tuple(int(x) for x in doc.grid.shape)  # type: ignore[return-value]


def sample_videos(
    run_dir: str | os.PathLike,
    caption: str,
    output: str | os.PathLike,
    *,
    num_samples: int = 1,
    grid_shape: tuple[int, int, int] | None = None,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int = 0,
    device: str = "auto",
    data_prefix: str | None = None,
    decoder: str | None = None,
    fps: float | None = None,
) -> SampleResult:
    """Load the newest checkpoint of ``run_dir`` (a train output dir, or a ``step_*`` folder), generate
    ``num_samples`` video blocks for ``caption`` and decode them with the dataset's tokenizer to
    ``output`` (``x.mp4``; several samples: ``x.0.mp4``, ``x.1.mp4``, ...)."""
    import torch.distributed as dist
    from megatron.core import parallel_state

    from ..data.reader import write_frames
    from ..data.video_tokenizer import load_video_tokenizer
    from ..devices import resolve_device
    from .model import GPTShape, build_gpt_model
    from .checkpoints import latest_checkpoint, load_checkpoint_file
    from .parallel import free_port

    dev = resolve_device(None if device in (None, "auto") else device)  # an unusable --device fails first

    run_dir = Path(run_dir)
    folder = run_dir if run_dir.name.startswith("step_") else latest_checkpoint(run_dir)
    if folder is None:
        raise FileNotFoundError(f"{run_dir} holds no checkpoint (checkpoints/latest): train first")
    state = load_checkpoint_file(folder, 0)
    if state["tensor_parallel"] != 1:
        raise ValueError(f"{folder} was trained with tensor parallel {state['tensor_parallel']}; sampling loads "
                         "tensor-parallel-1 checkpoints only")
    prefix = data_prefix or state["sidecar"][: -len(".json")]
    tokenizer = SidecarTokenizer(prefix)
    layout = tokenizer.require_layout()
    grid_shape = tuple(grid_shape) if grid_shape else dataset_grid_shape(tokenizer, prefix)
    shape = GPTShape(**state["shape"])
    prompt = tokenizer.prompt_ids(caption, grid_shape)
    length = len(prompt) + len(block_plan(layout, grid_shape))
    if length > shape.seq_length and shape.position_embedding == "learned_absolute":
        raise ValueError(f"a {grid_shape} document has {length} tokens, beyond the model's {shape.seq_length} positions")

    created = False
    if not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{free_port()}", rank=0, world_size=1)
        created = True
    try:
        parallel_state.initialize_model_parallel(1)
        if dev.type == "cuda":
            from megatron.core.tensor_parallel.random import model_parallel_cuda_manual_seed

            model_parallel_cuda_manual_seed(seed)
        model = build_gpt_model(shape, device=dev)
        model.load_state_dict(state["model"], strict=True)
        model.eval()
        generator = torch.Generator().manual_seed(seed)
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if dev.type == "cuda" else torch.autocast("cpu", enabled=False)
        with autocast:
            docs = generate_documents(gpt_next_logits(model), prompt, layout, grid_shape, num_samples=num_samples,
                                      temperature=temperature, top_k=top_k, generator=generator, device=dev)
    finally:
        parallel_state.destroy_model_parallel()
        if created:
            dist.destroy_process_group()

    recorded = tokenizer.sidecar.get("video_tokenizer", {})
    video_tokenizer = load_video_tokenizer(decoder or recorded["name"], dev, "float32", parts=("decoder",))
    if video_tokenizer.codebook_size != layout.codebook_size:
        raise ValueError(f"decoder {video_tokenizer.name} has {video_tokenizer.codebook_size} codes, the dataset "
                         f"{layout.codebook_size}; decode with the dataset's tokenizer ({recorded.get('name')})")
    rate = fps or tokenizer.sidecar.get("frames", {}).get("fps") or 24.0
    output = Path(output)
    videos = []
    for i, doc in enumerate(docs):
        parsed = layout.decode_document(doc, tokenizer.text_tokenizer)  # raises if a document were malformed
        frames = video_tokenizer.decode(parsed.grid[None])[0]  # [T, H, W, 3] uint8
        path = output if num_samples == 1 else output.with_name(f"{output.stem}.{i}{output.suffix}")
        videos.append(str(write_frames(frames, path, rate)))
    return SampleResult(caption, grid_shape, [d.tolist() for d in docs], videos, str(folder))
