"""Corpus-scale inputs: WebDataset tar shards, JSONL/CSV/Parquet tables (with segments), object storage.

* :mod:`.expand`: brace patterns (``shards/{000000..000099}.tar``);
* :mod:`.storage`: local paths or fsspec URLs (``s3://``, ``gs://``, ``https://``), retried range reads;
* :mod:`.tar`: a shard's samples from its headers (media member byte ranges, captions from ``.txt``/``.json``);
* :mod:`.table`: rows of ``.jsonl``/``.csv``/``.parquet`` (columns, list-valued segment cells);
* :mod:`.resolve`: what an ``--input`` names and whether it is there (also asked early, by the commands);
* :mod:`.plan`: one indexing pass writes ``samples.jsonl`` + per-chunk offsets; a process reads only its chunks;
* :mod:`.media`: a sample's media as a local path or bytes for the decoders.
"""

from .expand import expand_braces
from .media import load_media
from .plan import InputPlan, plan_inputs
from .resolve import INPUT_KINDS, InputSpec, check_input, resolve_input
from .storage import FetchError, Storage, is_remote
from .table import Columns

__all__ = [
    "INPUT_KINDS",
    "Columns",
    "FetchError",
    "InputPlan",
    "InputSpec",
    "Storage",
    "check_input",
    "expand_braces",
    "is_remote",
    "load_media",
    "plan_inputs",
    "resolve_input",
]
