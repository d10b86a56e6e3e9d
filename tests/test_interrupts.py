"""A SIGINT that lands in a ``__del__`` (where Python would swallow the KeyboardInterrupt) is honoured at the next
safe point, without a traceback."""

from __future__ import annotations

import gc
import os
import signal
import sys
import threading
import time

import pytest

from nemo_cosmos_tokenizer.interrupts import catch_interrupts, interrupt_requested, raise_if_interrupted

# Signal handlers live in the main thread (pytest-xdist >= 3.5 runs tests there); elsewhere the SIGINTs these tests
# send would meet Python's default handler, not the one under test.
pytestmark = pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                                reason="signal handlers can only be installed in the main thread")


class _InterruptedInDel:
    """Sends SIGINT to this process from its ``__del__`` and waits there until the handler has run (what happened
    with decord's VideoReader during a build). A KeyboardInterrupt raised there would not propagate: Python hands it
    to ``sys.unraisablehook`` ("Exception ignored") and goes on."""

    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        deadline = time.monotonic() + 5
        while not interrupt_requested() and time.monotonic() < deadline:
            pass  # Python runs signal handlers between bytecodes: during one of these iterations


def test_an_interrupt_inside_a_del_is_raised_at_the_next_check(monkeypatch):
    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    with catch_interrupts():
        obj = _InterruptedInDel()
        del obj  # __del__ runs here; the SIGINT arrives inside it
        gc.collect()
        assert interrupt_requested()
        assert unraisable == []  # nothing raised inside __del__: no "Exception ignored" traceback for the user
        with pytest.raises(KeyboardInterrupt):
            raise_if_interrupted()
        assert not interrupt_requested()  # one SIGINT, one KeyboardInterrupt
        raise_if_interrupted()  # nothing pending: no exception


def test_the_previous_handler_is_restored_and_nothing_is_recorded_outside():
    before = signal.getsignal(signal.SIGINT)
    with catch_interrupts():
        assert signal.getsignal(signal.SIGINT) is not before
    assert signal.getsignal(signal.SIGINT) is before
    raise_if_interrupted()  # outside catch_interrupts it never raises


def test_a_direct_interrupt_still_raises_at_once():
    with catch_interrupts(), pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(10_000_000):  # the handler runs within a few bytecodes
            pass
