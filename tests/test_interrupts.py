"""A SIGINT that Python swallows (it lands in a ``__del__``) is still honoured at the next safe point."""

from __future__ import annotations

import gc
import os
import signal
import threading
import time

import pytest

from nemo_cosmos_tokenizer.interrupts import catch_interrupts, interrupt_requested, raise_if_interrupted

# Signal handlers live in the main thread (pytest-xdist >= 3.5 runs tests there); elsewhere the SIGINTs these tests
# send would meet Python's default handler, not the one under test.
pytestmark = pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                                reason="signal handlers can only be installed in the main thread")


class _InterruptedInDel:
    """Sends SIGINT to this process from its ``__del__`` and waits there until the handler has run: the
    KeyboardInterrupt is raised inside ``__del__``, where Python prints "Exception ignored" and goes on (what
    happened with decord's VideoReader during a build)."""

    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        deadline = time.monotonic() + 5
        while not interrupt_requested() and time.monotonic() < deadline:
            pass  # Python runs signal handlers between bytecodes: one of these iterations raises


def _swallow_an_interrupt() -> None:
    obj = _InterruptedInDel()
    del obj  # the KeyboardInterrupt raised in __del__ does not reach this frame
    gc.collect()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_an_interrupt_swallowed_in_del_is_raised_at_the_next_check():
    with catch_interrupts():
        _swallow_an_interrupt()  # returns normally: this is the behaviour that lost Ctrl-C
        assert interrupt_requested()
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
