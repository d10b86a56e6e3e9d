"""Ctrl-C that is not lost.

Python turns SIGINT into ``KeyboardInterrupt`` wherever the main thread happens to be. When that is inside a
``__del__`` (decord's ``VideoReader`` frees its native handle there), the exception cannot propagate: Python prints
"Exception ignored in ..." with a traceback and the program carries on, so a build the user stopped would run to
its end (it happened in CI). :func:`catch_interrupts` installs a SIGINT handler that records every request and
raises ``KeyboardInterrupt`` at once, as Python's own does, except inside a ``__del__``, where it only records it;
long loops call :func:`raise_if_interrupted` at safe points (between samples, between documents), which raises a
recorded request. Weakref and garbage-collector callbacks swallow exceptions too; the record covers them as well
(they then print Python's "Exception ignored" lines, but the program still stops).

Library code only calls :func:`raise_if_interrupted`; without :func:`catch_interrupts` around it (a user's own
program with its own handler) it does nothing.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator

__all__ = ["catch_interrupts", "interrupt_requested", "raise_if_interrupted"]

_requested = threading.Event()


def _on_sigint(signum, frame) -> None:
    _requested.set()
    if _inside_finalizer(frame):
        return  # raised there it would be swallowed, with a traceback on stderr; raise_if_interrupted() raises it
    raise KeyboardInterrupt


def _inside_finalizer(frame, most: int = 200) -> bool:
    """Whether ``frame`` or one of its callers is a ``__del__`` (where an exception does not propagate)."""
    while frame is not None and most > 0:
        if frame.f_code.co_name == "__del__":
            return True
        frame, most = frame.f_back, most - 1
    return False


@contextmanager
def catch_interrupts() -> Iterator[None]:
    """Record every SIGINT while the block runs (and raise ``KeyboardInterrupt`` as Python's default handler does);
    the previous handler is restored afterwards. Outside the main thread (where handlers cannot be installed) the
    block runs unchanged."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _requested.clear()
    previous = signal.signal(signal.SIGINT, _on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _requested.clear()


def interrupt_requested() -> bool:
    """Whether a SIGINT arrived inside :func:`catch_interrupts` and has not been raised by
    :func:`raise_if_interrupted` yet."""
    return _requested.is_set()


def raise_if_interrupted() -> None:
    """Raise ``KeyboardInterrupt`` if a SIGINT was recorded (once per SIGINT: the record is cleared)."""
    if _requested.is_set():
        _requested.clear()
        raise KeyboardInterrupt
