"""Hostile bytes for the roles' decoders: verification data, state files, cursors."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from roles_helpers import tiny_data

from cipherfuse.chain.events import load_cursor, save_cursor
from cipherfuse.errors import CipherfuseError, SerializationError
from cipherfuse.roles.errors import RoleConfigError, RoleStateError
from cipherfuse.roles.manifest import TaskManifest, VerificationData
from cipherfuse.roles.state import StateFile

CONTRACT = "0x" + "11" * 20


def _valid_npz() -> bytes:
    fit_x, fit_y = tiny_data(8, 1)
    check_x, check_y = tiny_data(8, 2)
    return VerificationData(fit_x, fit_y, check_x, check_y).to_bytes()


def test_valid_verification_data_round_trips() -> None:
    data = _valid_npz()
    vd = VerificationData.from_bytes(data)
    assert VerificationData.from_bytes(vd.to_bytes()).fit_x.shape == (8, 4, 4, 1)


def test_not_a_zip_is_typed() -> None:
    """Was zipfile.BadZipFile."""
    with pytest.raises(RoleConfigError):
        VerificationData.from_bytes(b"PK\x03\x04" + b"\x00" * 100)


def test_truncated_archive_is_typed() -> None:
    """A cut inside a member: was EOFError (or BadZipFile)."""
    data = _valid_npz()
    for cut in (len(data) // 3, len(data) // 2, len(data) - 30):
        with pytest.raises(RoleConfigError):
            VerificationData.from_bytes(data[:cut])


def test_member_declaring_a_huge_array_is_refused_before_allocation() -> None:
    """A 100-byte member whose .npy header declares 2^40 float32s: was MemoryError."""
    header = {"descr": "<f4", "fortran_order": False, "shape": (1 << 20, 1 << 20, 1, 1)}
    npy = io.BytesIO()
    np.lib.format.write_array_header_1_0(npy, header)
    npy.write(b"\x00" * 64)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in ("fit_x", "fit_y", "check_x", "check_y"):
            zf.writestr(f"{name}.npy", npy.getvalue())
    with pytest.raises(RoleConfigError, match="declares"):
        VerificationData.from_bytes(buf.getvalue())


def test_zip_bomb_is_refused_on_declared_sizes() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("fit_x.npy", b"\x00" * (8 << 20))
    with pytest.raises(RoleConfigError, match="unpacks to more"):
        VerificationData.from_bytes(buf.getvalue(), max_bytes=1 << 20)


def test_state_file_that_is_not_utf8_is_typed(tmp_path: Path) -> None:
    """Was UnicodeDecodeError."""
    path = tmp_path / "verifier-x.json"
    path.write_bytes(b'{"format": "\xff\xfe"}')
    with pytest.raises(RoleStateError):
        StateFile(path, "verifier", "x")
    path.write_bytes(b"[" * 100_000)
    with pytest.raises(RoleStateError, match="levels deep"):
        StateFile(path, "verifier", "x")


def test_cursor_that_is_not_utf8_is_typed(tmp_path: Path) -> None:
    """Was UnicodeDecodeError."""
    path = tmp_path / "c.cursor"
    save_cursor(path, CONTRACT, 7)
    assert load_cursor(path, CONTRACT) == 7
    path.write_bytes(b"\x80\x81\x82")
    with pytest.raises(SerializationError):
        load_cursor(path, CONTRACT)


def test_manifest_must_be_canonical() -> None:
    manifest = TaskManifest(
        params="paper",
        key_cid="k",
        key_id="i",
        verification_cid="v",
        threshold=0.5,
        weight_scale=2,
        input_scale=3,
        fusion_epochs=(1, 1),
        nonce="n",
    )
    data = manifest.to_bytes()
    assert TaskManifest.from_bytes(data) == manifest
    spaced = json.dumps(json.loads(data), sort_keys=True, indent=1).encode()
    with pytest.raises(RoleConfigError, match="canonical"):
        TaskManifest.from_bytes(spaced)
    body = json.loads(data)
    body["weight_scale"] = True
    with pytest.raises(CipherfuseError):
        TaskManifest.from_bytes(json.dumps(body, sort_keys=True).encode())
