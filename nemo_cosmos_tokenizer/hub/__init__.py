"""Checkpoints: resolve names and paths (``resolve``), download from the Hugging Face Hub (``download``), convert
NVIDIA JIT state_dicts and our safetensors format (``convert``), export NVIDIA-layout JIT files (``jit_export``).

Nothing is imported here, so ``import nemo_cosmos_tokenizer.hub.convert`` does not pull in huggingface_hub.
"""
