"""The dataset build: videos + captions -> Megatron ``.bin/.idx`` shards, chunked, resumable, on any number of GPUs.

One entry point, :func:`run_build` (one process, or every rank of a torchrun / SLURM / NeMo-Run job), one
summary, :class:`RunSummary`. The modules follow the build's seams:

- :mod:`.config`: the frozen :class:`BuildConfig` (validated on creation) and :func:`load_build_config` (YAML);
- :mod:`.plan`: :func:`prepare_build` loads what a build needs into a :class:`BuildContext`, fingerprints the
  configuration (config hash, ``<prefix>.chunks/plan.json``) and lists the chunks and which are complete;
- :mod:`.chunk`: :func:`run_chunks` reads, encodes and writes chunks (one shard and one record each);
- :mod:`.merging`: :func:`merge` joins the chunk shards into ``<prefix>.{bin,idx}`` with the sidecar and the
  failures file;
- :mod:`.run`: :func:`run_build`; :mod:`.progress` (global progress over ranks); :mod:`.summary` (:class:`RunSummary`).

The lower-level pieces compose by hand too (what :func:`run_build` does on each rank)::

    context = prepare_build(config)            # loads tokenizers, checks/records the config hash
    run_chunks(context, context.pending_chunks()[rank::world])
    # barrier
    if rank == 0:
        merge(config)

Importing this package imports neither megatron-core nor a video reader: they load when a build starts.
"""

from .chunk import run_chunks
from .config import (
    CHUNK_NAME,
    TEMPORAL_MODES,
    VIDEO_BACKENDS,
    BuildConfig,
    ConfigMismatchError,
    IncompleteBuildError,
    load_build_config,
)
from .merging import merge
from .plan import DATASET_FORMAT, FORMAT_VERSION, BuildContext, prepare_build
from .run import FATAL_CHUNK_ERRORS, BuildAbortedError, ChunkFailedError, run_build
from .summary import RunSummary, data_paths_path, summary_path, weighted_data_paths_path

__all__ = [
    "CHUNK_NAME",
    "DATASET_FORMAT",
    "FATAL_CHUNK_ERRORS",
    "FORMAT_VERSION",
    "TEMPORAL_MODES",
    "VIDEO_BACKENDS",
    "BuildAbortedError",
    "BuildConfig",
    "BuildContext",
    "ChunkFailedError",
    "ConfigMismatchError",
    "IncompleteBuildError",
    "RunSummary",
    "data_paths_path",
    "weighted_data_paths_path",
    "load_build_config",
    "merge",
    "prepare_build",
    "run_build",
    "run_chunks",
    "summary_path",
]
