"""Event polling: confirmation depth, resumable cursor, idempotent redelivery."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cipherfuse.chain import Chain, ChainEvent, EventPoller, TasksContract
from cipherfuse.chain.events import load_cursor, save_cursor
from cipherfuse.errors import SerializationError

from .helpers import setup_task


def _names(events: list[ChainEvent]) -> list[str]:
    return [e.name for e in events]


def test_confirmation_depth_holds_back_recent_blocks(chain: Chain, tasks: TasksContract) -> None:
    start = chain.block_number()
    s = setup_task(chain, tasks, contributors=1, verifiers=1)
    poller = EventPoller(tasks, start_block=start, confirmations=3)
    early = poller.poll()
    # The last three blocks (two joins + one before) are not confirmed yet.
    assert "ContributorJoined" not in _names(early)
    chain.mine(3)
    late = poller.poll()
    assert "ContributorJoined" in _names(late)
    everything = early + late
    assert _names(everything).count("TaskPublished") == 1
    assert _names(everything).count("VerifierJoined") == 1
    published = next(e for e in everything if e.name == "TaskPublished")
    assert published.args["taskId"] == s.task_id
    assert published.args["objectiveUri"] == "ipfs://objective"
    assert poller.poll() == []  # nothing new: idempotent


def test_cursor_resumes_and_failed_handler_redelivers(
    chain: Chain, tasks: TasksContract, tmp_path: Path
) -> None:
    cursor = tmp_path / "cursor.json"
    start = chain.block_number()
    s = setup_task(chain, tasks, contributors=1, verifiers=1)
    first = EventPoller(tasks, start_block=start, cursor_path=cursor)

    def crash(batch: list[ChainEvent]) -> None:
        raise RuntimeError("consumer died")

    with pytest.raises(RuntimeError):
        first.poll(crash)
    assert not cursor.exists() or load_cursor(cursor, tasks.address) == start
    delivered: list[ChainEvent] = []
    again = EventPoller(tasks, start_block=start, cursor_path=cursor)
    again.poll(delivered.extend)
    assert _names(delivered) == ["TaskPublished", "VerifierJoined", "ContributorJoined"]
    assert load_cursor(cursor, tasks.address) == chain.block_number() + 1
    tasks.leave_as_contributor(s.contributors[0], s.task_id)
    resumed = EventPoller(tasks, start_block=0, cursor_path=cursor)  # start_block ignored
    new = resumed.poll()
    assert _names(new) == ["ContributorLeft", "Credited"]
    assert {e.key for e in new}.isdisjoint({e.key for e in delivered})


def test_chunked_scan_matches_single_scan(chain: Chain, tasks: TasksContract) -> None:
    start = chain.block_number()
    setup_task(chain, tasks, contributors=2, verifiers=3)
    whole = EventPoller(tasks, start_block=start).poll()
    chunked = EventPoller(tasks, start_block=start, max_range=1).poll()
    assert [e.key for e in whole] == [e.key for e in chunked]
    assert len(whole) == 6


def test_cursor_file_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    address = "0x" + "11" * 20
    save_cursor(path, address, 42)
    assert load_cursor(path, address) == 42
    with pytest.raises(SerializationError, match="belongs to contract"):
        load_cursor(path, "0x" + "22" * 20)
    body = json.loads(path.read_text())
    body["next_block"] = 43
    path.write_text(json.dumps(body))
    with pytest.raises(SerializationError, match="checksum"):
        load_cursor(path, address)
    path.write_text("{not json")
    with pytest.raises(SerializationError, match="unreadable"):
        load_cursor(path, address)
    path.write_text(json.dumps({"format": "other", "version": 1}))
    with pytest.raises(SerializationError, match="not a"):
        load_cursor(path, address)
    assert load_cursor(tmp_path / "absent.json", address) is None
