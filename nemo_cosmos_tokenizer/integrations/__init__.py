"""Integrations with other frameworks, imported on demand (``nemo_cosmos_tokenizer.integrations.nemo``)."""
