"""Ctrl-C that always stops: a SIGINT handler with a hard-exit deadline.

Python delivers Ctrl-C as :class:`KeyboardInterrupt` in the main thread, which normally
unwinds the stack and runs every ``finally``/``with`` clean-up. Two things can defeat
that in a JAX program: the exception can be raised inside a garbage-collection callback,
where Python prints "Exception ignored" and carries on, and interpreter teardown after
an interrupted XLA computation can crash. :func:`interrupt_handling` therefore never
raises inside a garbage-collection callback or a ``__del__`` method (it delivers the
signal again a moment later, outside it), raises ``KeyboardInterrupt`` once and starts a
watchdog; if the process has not finished its
clean-up within :data:`GRACE_SECONDS`, the watchdog runs the registered hard-exit
clean-ups (:func:`on_hard_exit`: kill child processes, remove temporary folders) and
ends the process with status 130. State files stay consistent either way because they
are only ever replaced atomically.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

#: Exit status of a command stopped by Ctrl-C (128 + SIGINT, as a shell reports it).
INTERRUPT_EXIT_STATUS = 128 + signal.SIGINT
#: Seconds the normal clean-up may take after Ctrl-C before the watchdog ends the process.
GRACE_SECONDS = 1.5

_cleanups: list[Callable[[], None]] = []
_lock = threading.Lock()


class InterruptState:
    """Whether Ctrl-C was pressed; :meth:`finish` tells the watchdog clean-up is done."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.finished = threading.Event()

    def finish(self) -> None:
        """The interrupted command has unwound; the watchdog must not exit the process."""
        self.finished.set()


def run_hard_exit_cleanups() -> None:
    """Run every registered clean-up once, newest first, ignoring their errors."""
    with _lock:
        pending = list(reversed(_cleanups))
        _cleanups.clear()
    for fn in pending:
        with contextlib.suppress(Exception):  # best effort on the way out
            fn()


@contextmanager
def on_hard_exit(fn: Callable[[], None]) -> Iterator[None]:
    """While active, ``fn`` runs if the watchdog has to end the process after Ctrl-C."""
    with _lock:
        _cleanups.append(fn)
    try:
        yield
    finally:
        with _lock:
            if fn in _cleanups:
                _cleanups.remove(fn)


def _watchdog(state: InterruptState, grace: float) -> None:
    if state.finished.wait(grace):
        return
    run_hard_exit_cleanups()
    try:
        sys.stderr.write("interrupted\n")
        sys.stderr.flush()
        sys.stdout.flush()
    finally:
        os._exit(INTERRUPT_EXIT_STATUS)


#: Seconds after which a SIGINT that arrived inside a GC callback is delivered again.
REDELIVER_SECONDS = 0.05
_MAX_FRAMES = 64


def _in_swallowing_context(frame: FrameType | None) -> bool:
    """Whether ``frame`` runs inside a GC callback or a ``__del__`` method, where Python
    would print an exception raised by the handler ("Exception ignored") and carry on."""
    callbacks = {getattr(cb, "__code__", None) for cb in gc.callbacks}
    for _ in range(_MAX_FRAMES):
        if frame is None:
            return False
        if frame.f_code in callbacks or frame.f_code.co_name == "__del__":
            return True
        frame = frame.f_back
    return False


def _redeliver() -> None:
    os.kill(os.getpid(), signal.SIGINT)


@contextmanager
def interrupt_handling(grace: float = GRACE_SECONDS) -> Iterator[InterruptState]:
    """Install the Ctrl-C handler for the duration of a command (main thread only).

    The first SIGINT raises :class:`KeyboardInterrupt` and starts the watchdog; later
    ones are ignored while the clean-up runs. The previous handler is restored on exit.
    """
    state = InterruptState()
    if threading.current_thread() is not threading.main_thread():
        yield state
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if _in_swallowing_context(frame):
            timer = threading.Timer(REDELIVER_SECONDS, _redeliver)
            timer.daemon = True
            timer.start()
            return
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        state.requested.set()
        threading.Thread(target=_watchdog, args=(state, grace), daemon=True).start()
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield state
    finally:
        state.finish()
        signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)
