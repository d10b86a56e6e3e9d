"""Where an input lives: local paths and URLs (``s3://``, ``gs://``, ``https://``), joined and split alike.

Plain string functions with no imports from the package, used by the manifest reader and the input sources
(:mod:`.sources.storage` re-exports them).
"""

from __future__ import annotations

import os
import posixpath

__all__ = ["is_remote", "join", "parent"]


def is_remote(path: str) -> bool:
    """A URL with a protocol other than ``file://``."""
    head, sep, _ = str(path).partition("://")
    return bool(sep) and head not in ("file", "local") and "/" not in head


def join(base: str, relative: str) -> str:
    """``relative`` resolved against the folder ``base`` (a local path or a URL); absolute ones are kept."""
    if is_remote(relative):
        return relative
    if is_remote(base):
        if relative.startswith("/"):
            raise ValueError(f"{relative!r} is a local absolute path in a remote manifest ({base}); give a URL")
        protocol, _, rest = base.partition("://")
        return f"{protocol}://{posixpath.normpath(posixpath.join(rest, relative))}"
    return os.path.normpath(os.path.join(base, os.path.expanduser(relative)))


def parent(path: str) -> str:
    """The folder holding ``path``."""
    if is_remote(path):
        protocol, _, rest = path.partition("://")
        return f"{protocol}://{posixpath.dirname(rest.rstrip('/'))}"
    return os.path.dirname(os.path.abspath(path))
