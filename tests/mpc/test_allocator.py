"""retain_freed_memory: freed temporaries stay in the heap (glibc), checked with mallinfo2.

Each case runs in a fresh interpreter, so the test process's allocator is left as it
is and the mmap threshold starts at glibc's default.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cipherfuse.mpc.allocator import retain_freed_memory

# Allocates and frees an 8 MiB array three times and reports how many of those
# allocations glibc served with a fresh mmap (mallinfo2's ``hblks`` while it is alive).
_PROBE = """
import ctypes, json, sys
import numpy as np
from cipherfuse.mpc.allocator import retain_freed_memory

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
        "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
applied = retain_freed_memory() if sys.argv[1] == "retain" else None
mapped = []
for _ in range(3):
    before = libc.mallinfo2().hblks
    block = np.ones(1 << 20, dtype=np.uint64)  # 8 MiB, written so the pages are real
    mapped.append(libc.mallinfo2().hblks - before)
    del block
print(json.dumps({"applied": applied, "mapped": mapped}))
"""


def _probe(mode: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, mode], check=True, capture_output=True, text=True
    )
    result: dict[str, object] = json.loads(out.stdout)
    return result


def _has_mallinfo2() -> bool:
    import ctypes

    return hasattr(ctypes.CDLL(None), "mallinfo2")


@pytest.mark.skipif(not sys.platform.startswith("linux") or not _has_mallinfo2(), reason="glibc")
def test_freed_blocks_stay_in_the_heap() -> None:
    default = _probe("default")
    retained = _probe("retain")
    # glibc's default: the first 8 MiB block is a fresh mapping (later ones reuse the
    # heap only because freeing a mapped block raises the threshold dynamically)
    assert default["mapped"][0] == 1  # type: ignore[index]
    # with the thresholds raised, no allocation is a fresh mapping
    assert retained == {"applied": True, "mapped": [0, 0, 0]}


def test_retain_is_idempotent() -> None:
    first = retain_freed_memory()
    assert retain_freed_memory() is first
