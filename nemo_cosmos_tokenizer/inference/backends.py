"""The two ways an inference tokenizer runs, behind one ``encode`` / ``decode`` / ``autoencode``.

* :class:`NativeBackend`: our :class:`~nemo_cosmos_tokenizer.networks.CosmosTokenizer` (or its fast path,
  :func:`nemo_cosmos_tokenizer.fast.optimize`, which has the same API) with the checkpoint's weights; it also streams.
* :class:`JitBackend`: NVIDIA's TorchScript modules as they are, on their traced code paths.

A backend is a view of the modules its tokenizer holds (``network`` / ``jit_*``, which stay the tokenizer's
registered submodules, so state_dict keys and ``.to()`` are unchanged); inputs arrive already on the device and in
the dtype.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["JitBackend", "NativeBackend"]


def _first(output: Any) -> torch.Tensor:
    return output[0] if isinstance(output, (tuple, list)) else output


class NativeBackend:
    """Runs the native network (``mode="torch"``)."""

    mode = "torch"

    def __init__(self, network: nn.Module) -> None:
        self.network = network

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.network.encode(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.network.decode(z)

    def autoencode(self, x: torch.Tensor) -> torch.Tensor | None:
        """``None``: the caller composes ``decode(encode(x)[0])`` (and checks both sides are loaded)."""
        return None

    def is_discrete(self) -> bool:
        return self.network.quantizer is not None


class JitBackend:
    """Runs NVIDIA's TorchScript modules (``mode="jit"``); a part that was not loaded is ``None``."""

    mode = "jit"

    def __init__(self, encoder: nn.Module | None, decoder: nn.Module | None, autoencoder: nn.Module | None) -> None:
        self.encoder, self.decoder, self.autoencoder = encoder, decoder, autoencoder

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.encoder(x)
        if isinstance(out, (tuple, list)):
            # NVIDIA's encoder.jit returns (latent, stats) / (indices, codes, loss): drop the last element.
            return tuple(out[:-1]) if len(out) > 1 else (out[0],)
        return (out,)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return _first(self.decoder(z))

    def autoencode(self, x: torch.Tensor) -> torch.Tensor | None:
        """The full ``autoencoder.jit`` when it was loaded, else ``None`` (compose encode and decode)."""
        return None if self.autoencoder is None else _first(self.autoencoder(x))

    def is_discrete(self) -> bool:
        modules = [m for m in (self.encoder, self.decoder, self.autoencoder) if m is not None]
        return any(k.endswith("quantizer._levels") for m in modules for k in m.state_dict())
