"""Sealing, key boxes, envelopes, state files, manifests and role configuration."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from eth_utils.crypto import keccak

from cipherfuse.cli.main import main
from cipherfuse.roles.config import load_role_config
from cipherfuse.roles.errors import RoleConfigError, RoleStateError, SealError
from cipherfuse.roles.manifest import TaskManifest, VerificationData
from cipherfuse.roles.sealing import (
    box_public_bytes,
    build_envelope,
    make_key_box,
    new_box_key,
    open_key_box,
    open_sealed,
    open_with_envelope,
    parse_envelope,
    seal,
)
from cipherfuse.roles.state import StateFile

MEMBER = "0x" + "ab" * 20
OTHER = "0x" + "cd" * 20


def test_sealed_blob_opens_with_its_envelope_and_nothing_else() -> None:
    payload = b"encrypted model bytes" * 50
    sealed = seal(payload)
    assert payload not in sealed.blob
    assert sealed.model_hash == hashlib.sha256(sealed.blob).digest()
    assert sealed.envelope_commitment == keccak(sealed.envelope)
    assert open_with_envelope(sealed.blob, sealed.envelope) == payload
    with pytest.raises(SealError, match="does not open"):
        open_sealed(sealed.blob, bytes(32))
    tampered = bytearray(sealed.blob)
    tampered[-1] ^= 1
    with pytest.raises(SealError, match="model hash"):
        open_with_envelope(bytes(tampered), sealed.envelope)
    with pytest.raises(SealError, match="does not open"):
        open_sealed(bytes(tampered), sealed.key)
    other = seal(payload)
    with pytest.raises(SealError):  # another claim's envelope names another blob
        open_with_envelope(sealed.blob, other.envelope)


def test_envelope_format_is_checked() -> None:
    key, digest = bytes(range(32)), bytes(32)
    assert parse_envelope(build_envelope(key, digest)) == (key, digest)
    with pytest.raises(SealError, match="envelope must be"):
        parse_envelope(b"CFENV\x01" + key)
    with pytest.raises(SealError):
        build_envelope(key[:16], digest)


def test_key_box_opens_only_for_its_member_and_claim() -> None:
    member_key = new_box_key()
    box = make_key_box(box_public_bytes(member_key), b"K" * 32, claim_id=7, member=MEMBER)
    assert open_key_box(box, member_key, claim_id=7, member=MEMBER) == b"K" * 32
    with pytest.raises(SealError, match="not for"):
        open_key_box(box, member_key, claim_id=8, member=MEMBER)
    with pytest.raises(SealError, match="not for"):
        open_key_box(box, member_key, claim_id=7, member=OTHER)
    with pytest.raises(SealError, match="not for"):
        open_key_box(box, new_box_key(), claim_id=7, member=MEMBER)
    with pytest.raises(SealError, match="key box is"):
        open_key_box(box[:-1], member_key, claim_id=7, member=MEMBER)


def test_state_file_round_trips_and_refuses_tampering(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    state = StateFile(path, "contributor", MEMBER)
    state.update(seed="00" * 32, claim_id=3)
    assert StateFile(path, "contributor", MEMBER).data == {"seed": "00" * 32, "claim_id": 3}
    assert not list(tmp_path.glob(".*.tmp"))
    with pytest.raises(RoleStateError, match="belongs to"):
        StateFile(path, "verifier", MEMBER)
    with pytest.raises(RoleStateError, match="belongs to"):
        StateFile(path, "contributor", OTHER)
    body = json.loads(path.read_text())
    body["data"]["claim_id"] = 4
    path.write_text(json.dumps(body))
    with pytest.raises(RoleStateError, match="checksum"):
        StateFile(path, "contributor", MEMBER)
    path.write_text("{")
    with pytest.raises(RoleStateError, match="unreadable"):
        StateFile(path, "contributor", MEMBER)


def test_manifest_and_verification_data_are_schema_checked() -> None:
    manifest = TaskManifest("paper", "Qm1", "id", "Qm2", 0.7, 128, 1000, (2, 2), "ab")
    assert TaskManifest.from_bytes(manifest.to_bytes()) == manifest
    body = json.loads(manifest.to_bytes())
    body["threshold"] = 2.0
    with pytest.raises(RoleConfigError, match="threshold"):
        TaskManifest.from_bytes(json.dumps(body).encode())
    del body["nonce"]
    with pytest.raises(RoleConfigError, match="not a cipherfuse-task-manifest"):
        TaskManifest.from_bytes(json.dumps(body).encode())
    x = np.zeros((4, 2, 2, 1), np.float32)
    y = np.arange(4, dtype=np.int64)
    data = VerificationData(x, y, x, y)
    back = VerificationData.from_bytes(data.to_bytes())
    assert np.array_equal(back.check_y, y)
    bad = VerificationData(x, y.astype(np.int32), x, y)  # type: ignore[arg-type]
    with pytest.raises(RoleConfigError, match="wrong shape/dtype"):
        VerificationData.from_bytes(bad.to_bytes())
    with pytest.raises(RoleConfigError, match="npz"):
        VerificationData.from_bytes(b"not an archive")


def test_role_config_from_toml_and_flag_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "role.toml"
    path.write_text(
        'rpc_url = "http://127.0.0.1:8545"\ncontract = "0x' + "00" * 20 + '"\n'
        'account = 2\nworkdir = "w"\ntask_id = 1\nindex = 2\n'
    )
    cfg = load_role_config(path, role="contributor", index=3)
    assert cfg.index == 3 and cfg.workdir == Path("w") and cfg.account == 2
    cfg.validate()
    path.write_text(path.read_text() + "colour = 1\n")
    with pytest.raises(RoleConfigError, match="unknown keys"):
        load_role_config(path, role="contributor")
    assert main(["verifier", "--task-id", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: verifier: give --rpc-url") and err.count("\n") == 1
    assert (
        main(
            [
                "contributor",
                "--rpc-url",
                "ftp://x",
                "--contract",
                "0x0",
                "--account",
                "1",
                "--workdir",
                str(tmp_path),
                "--task-id",
                "1",
            ]
        )
        == 2
    )
    assert "http(s) URL" in capsys.readouterr().err


def test_role_network_keys_from_toml_and_their_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cipherfuse.chain.keystore import LIGHT_SCRYPT_N, create_keystore

    key = tmp_path / "keys" / "c.json"
    create_keystore(key, "right", scrypt_n=LIGHT_SCRYPT_N)
    (tmp_path / "pw").write_text("wrong\n")
    path = tmp_path / "role.toml"
    head = (
        'rpc_url = "http://127.0.0.1:9"\ncontract = "0x' + "00" * 20 + '"\n'
        'account = 2\nworkdir = "w"\ntask_id = 1\nindex = 2\n'
    )
    path.write_text(
        head + 'keystore = "keys/c.json"\nchain_id = 31337\npassword_file = "pw"\n'
        "confirmations = 4\nmax_fee_gwei = 30\n"
    )
    cfg = load_role_config(path, role="contributor")
    assert cfg.network is not None
    assert cfg.network.keystore == key and cfg.network.password_file == tmp_path / "pw"
    assert cfg.network.confirmations == 4 and cfg.network.max_fee_gwei == 30
    path.write_text(head + 'keystore = "keys/c.json"\n')
    with pytest.raises(RoleConfigError, match="chain_id is required"):
        load_role_config(path, role="contributor")
    path.write_text(head + "confirmations = 2\n")
    with pytest.raises(RoleConfigError, match="need a keystore"):
        load_role_config(path, role="contributor")
    path.write_text(head + 'keystore = "k"\nchain_id = 1\nconfirmations = -1\n')
    with pytest.raises(RoleConfigError, match="confirmations must be an integer"):
        load_role_config(path, role="contributor")
    # A wrong password stops the role before it touches the node: one line, exit 2.
    base = ["contributor", "--rpc-url", "http://127.0.0.1:9", "--contract", "0x" + "00" * 20]
    base += ["--workdir", str(tmp_path / "w"), "--task-id", "1", "--keystore", str(key)]
    base += ["--chain-id", "31337", "--password-file", str(tmp_path / "pw")]
    assert main(base) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "wrong password" in err
    (tmp_path / "pw").write_text("right\n")
    assert main(base) == 2  # the node is unreachable
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not answer" in err
