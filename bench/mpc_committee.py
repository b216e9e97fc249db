"""One committee member's side of the three-process benchmark in ``bench/bench_mpc.py``.

Not library code: :func:`judge_member` is the function each of the three OS processes
started by :func:`cipherfuse.mpc.launcher.run_committee` runs over the real committee
channels (Noise KK, AES-256-GCM on loopback). It reads its bundle and the public
images from the files named in its arguments and returns the opened count with its
own wall and CPU seconds (``time.process_time``: every thread of the process, so the
channel's sealing and opening threads are included).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from cipherfuse.mpc.runtime import run_member
from cipherfuse.mpc.transport import Transport


def judge_member(transport: Transport, args: dict[str, Any]) -> dict[str, Any]:
    """Run :func:`run_member` for this process's party; return the count and its costs."""
    bundle = Path(args["bundles"][transport.party]).read_bytes()
    with np.load(args["inputs"]) as data:
        images, labels = data["images"], data["labels"]
    options = dict(args.get("options", {}))
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    result = run_member(bundle, transport, images, labels, sign_bit=args["sign_bit"], **options)
    return {
        "count": result.count,
        "wall_seconds": time.perf_counter() - start_wall,
        "process_cpu_seconds": time.process_time() - start_cpu,
        "party_thread_cpu_seconds": sum(p.cpu_seconds for p in result.cost.phases.values()),
        "bytes_sent": result.cost.bytes_sent,
        "rounds": result.cost.rounds,
    }
