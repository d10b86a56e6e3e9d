"""The state of one stream through a causal video network: what each stateful layer keeps between chunks.

Every stateful video module takes ``forward(x, cache=None)``. Without a cache it computes the whole clip (the plain
network). With a :class:`StreamCache` it treats ``x`` as the next chunk of a longer clip: it reads what it kept from
the previous chunk under its own key (the module object), computes the output frames this chunk completes, and
stores what the next chunk needs. A module with no entry yet is in its first chunk. Concatenated chunk outputs equal
the whole-clip output; :mod:`nemo_cosmos_tokenizer.networks.streaming` drives this for whole tokenizers.

What is kept: causal convs their last ``kt - 1`` input frames (a stride-2 conv the stride phase as well), the Haar
(un)patcher a first-chunk marker, the causal temporal attention the keys and values of earlier frames (at most
``max_context_frames - 1`` of them when that is set). The fast layers (:mod:`nemo_cosmos_tokenizer.fast`) keep
theirs in the same object under their own modules. Entries are detached: streaming is for inference.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch
from torch import nn

__all__ = ["StreamCache"]


class StreamCache:
    """Per-module stream state (see the module docstring); one per stream, spatial tile and network body.

    Args:
        max_context_frames: latent frames the causal temporal attention looks back over (``None``: all, which is
            exact). With ``N`` set, frame ``i`` attends to frames ``i-N+1 .. i`` only, whatever the chunking.
    """

    def __init__(self, max_context_frames: int | None = None) -> None:
        if max_context_frames is not None and max_context_frames < 1:
            raise ValueError(f"max_context_frames must be a positive number of latent frames or None, "
                             f"got {max_context_frames}")
        self.max_context_frames = max_context_frames
        self._state: dict[nn.Module, Any] = {}

    def get(self, module: nn.Module) -> Any:
        """What ``module`` kept from the previous chunk (``None`` in its first chunk)."""
        return self._state.get(module)

    def set(self, module: nn.Module, value: Any) -> None:
        """Keep ``value`` for ``module``'s next chunk."""
        self._state[module] = value

    def discard(self, modules: Iterable[nn.Module]) -> None:
        """Forget the entries of ``modules`` (e.g. of a network that stopped taking part in the stream)."""
        for module in modules:
            self._state.pop(module, None)

    def __len__(self) -> int:
        return len(self._state)

    def nbytes(self) -> int:
        """Bytes held by the cached tensors."""
        total = 0
        for value in self._state.values():
            for t in value if isinstance(value, tuple) else (value,):
                if isinstance(t, torch.Tensor):
                    total += t.numel() * t.element_size()
        return total
