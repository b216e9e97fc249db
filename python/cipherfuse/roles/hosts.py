"""The testbed's roles as separate hosts: a Linux network namespace and a user per role.

:class:`TestbedNetwork` builds, for one testbed run, a hub namespace holding a Linux
bridge, one namespace per role with a veth pair into that bridge (the role's side is
``eth0`` with an address of a private /24), and one veth pair from the host's own
namespace into the bridge with the subnet's ``.1`` address: the address anvil listens
on. A role's namespace has its own loopback and its own port space and no route beyond
the /24, so the role reaches the chain only through that JSON-RPC address and the other
roles only through their addresses on the bridge (their IPFS nodes, their committee
endpoints).

:func:`role_command` additionally runs a role as its own user id (``setpriv``: no
supplementary groups, no new privileges), so with its work folder owned by that user and
mode 0700 it cannot read another role's folder.

Everything carries a tag unique to the run (``cf`` + 4 hex digits), so parallel runs do
not collide, and :meth:`TestbedNetwork.close` removes it again (on exit, on error and on
Ctrl-C; the testbed also registers it as a hard-exit clean-up). Needs Linux, root and
the ``ip`` command (iproute2); users also need ``setpriv`` (util-linux).
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from cipherfuse import netns
from cipherfuse.files import atomic_write_bytes
from cipherfuse.roles.errors import RolesError
from cipherfuse.validation import is_strict_int

#: The user ids of the testbed's roles are drawn from this range (no system user has one).
ROLE_UID_RANGE = (200_000, 2_000_000_000)
#: The file in the testbed folder that keeps its roles' user ids for a resumed run.
USERS_FILE = "role-users.json"


class HostIsolationError(RolesError):
    """The namespaces or users of the testbed could not be created or removed."""


def namespaces_unavailable_reason() -> str | None:
    """Why this process cannot create network namespaces (``None`` when it can)."""
    return netns.namespaces_unavailable_reason(("ip",))


def users_unavailable_reason(workdir: Path) -> str | None:
    """Why the roles cannot run as users of their own under ``workdir`` (``None``: they can).

    A role's user must be able to reach its folder: every folder above ``workdir`` must be
    searchable by others (mode o+x).
    """
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        return "running each role as its own user needs root"
    if shutil.which("setpriv") is None:
        return "the 'setpriv' command (util-linux) is not installed"
    for folder in Path(workdir).resolve().parents:
        if not folder.stat().st_mode & 0o001:
            return f"{folder} is not searchable by other users (chmod o+x, or another --workdir)"
    # The interpreter and the package must be usable by another user.
    uid = ROLE_UID_RANGE[0] - 1
    probe = [sys.executable, "-c", "import cipherfuse.cli.main"]
    proc = subprocess.run(
        role_command(uid, probe), capture_output=True, text=True, timeout=120, check=False
    )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return f"another user cannot run {sys.executable} with cipherfuse ({last})"
    return None


def _run(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return netns.run_command(args, HostIsolationError)


def _networks_in_use() -> list[ipaddress.IPv4Network]:
    """IPv4 networks of this host's addresses and routes (all tables)."""
    used = []
    for args in (["ip", "-4", "-o", "addr", "show"], ["ip", "-4", "route", "show", "table", "all"]):
        proc = subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)
        for word in proc.stdout.split():
            try:
                used.append(ipaddress.IPv4Network(word, strict=False))
            except ValueError:
                continue
    return used


def free_subnet(used: Sequence[ipaddress.IPv4Network], draw: int | None = None) -> str:
    """A 10.x.y.0/24 overlapping none of ``used`` (``draw``: the first candidate tried)."""
    start = secrets.randbelow(155 * 256) if draw is None else draw
    for i in range(155 * 256):
        k = (start + i) % (155 * 256)
        net = ipaddress.IPv4Network(f"10.{100 + k // 256}.{k % 256}.0/24")
        if not any(net.overlaps(u) for u in used if u.prefixlen > 0):
            return str(net)
    raise HostIsolationError("no free 10.x.y.0/24 subnet for the testbed")


