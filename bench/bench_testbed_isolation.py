"""``cipherfuse testbed`` with the roles in network namespaces vs on one loopback (a script,
not a timed test).

    python bench/bench_testbed_isolation.py [--rounds N] [--max-epochs E] [--out FILE]
    python bench/bench_testbed_isolation.py --out bench/testbed_isolation.json  # committed

In each round, in this order, runs the testbed with ``--isolation loopback`` (the
baseline: 7 role processes, own folders and own IPFS nodes, one shared loopback network)
and ``--isolation netns`` (each role in its own network namespace on a bridge, anvil on
the host's bridge address), both with a user per role where root allows it. Each run is a
fresh ``cipherfuse`` process in a fresh testbed folder. Prints per mode the wall time,
the bytes the roles' IPFS nodes fetched from each other (in total and per claim), the
claims' outcomes, and for namespaces the bytes on each role's link (every protocol:
JSON-RPC, IPFS, committee channels). Checks every run: three claims settled, nothing
left in the contract. Needs root and iproute2 for the namespace runs, and anvil.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MODES = ("loopback", "netns")


def run_testbed(mode: str, max_epochs: int) -> dict[str, Any]:
    """One testbed run; its JSON outcome plus ``wall_s``."""
    # The testbed folder itself (the testbed opens it to the roles' users, mode 0711).
    folder = Path(tempfile.mkdtemp(prefix=f"cipherfuse-bench-{mode}-", dir="/tmp"))
    try:
        cmd = [
            sys.executable,
            "-m",
            "cipherfuse.cli.main",
            "testbed",
            "--json",
            "--isolation",
            mode,
            "--max-epochs",
            str(max_epochs),
            "--workdir",
            str(folder),
        ]
        started = time.perf_counter()
        proc = subprocess.run(cmd, check=False, capture_output=True, text=True)
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)}: {proc.stdout[-2000:]}{proc.stderr[-2000:]}")
        outcome: dict[str, Any] = json.loads(proc.stdout)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    assert outcome["contract_balance_wei"] == 0, outcome["contract_balance_wei"]
    claims = [c for c in outcome["claims"] if c.get("claim_id")]
    assert len(claims) == 3 and all(c["outcome"] != "VOTING" for c in claims), claims
    assert outcome["isolation"]["namespaces"] == (mode == "netns"), outcome["isolation"]
    assert outcome["ipfs_fetched_bytes"] > sum(c["model_size"] for c in claims)
    outcome["wall_s"] = wall
    return outcome


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--max-epochs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="Write the figures as JSON.")
    args = parser.parse_args(argv)
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in MODES}
    for _ in range(args.rounds):
        for mode in MODES:
            runs[mode].append(run_testbed(mode, args.max_epochs))
    print(
        f"command: python bench/bench_testbed_isolation.py --rounds {args.rounds} "
        f"--max-epochs {args.max_epochs}"
    )
    summary: dict[str, Any] = {"rounds": args.rounds, "max_epochs": args.max_epochs}
    for mode, outcomes in runs.items():
        walls = [o["wall_s"] for o in outcomes]
        fetched = [o["ipfs_fetched_bytes"] for o in outcomes]
        claims = [len([c for c in o["claims"] if c.get("claim_id")]) for o in outcomes]
        per_claim = [f / c for f, c in zip(fetched, claims, strict=True)]
        entry: dict[str, Any] = {
            "wall_s": walls,
            "ipfs_fetched_bytes": fetched,
            "ipfs_fetched_bytes_per_claim": per_claim,
            "outcomes": [[c.get("outcome") for c in o["claims"]] for o in outcomes],
            "users": outcomes[0]["isolation"]["users"],
        }
        if mode == "netns":
            entry["link_bytes"] = [o["link_bytes"] for o in outcomes]
        summary[mode] = entry
        print(
            f"{mode:8} wall {', '.join(f'{w:.1f}' for w in walls)} s (median "
            f"{statistics.median(walls):.1f}); IPFS fetched {statistics.median(fetched) / 1e6:.2f}"
            f" MB, {statistics.median(per_claim) / 1e6:.2f} MB per claim; outcomes "
            f"{entry['outcomes']}; user per role: {entry['users']}"
        )
    ratios = [
        n["wall_s"] / b["wall_s"] for n, b in zip(runs["netns"], runs["loopback"], strict=True)
    ]
    summary["wall_ratio_netns_to_loopback"] = ratios
    print(f"per-round wall ratio netns/loopback: {', '.join(f'{r:.3f}' for r in ratios)}")
    for name, link in runs["netns"][-1]["link_bytes"].items():
        sent, got = link["tx"] / 1e6, link["rx"] / 1e6
        print(f"  netns link {name:14} sent {sent:8.2f} MB, got {got:8.2f} MB")
    if args.out is not None:
        args.out.write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
