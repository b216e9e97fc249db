"""The off-chain channel between roles: a shared folder for box keys and key boxes.

Committee members need the sealing key before they vote, and it must not reach anyone
else. Each verifier posts a *card* (its X25519 public key, bound to task and address);
after the committee draw the claimant posts one *key box* per member. Everything in the
mailbox is either public (cards) or encrypted to one member (boxes), and every entry is
written atomically. The folder is trusted for availability only, not for secrecy; see
docs/protocol.md for what an attacker who can write it could do.
"""

from __future__ import annotations

import json
from pathlib import Path

from web3 import Web3

from cipherfuse.errors import SerializationError
from cipherfuse.files import atomic_write_bytes
from cipherfuse.roles.errors import SealError
from cipherfuse.untrusted import parse_json

CARD_FORMAT = "cipherfuse-verifier-card"
#: More than any key box is long; longer files are refused unread.
MAX_BOX_BYTES = 4096


class Mailbox:
    """A shared folder (``root``) scoped to one contract deployment."""

    def __init__(self, root: Path, contract: str) -> None:
        self.root = Path(root) / Web3.to_checksum_address(contract)

    def _card_path(self, task_id: int, verifier: str) -> Path:
        return (
            self.root / f"task-{task_id}" / "cards" / f"{Web3.to_checksum_address(verifier)}.json"
        )

    def _box_path(self, claim_id: int, member: str) -> Path:
        return self.root / "boxes" / f"claim-{claim_id}" / f"{Web3.to_checksum_address(member)}.box"

    def post_card(self, task_id: int, verifier: str, box_public: bytes) -> None:
        """Publish a verifier's box public key for a task."""
        body = {
            "format": CARD_FORMAT,
            "version": 1,
            "task_id": task_id,
            "verifier": Web3.to_checksum_address(verifier),
            "box_public": box_public.hex(),
        }
        atomic_write_bytes(
            self._card_path(task_id, verifier), json.dumps(body).encode(), mode=0o644
        )

    def card(self, task_id: int, verifier: str) -> bytes | None:
        """A verifier's box public key, or None if it has not posted one."""
        path = self._card_path(task_id, verifier)
        if not path.exists():
            return None
        try:
            body = parse_json(path.read_bytes(), what=f"verifier card {path}", max_bytes=4096)
            ok = (
                body["format"] == CARD_FORMAT
                and body["version"] == 1
                and body["task_id"] == task_id
                and body["verifier"] == Web3.to_checksum_address(verifier)
            )
            public = bytes.fromhex(body["box_public"])
        except (OSError, ValueError, KeyError, TypeError, SerializationError) as exc:
            raise SealError(f"verifier card {path} is malformed: {exc}") from exc
        if not ok or len(public) != 32:
            raise SealError(f"verifier card {path} does not belong to {verifier}, task {task_id}")
        return public

    def post_box(self, claim_id: int, member: str, box: bytes) -> None:
        """Deliver a key box (kept if one is already there: delivery is idempotent)."""
        path = self._box_path(claim_id, member)
        if not path.exists():
            atomic_write_bytes(path, box, mode=0o644)

    def box(self, claim_id: int, member: str) -> bytes | None:
        """The key box for ``member`` of ``claim_id``, or None.

        Only the first :data:`MAX_BOX_BYTES` bytes are read (a key box is 98 bytes), so a
        huge file planted in the folder cannot exhaust a verifier's memory.
        """
        path = self._box_path(claim_id, member)
        try:
            with open(path, "rb") as fh:
                return fh.read(MAX_BOX_BYTES + 1)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SealError(f"key box {path} is unreadable: {exc}") from exc
