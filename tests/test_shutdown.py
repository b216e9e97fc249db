"""Ctrl-C inside a garbage-collection callback still stops the command, without a traceback.

Each case runs in a fresh interpreter (its own SIGINT handling), which sends itself
SIGINT from inside a ``gc.callbacks`` function, as JAX's ``_xla_gc_callback`` can be
running when Ctrl-C arrives.
"""

from __future__ import annotations

import json
import subprocess
import sys

_PROBE = """
import gc, json, os, signal, sys, time
from cipherfuse.shutdown import interrupt_handling

unraisable = []
sys.unraisablehook = lambda info: unraisable.append(repr(info.exc_value))
fired = []

def callback(phase, info):
    if phase == "start" and not fired:
        fired.append(1)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)  # the Python-level handler runs here, inside the callback

where = None
with interrupt_handling(grace=30.0) as state:
    gc.callbacks.append(callback)
    try:
        gc.collect()
        where = "after collect"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            time.sleep(0.01)
        where = "never interrupted"
    except KeyboardInterrupt:
        where = where or "inside collect"
    finally:
        gc.callbacks.remove(callback)
print(json.dumps({"where": where, "requested": state.requested.is_set(),
                  "unraisable": unraisable, "fired": len(fired)}))
"""


def test_sigint_inside_a_gc_callback_is_delivered_after_it() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], check=True, capture_output=True, text=True, timeout=60
    )
    report = json.loads(out.stdout)
    assert report == {
        "where": "after collect",
        "requested": True,
        "unraisable": [],
        "fired": 1,
    }, out.stderr
    assert "Traceback" not in out.stderr and "Exception ignored" not in out.stderr
