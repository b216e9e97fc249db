"""Wall time of ``cipherfuse demo`` (a script, not a timed test).

    python bench/bench_roles_demo.py            # the default demo
    python bench/bench_roles_demo.py --quick    # the CI-sized demo
    python bench/bench_roles_demo.py --compilation-cache 2 [--against CIPHERFUSE] [demo options]

``--compilation-cache ROUNDS`` runs, in each round and in this order, the demo with
the persistent compilation cache off (``CIPHERFUSE_JAX_CACHE_DIR=off``, the
baseline), with a fresh empty cache folder (a first run) and again with that
folder (a second run), and prints the per-round ratios first/off and second/off
(median and range), the CPU time, the number of XLA compilations
(``JAX_LOG_COMPILES``) and the number of cached executables.
``--against CIPHERFUSE`` (before the demo options) also runs another installation's
``cipherfuse`` executable, e.g. the main branch's, in the same rounds (its cache off,
first and second run, each next to this installation's run), so that the ratios
compare the two under the same load. The demo's figures in docs/models.md compare
with commit a68c031, the implementation before the compilation cache (158 XLA
compilations per run; it has no cache, so its three runs per round are alike), on the
workload that was its default: cipherspace judging with the paper's parameters
(``--params paper`` today; today's default, three-party judging, came later).

Runs the installed ``cipherfuse`` in a subprocess (fresh interpreter: imports and JIT
compilation included), prints the wall and CPU time and checks the JSON report: every
honest model released and the contract left empty.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_demo(
    argv: list[str], env: dict[str, str] | None = None, executable: str = "cipherfuse"
) -> float:
    """Wall seconds of one ``cipherfuse demo`` (report checked: contract left empty)."""
    return run_demo_counted(argv, env, executable)["wall"]


def run_demo_counted(
    argv: list[str], env: dict[str, str] | None = None, executable: str = "cipherfuse"
) -> dict[str, float]:
    """Wall and CPU seconds, XLA compilations and their seconds, of one ``cipherfuse demo``."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        # Run in the temporary folder, where the MetaModel file goes too (no option
        # needed, so that older installations can be compared with --against).
        cmd = [executable, "demo", "--report", str(report), *argv]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        proc = subprocess.run(
            cmd,
            check=False,
            capture_output=True,
            text=True,
            cwd=tmp,
            env={**os.environ, "JAX_LOG_COMPILES": "1", **(env or {})},
        )
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            raise RuntimeError(proc.stdout[-2000:] + proc.stderr[-2000:])
        body = json.loads(report.read_text())
        assert body["contract_balance_wei"] == 0, body["contract_balance_wei"]
    compiles = [float(t) for t in _COMPILED.findall(proc.stderr)]
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {
        "wall": wall,
        "cpu": cpu,
        "compiles": len(compiles),
        "compile_s": sum(compiles),
        "accuracy": float(body["final_accuracy"]),
    }


_COMPILED = re.compile(r"Finished XLA compilation of \S+ in ([0-9.eE+-]+) sec")


def compilation_cache_rounds(rounds: int, argv: list[str], against: str | None = None) -> int:
    """Interleaved demo runs without cache, with a fresh cache and with a warm cache."""
    installs = {"": "cipherfuse"} if against is None else {"": "cipherfuse", "other ": against}
    runs: dict[str, list[dict[str, float]]] = {}
    entries = 0
    for _ in range(rounds):
        folders = {tag: Path(tempfile.mkdtemp(prefix="cipherfuse-jax-cache-")) for tag in installs}
        try:
            for mode in ("off", "first", "second"):
                for tag, executable in installs.items():
                    cache = "off" if mode == "off" else str(folders[tag])
                    result = run_demo_counted(argv, {"CIPHERFUSE_JAX_CACHE_DIR": cache}, executable)
                    runs.setdefault(tag + mode, []).append(result)
            entries = sum(1 for p in folders[""].rglob("*-cache"))
        finally:
            for folder in folders.values():
                shutil.rmtree(folder, ignore_errors=True)
    print(f"command: cipherfuse demo {' '.join(argv)}; {entries} cached executables")
    if against is not None:
        print(f"other: {against}")
    base = runs["other off" if against is not None else "off"]
    for name, results in runs.items():
        walls = [r["wall"] for r in results]
        cpus = [r["cpu"] for r in results]
        ratios = [r["wall"] / b["wall"] for r, b in zip(results, base, strict=True)]
        print(
            f"{name:12} wall {', '.join(f'{t:.1f}' for t in walls)} s, CPU "
            f"{', '.join(f'{t:.1f}' for t in cpus)} s, "
            f"{results[-1]['compiles']:.0f} compilations ({results[-1]['compile_s']:.1f} s), "
            f"accuracy {results[-1]['accuracy']}; per-round wall ratio to "
            f"{'other off' if against is not None else 'off'} x{statistics.median(ratios):.3f} "
            f"(range {min(ratios):.3f}-{max(ratios):.3f})"
        )
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["--compilation-cache"]:
        rest = argv[2:]
        against = None
        if rest[:1] == ["--against"]:
            against, rest = rest[1], rest[2:]
        return compilation_cache_rounds(int(argv[1]), rest, against)
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