class TestbedNetwork(netns.BuiltOrRemoved):
    """One bridge, one network namespace per role, the host on the bridge (a context
    manager; everything is removed on exit).

    Args:
        names: one name per role host (``initiator``, ``contributor-1``, ...).
        tag: the run's unique prefix of namespace and interface names (default random).
        subnet: the /24 to use (default: a free 10.x.y.0/24).
    """

    __test__ = False  # not a pytest test class

    def __init__(
        self, names: Sequence[str], *, tag: str | None = None, subnet: str | None = None
    ) -> None:
        if not names or len(set(names)) != len(names) or len(names) > 200:
            raise HostIsolationError("need 1..200 distinct role host names")
        self.names = list(names)
        self.tag = tag or "cf" + secrets.token_hex(2)
        if len(self.tag) > 10 or not self.tag.isalnum():
            raise HostIsolationError(f"tag must be 1..10 letters or digits, got {self.tag!r}")
        self.subnet = subnet
        self._namespaces = netns.NamespaceSet(HostIsolationError)
        self._host_link = False
        self._addresses: dict[str, str] = {}

    @property
    def hub(self) -> str:
        """The namespace holding the bridge."""
        return f"{self.tag}-hub"

    @property
    def host_link(self) -> str:
        """The host-side interface on the bridge (it carries :attr:`host_address`)."""
        return f"{self.tag}h"

    def namespace(self, name: str) -> str:
        """The network namespace of role host ``name``."""
        if name not in self.names:
            raise HostIsolationError(f"no role host {name!r}")
        return f"{self.tag}-{name}"

    def address(self, name: str) -> str:
        """The IPv4 address of role host ``name`` on the bridge."""
        return self._addresses[name]

    @property
    def host_address(self) -> str:
        """The host's address on the bridge (where the chain node listens)."""
        assert self.subnet is not None
        return str(ipaddress.IPv4Network(self.subnet).network_address + 1)

    @property
    def created_namespaces(self) -> list[str]:
        """Namespaces created and not removed yet."""
        return self._namespaces.names

    def _build(self) -> None:
        reason = namespaces_unavailable_reason()
        if reason is not None:
            raise HostIsolationError(f"cannot create the testbed's hosts: {reason}")
        if self.subnet is None:
            self.subnet = free_subnet(_networks_in_use())
        net = ipaddress.IPv4Network(self.subnet)
        if net.prefixlen != 24 or len(self.names) > 200:
            raise HostIsolationError(f"subnet must be a /24, got {self.subnet}")
        bridge = "br0"
        self._namespaces.add(self.hub)
        _run(["ip", "-n", self.hub, "link", "add", bridge, "type", "bridge"])
        _run(["ip", "-n", self.hub, "link", "set", bridge, "up"])
        # The host's own link into the bridge: it goes when the hub namespace goes.
        link = self.host_link
        _run(["ip", "link", "add", link, "type", "veth", "peer", "name", "up0", "netns", self.hub])
        self._host_link = True
        _run(["ip", "-n", self.hub, "link", "set", "up0", "master", bridge, "up"])
        _run(["ip", "addr", "add", f"{self.host_address}/24", "dev", link])
        _run(["ip", "link", "set", link, "up"])
        for i, name in enumerate(self.names):
            ns = self.namespace(name)
            self._namespaces.add(ns)
            port = f"r{i}"
            peer = ["peer", "name", "eth0", "netns", ns]
            _run(["ip", "-n", self.hub, "link", "add", port, "type", "veth", *peer])
            _run(["ip", "-n", self.hub, "link", "set", port, "master", bridge, "up"])
            address = str(net.network_address + 10 + i)
            _run(["ip", "-n", ns, "addr", "add", f"{address}/24", "dev", "eth0"])
            _run(["ip", "-n", ns, "link", "set", "eth0", "up"])
            self._addresses[name] = address

    def link_bytes(self) -> dict[str, dict[str, int]]:
        """Bytes each role host has sent (``tx``) and received (``rx``) on its link into
        the bridge (every protocol: JSON-RPC, IPFS, committee channels), and the host's.

        Read on the bridge side: a role's ``tx`` is what its bridge port received.
        """
        proc = _run(["ip", "-n", self.hub, "-j", "-s", "link", "show"])
        ports = {f"r{i}": name for i, name in enumerate(self.names)} | {"up0": "host"}
        found: dict[str, dict[str, int]] = {}
        for link in json.loads(proc.stdout):
            name = ports.get(str(link.get("ifname", "")).split("@")[0])
            stats = link.get("stats64", {})
            if name is not None:
                found[name] = {"tx": int(stats["rx"]["bytes"]), "rx": int(stats["tx"]["bytes"])}
        return found

    def command(self, name: str, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside role host ``name``'s namespace (``ip netns exec`` execs it:
        the process id is the command's own)."""
        return ["ip", "netns", "exec", self.namespace(name), *argv]

    def close(self) -> None:
        """Remove the host's link into the bridge and every namespace created (their
        veths and the bridge go with them once the processes inside have exited)."""
        problems = []
        if self._host_link:
            self._host_link = False
            proc = netns.run_command(
                ["ip", "link", "del", self.host_link], HostIsolationError, check=False
            )
            if proc.returncode != 0 and "Cannot find device" not in proc.stderr:
                problems.append(f"{self.host_link}: {proc.stderr.strip()}")
        problems += self._namespaces.remove_all()
        if problems:
            raise HostIsolationError("could not remove network namespaces: " + "; ".join(problems))


def role_command(uid: int, argv: Sequence[str]) -> list[str]:
    """``argv`` run as user and group ``uid``, with no supplementary groups and no way to
    gain privileges again (``setpriv --no-new-privs``)."""
    return [
        "setpriv",
        f"--reuid={uid}",
        f"--regid={uid}",
        "--clear-groups",
        "--no-new-privs",
        "--",
        *argv,
    ]


def role_uids(workdir: Path, count: int) -> list[int]:
    """``count`` distinct user ids for the testbed's roles, kept in ``workdir`` (a resumed
    run reuses them; a new testbed folder draws new ones, so parallel runs differ)."""
    path = workdir / USERS_FILE
    try:
        uids = json.loads(path.read_text(encoding="utf-8"))
        if (
            isinstance(uids, list)
            and len(uids) == count
            and all(
                is_strict_int(
                    u, minimum=ROLE_UID_RANGE[0], maximum=ROLE_UID_RANGE[1] - 1, exact=True
                )
                for u in uids
            )
            and len(set(uids)) == count
        ):
            return list(uids)
    except (OSError, ValueError):
        pass
    low, high = ROLE_UID_RANGE
    base = low + secrets.randbelow((high - low) // 64) * 64
    uids = [base + i for i in range(count)]
    atomic_write_bytes(path, json.dumps(uids).encode(), mode=0o644)
    return uids


def give_folder(folder: Path, uid: int) -> None:
    """Make ``folder`` and everything in it ``uid``'s, the folder itself mode 0700."""
    os.chown(folder, uid, uid)
    for root, dirs, files in os.walk(folder):
        for entry in (*dirs, *files):
            os.chown(os.path.join(root, entry), uid, uid, follow_symlinks=False)
    folder.chmod(0o700)
