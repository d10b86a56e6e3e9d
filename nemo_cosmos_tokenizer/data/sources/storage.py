"""Where inputs live: local paths, or URLs of any fsspec file system (``s3://``, ``gs://``, ``https://``, ...).

Remote access goes through fsspec (``pip install "nemo-cosmos-tokenizer[cloud]"``: fsspec + s3fs; ``gcsfs`` for
``gs://``). Credentials and endpoints are found the way boto/fsspec users expect: ``AWS_ENDPOINT_URL``,
``AWS_PROFILE`` and the other ``AWS_*`` variables, ``~/.aws``; :attr:`Storage.options` (``--storage-options`` as
JSON) are passed to the file system as its constructor arguments, e.g.
``{"endpoint_url": "http://127.0.0.1:9000", "anon": true}`` or ``{"profile": "corpus"}``, or per protocol:
``{"s3": {...}, "gs": {...}}``.

Reads are bounded: a byte range (a tar member, a manifest block) is fetched by range requests, never the whole
object. Transient errors (connection resets, timeouts, throttling, 5xx) are retried with exponential backoff;
a missing object or a refused permission is not. :class:`FetchError` says what finally failed.
"""

from __future__ import annotations

import io
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Callable, TypeVar

log = logging.getLogger(__name__)

INSTALL_HINT = 'pip install "nemo-cosmos-tokenizer[cloud]" (fsspec and s3fs; add gcsfs for gs://)'
T = TypeVar("T")


class FetchError(OSError):
    """An object could not be read: ``missing`` (it does not exist) or unreachable after every retry."""

    def __init__(self, url: str, message: str, missing: bool = False) -> None:
        super().__init__(message)
        self.url = url
        self.missing = missing

    def __reduce__(self):
        return (type(self), (self.url, str(self), self.missing))


from ..locations import is_remote, join, parent  # noqa: E402,F401  (re-exported: part of this module's API)


def driver_problem(url: str) -> str | None:
    """Why ``url`` cannot be read on this machine (fsspec, or the driver of its protocol, not installed), or
    ``None``. Cheap: no network, and the driver is found, not imported (s3fs alone takes a second to import)."""
    import importlib.util

    if importlib.util.find_spec("fsspec") is None:
        return f"reading {url} needs fsspec: {INSTALL_HINT}"
    from fsspec.registry import known_implementations, registry

    protocol = url.partition("://")[0]
    if protocol in registry:
        return None
    known = known_implementations.get(protocol)
    if known is None:
        return f"{url}: no fsspec file system for {protocol}:// URLs"
    package = known["class"].split(".", 1)[0]
    if package != "fsspec" and importlib.util.find_spec(package) is None:
        return f"reading {protocol}:// URLs needs {package}: {INSTALL_HINT}"
    return None


def _not_retried(err: BaseException) -> bool:
    return isinstance(err, (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, ValueError))


