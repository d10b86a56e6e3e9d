"""Fetch checkpoint files from the Hugging Face Hub into the HF cache.

A thin layer over :func:`huggingface_hub.hf_hub_download`: one call per file, so only the files a caller needs
are transferred; the standard cache (``HF_HUB_CACHE`` / ``cache_dir``), ``revision``, ``token``, offline mode
(``HF_HUB_OFFLINE=1`` or ``local_files_only=True``) and ``HF_ENDPOINT`` work as everywhere else in the HF
ecosystem. Hub errors are turned into :class:`CheckpointNotFoundError` messages that say what to do.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

__all__ = ["CheckpointNotFoundError", "download_files"]


class CheckpointNotFoundError(FileNotFoundError):
    """A checkpoint file (local, in the HF cache, or on the Hub) does not exist or cannot be reached."""

    def __str__(self) -> str:  # FileNotFoundError would print "(errno) message" for two args.
        return str(self.args[0]) if self.args else ""


def _offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def download_files(
    repo_id: str,
    filenames: Iterable[str],
    *,
    optional: Iterable[str] = (),
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    token: str | bool | None = None,
    local_files_only: bool = False,
) -> dict[str, Path]:
    """Download ``filenames`` (required) and ``optional`` files of ``repo_id``; return ``{filename: local path}``.

    Optional files that the repository does not have (or that are not cached while offline) are left out of the
    result. A missing required file, repository or revision raises :class:`CheckpointNotFoundError`.
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.utils import (
        EntryNotFoundError,
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    where = f"{repo_id}" + (f" (revision {revision})" if revision else "")
    paths: dict[str, Path] = {}
    required = list(filenames)
    for filename in [*required, *optional]:
        is_optional = filename not in required
        try:
            path = hf_hub_download(
                repo_id,
                filename,
                revision=revision,
                cache_dir=cache_dir,
                token=token,
                local_files_only=local_files_only,
            )
        except LocalEntryNotFoundError as err:
            # Offline (or no connection) and not in the cache. Checked before EntryNotFoundError, its base class.
            if is_optional:
                continue
            why = (
                "offline mode is on (HF_HUB_OFFLINE=1 or local_files_only=True)"
                if (local_files_only or _offline())
                else "the Hub could not be reached"
            )
            cache = cache_dir or os.environ.get("HF_HUB_CACHE") or "the Hugging Face cache"
            raise CheckpointNotFoundError(
                f"{filename} of {where} is not in {cache} and {why}. Download it once online "
                f"(e.g. `hf download {repo_id} {filename}`), pass cache_dir= pointing to a cache that has it, "
                f"or pass a local directory holding the files."
            ) from err
        except GatedRepoError as err:
            raise CheckpointNotFoundError(
                f"{repo_id} is gated: accept its licence on https://huggingface.co/{repo_id} and pass token= "
                "(or set HF_TOKEN / run `hf auth login`)."
            ) from err
        except RepositoryNotFoundError as err:
            raise CheckpointNotFoundError(
                f"repository {repo_id} was not found on the Hub (or it is private: pass token= or set HF_TOKEN)."
            ) from err
        except RevisionNotFoundError as err:
            raise CheckpointNotFoundError(f"revision {revision!r} does not exist in {repo_id}.") from err
        except EntryNotFoundError as err:
            if is_optional:
                continue
            raise CheckpointNotFoundError(f"{where} has no file {filename!r}.") from err
        paths[filename] = Path(path)
    return paths
