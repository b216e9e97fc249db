"""Keep freed memory in the process heap while a member judges (glibc ``mallopt``).

A member evaluates its batches with numpy temporaries of 0.1-3 MB (bit planes, masks,
shares of one layer). glibc serves every allocation above its mmap threshold (128 KiB
at start, raised only as such blocks are freed) with a fresh ``mmap`` and returns it
with ``munmap`` when freed, so each temporary is mapped and page-faulted anew: for the
Case I CNN on 1,000 images that is about 1.1 s of system time per member out of 4.4 s
of CPU (measured with three member processes, `bench/bench_mpc.py`).

:func:`retain_freed_memory` raises the mmap threshold to glibc's largest allowed value
(32 MiB on 64-bit systems) and the trim threshold to 1 GiB, so freed temporaries stay
in the heap and are reused without page faults. It is process-wide and lasting: the
heap keeps up to its peak size (plus up to 1 GiB of free memory at its top) until the
process ends, which suits a process that judges. On a C library without ``mallopt``
(musl, macOS) it does nothing and returns ``False``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from collections.abc import Callable

#: glibc's ``M_TRIM_THRESHOLD`` and ``M_MMAP_THRESHOLD`` parameters of ``mallopt``.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: The largest mmap threshold glibc accepts on 64-bit systems (``HEAP_MAX_SIZE / 2``).
MMAP_THRESHOLD_BYTES = 32 * 2**20
#: Free memory the heap keeps at its top before it is given back to the system.
TRIM_THRESHOLD_BYTES = 2**30

_lock = threading.Lock()
_applied: bool | None = None


def _mallopt() -> Callable[[int, int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else ctypes.CDLL(None)
    except OSError:
        return None
    function = getattr(libc, "mallopt", None)
    if function is None:
        return None
    function.argtypes = (ctypes.c_int, ctypes.c_int)
    function.restype = ctypes.c_int
    return function  # type: ignore[no-any-return]


def retain_freed_memory() -> bool:
    """Make glibc keep freed blocks of up to 32 MiB in the heap (module docstring).

    Idempotent and thread-safe. Returns ``True`` when both thresholds were set (now or
    by an earlier call), ``False`` where the C library has no ``mallopt`` or refused.
    """
    global _applied
    with _lock:
        if _applied is None:
            mallopt = _mallopt()
            _applied = bool(
                mallopt is not None
                and mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
                and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1
            )
        return _applied


__all__ = ["MMAP_THRESHOLD_BYTES", "TRIM_THRESHOLD_BYTES", "retain_freed_memory"]