@dataclass(frozen=True)
class Storage:
    """How to reach inputs: file-system options, retries, read block size (picklable for DataLoader workers)."""

    options: dict[str, Any] = field(default_factory=dict)
    """fsspec constructor arguments for remote file systems (``--storage-options``); a dict keyed by protocol
    (``{"s3": {...}}``) gives each protocol its own."""

    retries: int = 5
    """Attempts on transient errors before a read fails."""

    backoff_s: float = 0.5
    """First wait between attempts; doubled each time (0.5, 1, 2, 4 s)."""

    block_size: int = 4 << 20
    """Bytes fetched per range request when a remote file is read sequentially."""

    def __post_init__(self) -> None:
        if self.retries < 1:
            raise ValueError(f"retries must be >= 1, got {self.retries}")

    # ------------------------------------------------------------------ file systems
    def filesystem(self, url: str):
        """``(fsspec file system, path inside it)`` for a remote ``url``."""
        try:
            import fsspec
        except ImportError as err:
            raise ImportError(f"reading {url} needs fsspec: {INSTALL_HINT}") from err
        protocol = url.partition("://")[0]
        options = self.options
        if isinstance(options.get(protocol), dict):
            options = options[protocol]
        elif any(isinstance(v, dict) and k in ("s3", "gs", "gcs", "http", "https", "az", "abfs") for k, v in options.items()):
            options = {}
        try:
            return fsspec.core.url_to_fs(url, **options)
        except ImportError as err:
            raise ImportError(f"reading {protocol}:// URLs needs its fsspec driver ({err}): {INSTALL_HINT}") from err

    def _retry(self, url: str, what: str, fn: Callable[[], T]) -> T:
        delay = self.backoff_s
        for attempt in range(1, self.retries + 1):
            try:
                return fn()
            except FetchError:
                raise
            except Exception as err:  # noqa: BLE001 - fsspec drivers raise many types for transient failures
                if isinstance(err, FileNotFoundError):
                    raise FetchError(url, f"{what}: no such object: {url}", missing=True) from err
                if _not_retried(err) or attempt == self.retries:
                    tries = f" after {attempt} attempts" if attempt > 1 else ""
                    raise FetchError(url, f"{what} failed{tries}: {type(err).__name__}: {err}") from err
                log.debug("%s of %s failed (%s: %s); retrying in %.1fs", what, url, type(err).__name__, err, delay)
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ reads
    def stat(self, url: str) -> dict[str, Any]:
        """``{"size": bytes, "version": etag or mtime}``: what identifies the object's content cheaply."""
        if not is_remote(url):
            try:
                st = os.stat(url)
            except FileNotFoundError as err:
                raise FetchError(url, f"no such file: {url}", missing=True) from err
            return {"size": st.st_size, "version": st.st_mtime_ns}

        def head() -> dict[str, Any]:
            fs, path = self.filesystem(url)
            info = fs.info(path)
            version = info.get("ETag") or info.get("etag") or info.get("md5Hash") or info.get("LastModified") or info.get("mtime")
            return {"size": int(info.get("size") or 0), "version": str(version) if version is not None else None}

        return self._retry(url, "stat", head)

    def read_range(self, url: str, offset: int, size: int) -> bytes:
        """``size`` bytes from ``offset`` (fewer only when the object ends first)."""
        if not is_remote(url):
            try:
                with open(url, "rb") as f:
                    return os.pread(f.fileno(), size, offset) if size else b""
            except FileNotFoundError as err:
                raise FetchError(url, f"no such file: {url}", missing=True) from err

        def fetch() -> bytes:
            fs, path = self.filesystem(url)
            if size == 0:
                return b""
            return fs.cat_file(path, start=offset, end=offset + size)

        return self._retry(url, f"reading bytes {offset}-{offset + size}", fetch)

    def read_all(self, url: str) -> bytes:
        if not is_remote(url):
            try:
                with open(url, "rb") as f:
                    return f.read()
            except FileNotFoundError as err:
                raise FetchError(url, f"no such file: {url}", missing=True) from err

        def fetch() -> bytes:
            fs, path = self.filesystem(url)
            return fs.cat_file(path)

        return self._retry(url, "reading", fetch)

    def open(self, url: str, block_size: int | None = None) -> BinaryIO:
        """A seekable binary file; remote files fetch ``block_size`` bytes per range request as they are read."""
        if not is_remote(url):
            try:
                return open(url, "rb")
            except FileNotFoundError as err:
                raise FetchError(url, f"no such file: {url}", missing=True) from err

        def opened():
            fs, path = self.filesystem(url)
            return fs.open(path, "rb", block_size=block_size or self.block_size, cache_type="readahead")

        return _RetryingReader(self, url, self._retry(url, "opening", opened))

    def list_folder(self, url: str) -> list[str]:
        """Files directly inside a folder, as full paths/URLs, sorted."""
        if not is_remote(url):
            return sorted(os.path.join(url, name) for name in os.listdir(url) if os.path.isfile(os.path.join(url, name)))
        fs, path = self.filesystem(url)
        protocol = url.partition("://")[0]
        entries = self._retry(url, "listing", lambda: fs.ls(path, detail=True))
        return sorted(f"{protocol}://{e['name']}" for e in entries if e.get("type") == "file")

    def is_folder(self, url: str) -> bool:
        if not is_remote(url):
            return os.path.isdir(url)
        fs, path = self.filesystem(url)
        return bool(self._retry(url, "stat", lambda: fs.isdir(path)))


class _RetryingReader(io.RawIOBase):
    """A remote file whose reads are retried (reopening the file at the same position after a failure)."""

    def __init__(self, storage: Storage, url: str, handle) -> None:
        super().__init__()
        self._storage, self._url, self._handle = storage, url, handle
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            self._pos = offset
        elif whence == io.SEEK_CUR:
            self._pos += offset
        else:
            self._pos = self._handle.size + offset
        return self._pos

    def read(self, size: int = -1) -> bytes:
        def attempt() -> bytes:
            try:
                self._handle.seek(self._pos)
                return self._handle.read(size)
            except Exception:
                # A broken connection can leave the handle's buffer inconsistent: the next attempt reopens it.
                try:
                    fs, path = self._storage.filesystem(self._url)
                    self._handle = fs.open(path, "rb", block_size=self._handle.blocksize, cache_type="readahead")
                except Exception:  # noqa: BLE001 - the retry loop reports the original error
                    pass
                raise

        data = self._storage._retry(self._url, f"reading at byte {self._pos}", attempt)
        self._pos += len(data)
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        try:
            self._handle.close()
        finally:
            super().close()
