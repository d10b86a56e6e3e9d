"""A sample's media as something a decoder opens: a local path, or the bytes of a tar member / remote object.

Bytes are read by one range request (a tar member) or one whole-object read, retried by :class:`.storage.Storage`;
a local file is left to the decoder by its path (as before corpus inputs). Failures are :class:`..video.MediaError`
with a reason, so a build records them and goes on.
"""

from __future__ import annotations

import os

from ...media.failures import MediaError
from ..manifest import Sample
from .storage import FetchError, Storage, is_remote

_DEFAULT_STORAGE = Storage()


def load_media(sample: Sample, storage: Storage | None = None) -> str | bytes:
    """``sample.path`` for a whole local file (after checking it exists and is not empty), else the media bytes."""
    storage = storage or _DEFAULT_STORAGE
    if sample.failure_reason is not None:
        raise MediaError(sample.failure_reason, sample.failure_message or sample.failure_reason)
    if sample.offset is None and not is_remote(sample.path):
        if not os.path.exists(sample.path):
            raise MediaError("missing", f"no such file: {sample.path}")
        if os.path.getsize(sample.path) == 0:
            raise MediaError("empty_file", "the file has zero bytes")
        return sample.path
    try:
        if sample.offset is None:
            data = storage.read_all(sample.path)
        else:
            data = storage.read_range(sample.path, sample.offset, sample.size or 0)
    except FetchError as err:
        raise MediaError("missing" if err.missing else "unreachable", str(err)) from err
    if sample.offset is not None and len(data) < (sample.size or 0):
        raise MediaError("truncated", f"member {sample.member}: {len(data)} of {sample.size} bytes in the shard")
    if not data:
        raise MediaError("empty_file", f"{sample.member or sample.path} has zero bytes")
    return data
