"""How every command ends when something goes wrong: one or two plain lines, a meaningful exit status.

* :class:`UsageError` (and unknown names, missing inputs, unwritable outputs, a ``--device`` this machine does not
  have): ``error: <what>`` and, when there is one, ``hint: <what to do>``; exit status 2, as argparse's own errors.
* Ctrl-C: a line saying what was kept and how to go on (the command supplies it); exit status 130 (128 + SIGINT).
* Anything else: ``error: <type>: <message>`` and a pointer to ``--debug``; exit status 1.

``--debug`` or ``NCT_DEBUG=1`` in the environment shows the full traceback instead (the exception propagates).
This module imports nothing heavy: commands check their arguments with it before torch or megatron-core load.
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path
from typing import Callable

from ..devices import DeviceUnavailableError
from ..interrupts import catch_interrupts

__all__ = [
    "DEBUG_ENV",
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_USAGE",
    "UsageError",
    "check_inputs_exist",
    "check_writable_dir",
    "debug_enabled",
    "describe_os_error",
    "guarded",
]

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for a Ctrl-C
DEBUG_ENV = "NCT_DEBUG"
DEBUG_HINT = f"run again with --debug (or {DEBUG_ENV}=1) to see the traceback"

# errno values that mean "this path cannot be used": the user picks another one (a usage error).
_PATH_ERRNOS = {errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied",
                errno.EPERM: "operation not permitted", errno.ENOENT: "no such file or directory",
                errno.ENOTDIR: "a part of the path is not a folder", errno.EISDIR: "it is a folder",
                errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
                errno.ENAMETOOLONG: "the name is too long"}


class UsageError(Exception):
    """A mistake in what the user asked for: ``message`` says what is wrong, ``hint`` what to do."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def debug_enabled(flag: bool = False) -> bool:
    """``--debug`` given, or ``NCT_DEBUG`` set to anything but ``""``/``0``."""
    return bool(flag) or os.environ.get(DEBUG_ENV, "").strip() not in ("", "0")


def describe_os_error(err: OSError) -> str:
    """``<path>: <reason in words>`` for an OSError (no ``[Errno 30]``)."""
    if err.errno is None:  # raised with a message of ours (FileNotFoundError("text tokenizer not found: ..."))
        return str(err)
    reason = _PATH_ERRNOS.get(err.errno) or (err.strerror or str(err)).rstrip(".").lower()
    return f"{err.filename}: {reason}" if err.filename is not None else reason


PATH_HINT = "check the path (relative paths start at the current folder)"


def check_inputs_exist(paths, what: str = "input", *, corpus: bool = False, any_of: bool = False) -> None:
    """Raise :class:`UsageError` if an input of ``paths`` is not there: the one early answer of every command.

    ``corpus=True``: the dataset builder's ``--input``, asked of its input planner
    (:func:`~nemo_cosmos_tokenizer.data.sources.check_input`): brace patterns (every local shard), folders, shard
    lists, tables; for URLs only the file-system driver (the planner reaches the store, with retries).
    Otherwise: files, folders or glob patterns (a glob must match a file); URLs pass. ``any_of=True``: one present
    input is enough (commands that skip and report missing files), and the error names the first few.
    """
    given = [str(path) for path in paths if path]
    present = []
    for path in given:
        try:
            _check_one(path, what, corpus)
        except UsageError:
            if not any_of:
                raise
        else:
            present.append(path)
    if any_of and given and not present:
        shown = ", ".join(given[:3]) + (" ..." if len(given) > 3 else "")
        raise UsageError(f"none of the {len(given)} {what}(s) exist: {shown}",
                         "check the paths; quote glob patterns (\"clips/*.mp4\") to let the tool expand them")


def _check_one(path: str, what: str, corpus: bool) -> None:
    from ..data.locations import is_remote

    if corpus:
        from ..data.manifest import ManifestError
        from ..data.sources.resolve import InputSpec, check_input

        try:
            check_input(InputSpec(path))
        except ManifestError as err:
            raise UsageError(str(err), PATH_HINT if "not found" in str(err) else None) from None
        except ImportError as err:
            raise UsageError(str(err)) from None
        return
    if is_remote(path):
        return
    import glob

    local = os.path.expanduser(path)
    found = any(os.path.isfile(p) for p in glob.iglob(local, recursive=True)) if glob.has_magic(local) else (
        os.path.exists(local))
    if not found:
        raise UsageError(f"{what} not found: {path}", PATH_HINT)


def check_writable_dir(path: str | os.PathLike, what: str = "output") -> None:
    """Raise :class:`UsageError` if files cannot be created in folder ``path`` (or its nearest existing parent,
    which is where the folder would be made). Cheap: nothing is created."""
    folder = Path(os.path.expanduser(str(path))).absolute()
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise UsageError(f"cannot write the {what} under {folder}: {probe} is a file, not a folder",
                         "choose another output path")
    if not os.access(probe, os.W_OK | os.X_OK):
        reason = "the file system is read-only" if _read_only(probe) else "permission denied"
        raise UsageError(f"cannot write the {what} under {folder}: {reason}",
                         "choose an output path on a writable disk")


def _read_only(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        return False


def _print(*lines: str) -> None:
    sys.stdout.flush()
    for line in lines:
        print(line, file=sys.stderr)
    sys.stderr.flush()


def guarded(work: Callable[[], int], *, debug: bool = False,
            on_interrupt: Callable[[], str] | None = None) -> int:
    """Run ``work()`` and turn exceptions into the messages and exit statuses of the module docstring.

    ``on_interrupt`` returns the line printed after a Ctrl-C (what was kept, how to resume).
    """
    from ..registry import UnknownModelError

    if debug_enabled(debug):
        try:
            with catch_interrupts():
                return int(work() or 0)
        except KeyboardInterrupt:
            _print("interrupted", *([on_interrupt()] if on_interrupt else []))
            raise
    try:
        with catch_interrupts():  # a Ctrl-C that lands in a __del__ is honoured at the next sample
            return int(work() or 0)
    except KeyboardInterrupt:
        _print("interrupted (Ctrl-C)" + (f": {on_interrupt()}" if on_interrupt else ""))
        return EXIT_INTERRUPTED
    except UsageError as err:
        _print(f"error: {err.message}", *([f"hint: {err.hint}"] if err.hint else []))
        return EXIT_USAGE
    except DeviceUnavailableError as err:  # --device cuda without CUDA, in every command (devices.py raises it)
        _print(f"error: {err}", f"hint: {err.hint}")
        return EXIT_USAGE
    except UnknownModelError as err:
        _print(f"error: {err}")
        return EXIT_USAGE
    except OSError as err:
        if err.errno in _PATH_ERRNOS or isinstance(err, FileNotFoundError):
            _print(f"error: {describe_os_error(err)}",
                   "hint: check the input paths, or choose an output path on a writable disk with free space")
            return EXIT_USAGE
        _print(f"error: {type(err).__name__}: {describe_os_error(err)}", f"hint: {DEBUG_HINT}")
        return EXIT_ERROR
    except ImportError as err:
        _print(f"error: {err}", 'hint: pip install "nemo-cosmos-tokenizer[all]" installs every optional part')
        return EXIT_ERROR
    except Exception as err:  # noqa: BLE001  (the last line of defence: no traceback for users)
        text = str(err).strip().splitlines()
        _print(f"error: {type(err).__name__}: {text[-1] if text else 'no message'}", f"hint: {DEBUG_HINT}")
        return EXIT_ERROR
