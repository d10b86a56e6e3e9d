"""Ctrl-C that is not lost.

Python turns SIGINT into ``KeyboardInterrupt`` wherever the main thread happens to be. When that is inside a
``__del__`` (decord's ``VideoReader`` frees its native handle there), a weakref callback or a garbage-collector
run, the exception cannot propagate: Python prints "Exception ignored in ..." and the program carries on, so a
build the user stopped would run to its end. :func:`catch_interrupts` installs a SIGINT handler that also records
the request, and long loops call :func:`raise_if_interrupted` at safe points (between samples, between documents),
which raises the interrupt the runtime swallowed.

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
    raise KeyboardInterrupt  # at once where that works; raise_if_interrupted() where the runtime swallows it


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
