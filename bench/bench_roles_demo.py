"""Wall time of ``cipherfuse demo`` (a script, not a timed test).

    python bench/bench_roles_demo.py            # the default demo
    python bench/bench_roles_demo.py --quick    # the CI-sized demo

Runs the installed ``cipherfuse`` in a subprocess (fresh interpreter: imports and JIT
compilation included), prints the wall and CPU time and checks the JSON report: every
honest model released and the contract left empty.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str]) -> int:
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
