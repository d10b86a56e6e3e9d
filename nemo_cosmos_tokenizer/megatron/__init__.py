"""Training on the shards with Megatron: the tokenizer adapter, the flags a dataset needs, training and sampling.

* :class:`SidecarTokenizer` (:mod:`.tokenizer`): a megatron-core tokenizer built from a dataset's sidecar, with
  the layout's ``vocab_size``, ``eod``, ``pad`` and ``tokenize`` / ``detokenize`` through the text tokenizer; what
  megatron-core's ``GPTDataset`` and NeMo 2's data modules need for every layout (including ``emu3``, whose eod is
  not the last id).
* :func:`megatron_settings` / :func:`check_split` (:mod:`.settings`): the exact flags for stock Megatron-LM, the
  ``--seq-length`` the document lengths suggest, and a split that leaves no split empty (megatron-core's
  ``GPTDataset`` otherwise loops forever in ``_get_num_epochs``).
* :mod:`.train` (``scripts/train_gpt.py``): a megatron-core ``GPTModel`` trained on the shards with torchrun,
  tensor and data parallel, checkpoint save/resume; :mod:`.sampling` (``scripts/sample_video.py``): generate the
  video block of a document from a caption with only layout-valid ids, and decode it to mp4.

Nothing here imports megatron-core at import time: functions import it when they read shards (``IndexedDataset``),
use its split arithmetic, build datasets or models.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .settings import MegatronSettings, megatron_settings
    from .splits import SplitProblem, check_split, suggest_split
    from .tokenizer import SidecarTokenizer

_EXPORTS = {"MegatronSettings": "settings", "SplitProblem": "splits", "check_split": "splits",
            "megatron_settings": "settings", "suggest_split": "splits", "SidecarTokenizer": "tokenizer"}


def __getattr__(name: str):
    # Resolved on first use: importing a light submodule (.config, for the CLI's --help) must not load torch.
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["MegatronSettings", "SidecarTokenizer", "SplitProblem", "check_split", "megatron_settings", "suggest_split"]
