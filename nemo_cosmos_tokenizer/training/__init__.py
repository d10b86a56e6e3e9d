"""Train and fine-tune Cosmos tokenizers (``nemo-cosmos-tokenizer train-tokenizer``).

::

    from nemo_cosmos_tokenizer.training import TokenizerTrainConfig, train_tokenizer

    result = train_tokenizer(TokenizerTrainConfig(input="clips/", output_dir="runs/dv", max_steps=2000))
    result.final_dir   # runs/dv/final: CausalVideoTokenizer.from_pretrained(...) and build-dataset load it

Modules: :mod:`.config` (the settings), :mod:`.model` (architecture, ``--init``, what is frozen), :mod:`.data`
(clips from the builder's inputs), :mod:`.losses` and :mod:`.discriminator`, :mod:`.trainer` (one step),
:mod:`.loop` (the run), :mod:`.checkpoints`, :mod:`.validation` (held-out PSNR/SSIM).
"""

from .config import MODES, TokenizerTrainConfig, TrainConfigError, load_train_config


def __getattr__(name: str):
    # The loop imports torch; the settings do not (``train-tokenizer --help`` and argument errors answer at once).
    if name in ("TrainResult", "train_tokenizer"):
        from . import loop

        return getattr(loop, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["MODES", "TokenizerTrainConfig", "TrainConfigError", "TrainResult", "load_train_config", "train_tokenizer"]
