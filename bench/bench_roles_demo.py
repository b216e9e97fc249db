"""Wall time of ``cipherfuse demo`` (a script, not a timed test).

    python bench/bench_roles_demo.py            # the default demo
    python bench/bench_roles_demo.py --quick    # the CI-sized demo
    python bench/bench_roles_demo.py --compilation-cache 2 [demo options]

``--compilation-cache ROUNDS`` runs, in each round and in this order, the demo with
the persistent compilation cache off (``CIPHERFUSE_JAX_CACHE_DIR=off``, the
baseline), with a fresh empty cache folder (a first run) and again with that
folder (a second run), and prints the per-round ratios first/off and second/off
(median and range) and the number of cached executables.

Runs the installed ``cipherfuse`` in a subprocess (fresh interpreter: imports and JIT
compilation included), prints the wall and CPU time and checks the JSON report: every
honest model released and the contract left empty.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_demo(argv: list[str], env: dict[str, str] | None = None) -> float:
    """Wall seconds of one ``cipherfuse demo`` (report checked: contract left empty)."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        cmd = ["cipherfuse", "demo", "--report", str(report), *argv]
        started = time.perf_counter()
        proc = subprocess.run(
            cmd, check=False, capture_output=True, text=True, env={**os.environ, **(env or {})}
        )
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            raise RuntimeError(proc.stdout[-2000:] + proc.stderr[-2000:])
        body = json.loads(report.read_text())
        assert body["contract_balance_wei"] == 0, body["contract_balance_wei"]
    return wall


def compilation_cache_rounds(rounds: int, argv: list[str]) -> int:
    """Interleaved demo runs without cache, with a fresh cache and with a warm cache."""
    walls: dict[str, list[float]] = {"off": [], "first": [], "second": []}
    entries = 0
    for _ in range(rounds):
        folder = Path(tempfile.mkdtemp(prefix="cipherfuse-jax-cache-"))
        try:
            walls["off"].append(run_demo(argv, {"CIPHERFUSE_JAX_CACHE_DIR": "off"}))
            walls["first"].append(run_demo(argv, {"CIPHERFUSE_JAX_CACHE_DIR": str(folder)}))
            entries = sum(1 for p in folder.rglob("*-cache"))
            walls["second"].append(run_demo(argv, {"CIPHERFUSE_JAX_CACHE_DIR": str(folder)}))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    print(f"command: cipherfuse demo {' '.join(argv)}; {entries} cached executables")
    for name, times in walls.items():
        ratios = [t / b for t, b in zip(times, walls["off"], strict=True)]
        print(
            f"{name:6} wall {', '.join(f'{t:.1f}' for t in times)} s; per-round ratio to off "
            f"x{statistics.median(ratios):.3f} (range {min(ratios):.3f}-{max(ratios):.3f})"
        )
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["--compilation-cache"]:
        return compilation_cache_rounds(int(argv[1]), argv[2:])
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        cmd = ["cipherfuse", "demo", "--report", str(report), *argv]
        started = time.perf_counter()
        proc = subprocess.run(cmd, check=False, capture_output=True, text=True)
        wall = time.perf_counter() - started
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            print(proc.stdout[-2000:], proc.stderr[-2000:])
            return proc.returncode
        body = json.loads(report.read_text())
        outcomes = [c.get("outcome") for c in body["claims"]]
        assert body["contract_balance_wei"] == 0, body["contract_balance_wei"]
        print(f"command: {' '.join(cmd[:2] + argv)}")
        print(f"wall {wall:.1f} s, CPU {usage.ru_utime + usage.ru_stime:.1f} s (children)")
        print(f"outcomes {outcomes}, MetaModel accuracy {body['final_accuracy']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
