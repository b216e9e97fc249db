"""Encrypted JSON keystores (Web3 Secret Storage, version 3) and their passwords.

A keystore is the file geth, Foundry (``cast wallet``) and MetaMask exports write: the
private key encrypted with AES-128-CTR under a key derived from the password with scrypt,
and a MAC that detects a wrong password. :func:`create_keystore` writes one (atomically,
mode 0600, never overwriting), :func:`unlock_keystore` decrypts one into an
:class:`eth_account.signers.local.LocalAccount`. Passwords come from a
:class:`PasswordSource`: an interactive prompt, the first line of a file, or an
environment variable.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address

from cipherfuse.chain.errors import (
    ChainParameterError,
    KeystoreFormatError,
    KeystoreNotFoundError,
    PasswordSourceError,
    WrongPasswordError,
)
from cipherfuse.files import atomic_write_bytes

#: scrypt cost geth and Foundry use by default ("standard": 256 MiB, about a second).
STANDARD_SCRYPT_N = 2**18
#: geth's ``--lightkdf`` cost (4 MiB): for throw-away development keys only.
LIGHT_SCRYPT_N = 2**12
#: Largest keystore file read (a V3 keystore is about 500 bytes).
MAX_KEYSTORE_BYTES = 64 * 1024
#: Largest scrypt ``n`` accepted from a file (a hostile file must not exhaust memory).
MAX_SCRYPT_N = 2**20


@dataclass(frozen=True)
class PasswordSource:
    """Where a keystore password comes from: exactly one of ``file`` or ``env``, or neither
    for an interactive prompt.

    Attributes:
        file: a file whose first line is the password (trailing newline removed).
        env: the name of an environment variable holding the password.
    """

    file: Path | None = None
    env: str | None = None

    def __post_init__(self) -> None:
        if self.file is not None and self.env is not None:
            raise ChainParameterError("give either a password file or an environment variable")
        if self.env is not None and not self.env:
            raise ChainParameterError("the password environment variable name is empty")

    def describe(self) -> str:
        """Where the password is read from, for messages."""
        if self.file is not None:
            return f"password file {self.file}"
        if self.env is not None:
            return f"environment variable {self.env}"
        return "the prompt"

    def read(self, prompt: Callable[[str], str] | None = None) -> str:
        """The password.

        Args:
            prompt: asks the user (default :func:`getpass.getpass`); used only when neither
                ``file`` nor ``env`` is set.

        Raises:
            PasswordSourceError: the file is missing or empty, or the variable unset/empty.
        """
        if self.file is not None:
            try:
                text = self.file.read_text(encoding="utf-8")
            except OSError as exc:
                raise PasswordSourceError(
                    f"cannot read password file {self.file}: {exc.strerror or exc}"
                ) from exc
            password = text.splitlines()[0] if text else ""
            if not password:
                raise PasswordSourceError(f"password file {self.file} is empty")
            return password
        if self.env is not None:
            value = os.environ.get(self.env)
            if not value:
                raise PasswordSourceError(
                    f"environment variable {self.env} (the keystore password) is not set"
                )
            return value
        if prompt is None:
            import getpass

            prompt = getpass.getpass
        password = prompt("Keystore password: ")
        if not password:
            raise PasswordSourceError("the password is empty")
        return password


def encrypt_key(private_key: bytes, password: str, *, scrypt_n: int = STANDARD_SCRYPT_N) -> Any:
    """The V3 keystore (a JSON-ready dict) of ``private_key`` under ``password`` (scrypt)."""
    if not isinstance(private_key, bytes) or len(private_key) != 32:
        raise ChainParameterError("private_key must be 32 bytes")
    if not password:
        raise ChainParameterError("the password must not be empty")
    if scrypt_n < 2 or scrypt_n & (scrypt_n - 1) or scrypt_n > MAX_SCRYPT_N:
        raise ChainParameterError(f"scrypt_n must be a power of two in [2, 2**20], got {scrypt_n}")
    return Account.encrypt(private_key, password, kdf="scrypt", iterations=scrypt_n)


def create_keystore(
    path: Path,
    password: str,
    *,
    private_key: bytes | None = None,
    scrypt_n: int = STANDARD_SCRYPT_N,
) -> LocalAccount:
    """Write a new keystore to ``path`` (mode 0600, atomic) and return its account.

    ``private_key`` defaults to 32 bytes from the operating system's CSPRNG.

    Raises:
        ChainParameterError: ``path`` exists already (a keystore is never overwritten).
    """
    if path.exists():
        raise ChainParameterError(f"{path} exists; refusing to overwrite a keystore")
    key = private_key if private_key is not None else secrets.token_bytes(32)
    account: LocalAccount = Account.from_key(key)
    body = encrypt_key(key, password, scrypt_n=scrypt_n)
    atomic_write_bytes(path, json.dumps(body, indent=2).encode() + b"\n", mode=0o600)
    return account


def read_keystore(path: Path) -> dict[str, Any]:
    """The parsed, shape-checked JSON of a V3 keystore file (bounded in size and cost).

    Raises:
        KeystoreNotFoundError: no file at ``path``.
        KeystoreFormatError: unreadable, too large, not JSON, or not a V3 scrypt/pbkdf2
            keystore.
    """
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_KEYSTORE_BYTES + 1)
    except FileNotFoundError as exc:
        raise KeystoreNotFoundError(
            f"keystore {path} not found; create one with `cipherfuse account new --keystore {path}`"
        ) from exc
    except OSError as exc:
        raise KeystoreFormatError(f"cannot read keystore {path}: {exc.strerror or exc}") from exc
    if len(raw) > MAX_KEYSTORE_BYTES:
        raise KeystoreFormatError(f"{path} is larger than {MAX_KEYSTORE_BYTES} bytes")
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise KeystoreFormatError(f"{path} is not a JSON keystore: {exc}") from exc
    if not isinstance(body, dict) or body.get("version") != 3:
        raise KeystoreFormatError(f"{path} is not a version-3 keystore")
    crypto = body.get("crypto", body.get("Crypto"))
    if not isinstance(crypto, dict) or not isinstance(crypto.get("kdfparams"), dict):
        raise KeystoreFormatError(f"{path}: missing crypto.kdfparams")
    kdf, params = crypto.get("kdf"), crypto["kdfparams"]
    try:
        if kdf == "scrypt":
            n, r, p = int(params["n"]), int(params["r"]), int(params["p"])
            if not (2 <= n <= MAX_SCRYPT_N and 1 <= r <= 16 and 1 <= p <= 16):
                raise KeystoreFormatError(f"{path}: scrypt parameters out of range")
        elif kdf == "pbkdf2":
            if not 1 <= int(params["c"]) <= 10_000_000:
                raise KeystoreFormatError(f"{path}: pbkdf2 iteration count out of range")
        else:
            raise KeystoreFormatError(f"{path}: unsupported kdf {kdf!r}")
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, KeystoreFormatError):
            raise
        raise KeystoreFormatError(f"{path}: malformed kdfparams ({exc})") from exc
    return body


def keystore_address(path: Path) -> str | None:
    """The (unverified) address a keystore declares, checksummed, or None if absent."""
    address = read_keystore(path).get("address")
    if not isinstance(address, str):
        return None
    try:
        return str(to_checksum_address(address if address.startswith("0x") else "0x" + address))
    except ValueError:
        return None


def unlock_keystore(
    path: Path, password: str | PasswordSource, *, prompt: Callable[[str], str] | None = None
) -> LocalAccount:
    """Decrypt a keystore into a local signing account.

    Raises:
        KeystoreNotFoundError, KeystoreFormatError: see :func:`read_keystore`.
        PasswordSourceError: the password could not be read.
        WrongPasswordError: the password does not open this keystore.
    """
    body = read_keystore(path)
    secret = password.read(prompt) if isinstance(password, PasswordSource) else password
    try:
        key = Account.decrypt(body, secret)
    except ValueError as exc:
        if "MAC mismatch" in str(exc):
            raise WrongPasswordError(
                f"wrong password for keystore {path} (the MAC does not match)"
            ) from exc
        raise KeystoreFormatError(f"{path}: cannot decrypt: {exc}") from exc
    except (KeyError, TypeError) as exc:
        raise KeystoreFormatError(f"{path}: malformed keystore ({exc})") from exc
    account: LocalAccount = Account.from_key(key)
    declared = body.get("address")
    if isinstance(declared, str) and declared.lower().removeprefix("0x") != (
        account.address.lower().removeprefix("0x")
    ):
        raise KeystoreFormatError(
            f"{path}: declares address 0x{declared.removeprefix('0x')} but holds the key of "
            f"{account.address}"
        )
    return account
