"""Work folders of role processes: resumed on a chain that persists, refused otherwise.

Real anvil nodes and real ``cipherfuse initiator`` processes; skipped without anvil
locally (CI provides it)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cipherfuse.chain import AnvilNode, NodeError, TasksContract, find_anvil, http_chain
from cipherfuse.roles.errors import StaleWorkdirError
from cipherfuse.roles.process import CHAIN_MARKER, check_workdir_chain, status_path

REPO = Path(__file__).resolve().parents[2]
HANG_GUARD = 300  # seconds: only so that a broken build cannot hang CI


@pytest.fixture(scope="module")
def anvil_binary() -> Path:
    try:
        return find_anvil(REPO)
    except NodeError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI must provide anvil: {exc}")
        pytest.skip(str(exc))


@pytest.fixture
def deployment(anvil_binary: Path) -> Iterator[tuple[AnvilNode, TasksContract]]:
    with AnvilNode(accounts=1, binary=anvil_binary) as node:
        chain = http_chain(node.url, kind="anvil", dev_accounts=10)
        tasks, _ = TasksContract.deploy(chain, chain.accounts[0])
        yield node, tasks


def _initiator(node: AnvilNode, tasks: TasksContract, workdir: Path) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "cipherfuse", "initiator", "--rpc-url", node.url]
    argv += ["--contract", str(tasks.address), "--account", "1", "--workdir", str(workdir)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )


def _wait_for_task(workdir: Path, proc: subprocess.Popen[str]) -> int:
    deadline = time.monotonic() + HANG_GUARD
    path = status_path(workdir, "initiator", 1)
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[0]
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            body = {}
        if body.get("task_id") and body.get("idle"):
            return int(body["task_id"])
        time.sleep(0.3)
    raise AssertionError("the initiator did not publish its task")


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=HANG_GUARD)
    assert proc.returncode == 143, out
    return out


def test_a_role_resumes_its_folder_on_a_chain_that_persists(
    deployment: tuple[AnvilNode, TasksContract], tmp_path: Path
) -> None:
    node, tasks = deployment
    first = _initiator(node, tasks, tmp_path)
    task_id = _wait_for_task(tmp_path, first)
    time.sleep(1.0)  # one idle poll: it says what it waits for
    out = _stop(first)
    assert "waiting for the task to expire at" in out
    assert "UTC (in " in out
    status_path(tmp_path, "initiator", 1).unlink()
    again = _initiator(node, tasks, tmp_path)
    assert _wait_for_task(tmp_path, again) == task_id  # resumed, not published anew
    out = _stop(again)
    assert "Traceback" not in out
    assert tasks.task_count() == 1
    marker = json.loads((tmp_path / CHAIN_MARKER).read_text(encoding="utf-8"))
    assert marker["contract"] == tasks.address


def test_a_folder_of_another_chain_is_refused_in_one_line(
    deployment: tuple[AnvilNode, TasksContract], anvil_binary: Path, tmp_path: Path
) -> None:
    _, tasks = deployment
    check_workdir_chain(tmp_path, tasks)  # claims the folder for this chain
    with AnvilNode(accounts=1, binary=anvil_binary) as restarted:
        chain = http_chain(restarted.url, kind="anvil", dev_accounts=10)
        # A restart within the same second would replay identical blocks (same genesis,
        # keys and timestamps); one extra block gives the new chain its own history.
        chain._rpc("evm_mine", [])
        other, _ = TasksContract.deploy(chain, chain.accounts[0])
        assert other.address == tasks.address  # same deployer nonce: same address
        with pytest.raises(StaleWorkdirError, match="new --workdir"):
            check_workdir_chain(tmp_path, other)
        proc = _initiator(restarted, other, tmp_path)
        out, _ = proc.communicate(timeout=HANG_GUARD)
    assert proc.returncode == 2
    assert out.startswith("error: ") and out.count("\n") == 1, out
    assert "another chain or deployment" in out


def test_a_contract_address_without_code_is_refused(
    deployment: tuple[AnvilNode, TasksContract], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cipherfuse.cli.main import main

    node, _ = deployment
    argv = ["initiator", "--rpc-url", node.url, "--contract", "0x" + "12" * 20]
    assert main([*argv, "--account", "1", "--workdir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert "not the packaged CipherfuseTasks" in err
    assert not (tmp_path / CHAIN_MARKER).exists()


def test_an_unfunded_development_key_is_one_line(
    deployment: tuple[AnvilNode, TasksContract], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cipherfuse.cli.main import main

    node, tasks = deployment
    argv = ["initiator", "--rpc-url", node.url, "--contract", str(tasks.address)]
    assert main([*argv, "--account", "50", "--workdir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    # Development key 50 exists (keys are derived, not node-managed) but holds no ETH.
    assert err.startswith("error: 0x") and err.count("\n") == 1, err
    assert "has 0 wei but publishTask needs" in err and err.endswith("fund the account\n"), err
