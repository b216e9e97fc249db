"""Keystores, fees, the nonce journal and local signing on the embedded py-evm chain."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from eth_account import Account
from web3 import EthereumTesterProvider, Web3

from cipherfuse.chain import TasksContract, embedded_chain
from cipherfuse.chain.backends import Chain
from cipherfuse.chain.devkeys import dev_accounts, dev_private_key
from cipherfuse.chain.errors import (
    ChainError,
    ChainIdMismatchError,
    ChainParameterError,
    FeeCapError,
    ForbiddenRpcError,
    GasLimitError,
    InsufficientFundsError,
    KeystoreFormatError,
    KeystoreNotFoundError,
    PasswordSourceError,
    WrongPasswordError,
)
from cipherfuse.chain.fees import GWEI, FeePolicy, Fees, bump_fees, suggest_fees
from cipherfuse.chain.keystore import (
    LIGHT_SCRYPT_N,
    PasswordSource,
    create_keystore,
    encrypt_key,
    keystore_address,
    unlock_keystore,
)
from cipherfuse.chain.nonces import JournalEntry, NonceJournal, NonceJournalError
from cipherfuse.chain.signer import SendPolicy

#: The scrypt test vector of the Web3 Secret Storage definition (password "testpassword").
V3_VECTOR = {
    "crypto": {
        "cipher": "aes-128-ctr",
        "cipherparams": {"iv": "83dbcc02d8ccb40e466191a123791e0e"},
        "ciphertext": "d172bf743a674da9cdad04534d56926ef8358534d458fffccd4e6ad2fbde479c",
        "kdf": "scrypt",
        "kdfparams": {
            "dklen": 32,
            "n": 262144,
            "p": 8,
            "r": 1,
            "salt": "ab0c7876052600dd703518d6fc3fe8984592145b591fc8fb5c6d43190334ba19",
        },
        "mac": "2103ac29920d71da29f15d75b4a16dbe95cfd7ff8faea1056c33131d846e3097",
    },
    "id": "3198bc9c-6672-5ab3-d995-4942343ae5b6",
    "version": 3,
}
V3_VECTOR_KEY = "7a28b5ba57c53603b0b07b56bba752f7784bf506fa95edc395f5cf6c7514fe9d"

# ------------------------------------------------------------------ keystores


def test_keystore_round_trips_with_eth_account_both_ways(tmp_path: Path) -> None:
    key = bytes(range(1, 33))
    path = tmp_path / "k.json"
    account = create_keystore(path, "hunter2", private_key=key, scrypt_n=LIGHT_SCRYPT_N)
    assert account.address == Account.from_key(key).address
    body = json.loads(path.read_text())
    assert body["version"] == 3 and body["crypto"]["kdf"] == "scrypt"
    assert body["crypto"]["kdfparams"]["n"] == LIGHT_SCRYPT_N
    # eth-account reads our file, and we read one eth-account wrote.
    assert bytes(Account.decrypt(body, "hunter2")) == key
    other = tmp_path / "other.json"
    other.write_text(json.dumps(Account.encrypt(key, "pw", kdf="scrypt", iterations=2**10)))
    assert unlock_keystore(other, "pw").key == key
    assert unlock_keystore(path, "hunter2").key == key
    assert keystore_address(path) == account.address
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left


def test_keystore_opens_the_published_v3_test_vector(tmp_path: Path) -> None:
    path = tmp_path / "vector.json"
    path.write_text(json.dumps(V3_VECTOR))
    assert unlock_keystore(path, "testpassword").key.hex() == V3_VECTOR_KEY
    with pytest.raises(WrongPasswordError, match="wrong password"):
        unlock_keystore(path, "testpassword!")


def test_keystore_errors_are_typed_and_actionable(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    create_keystore(path, "right", scrypt_n=LIGHT_SCRYPT_N)
    with pytest.raises(WrongPasswordError, match=r"wrong password for keystore .*k\.json"):
        unlock_keystore(path, "wrong")
    with pytest.raises(ChainParameterError, match="refusing to overwrite"):
        create_keystore(path, "x", scrypt_n=LIGHT_SCRYPT_N)
    with pytest.raises(KeystoreNotFoundError, match="cipherfuse account new"):
        unlock_keystore(tmp_path / "missing.json", "x")
    bad = tmp_path / "bad.json"
    for text, message in (
        ("not json", "not a JSON keystore"),
        ('{"version": 2}', "version-3"),
        ('{"version": 3, "crypto": {"kdf": "md5", "kdfparams": {}}}', "unsupported kdf"),
        (
            '{"version": 3, "crypto": {"kdf": "scrypt", "kdfparams": {"n": 4294967296, '
            '"r": 8, "p": 1}}}',
            "out of range",
        ),
        ("x" * 70_000, "larger than"),
    ):
        bad.write_text(text)
        with pytest.raises(KeystoreFormatError, match=message):
            unlock_keystore(bad, "x")
    # A file whose declared address is not its key's.
    body = json.loads(path.read_text())
    body["address"] = "00" * 20
    bad.write_text(json.dumps(body))
    with pytest.raises(KeystoreFormatError, match="declares address"):
        unlock_keystore(bad, "right")


def test_password_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "pw"
    file.write_text("s3cret\nignored second line\n")
    assert PasswordSource(file=file).read() == "s3cret"
    monkeypatch.setenv("CF_TEST_PW", "from-env")
    assert PasswordSource(env="CF_TEST_PW").read() == "from-env"
    assert PasswordSource().read(prompt=lambda text: "typed") == "typed"
    file.write_text("")
    with pytest.raises(PasswordSourceError, match="is empty"):
        PasswordSource(file=file).read()
    with pytest.raises(PasswordSourceError, match="cannot read password file"):
        PasswordSource(file=tmp_path / "nope").read()
    monkeypatch.delenv("CF_TEST_PW")
    with pytest.raises(PasswordSourceError, match="CF_TEST_PW"):
        PasswordSource(env="CF_TEST_PW").read()
    with pytest.raises(ChainParameterError, match="either"):
        PasswordSource(file=file, env="X")
    with pytest.raises(ChainParameterError, match="power of two"):
        encrypt_key(b"\x01" * 32, "pw", scrypt_n=1000)


# ------------------------------------------------------------------ fees and the journal


def test_fee_suggestion_falls_back_without_fee_history() -> None:
    chain = embedded_chain(1)
    # py-evm answers eth_feeHistory with empty lists: the latest base fee is used instead.
    assert chain.w3.eth.fee_history(4, "latest", [50])["baseFeePerGas"] == []
    base = int(chain.w3.eth.get_block("latest")["baseFeePerGas"])
    tip = int(chain.w3.eth.max_priority_fee)
    fees = suggest_fees(chain.w3, FeePolicy())
    assert fees == Fees(2 * base + tip, tip)
    assert suggest_fees(chain.w3, FeePolicy(priority_fee=7)) == Fees(2 * base + 7, 7)
    capped = suggest_fees(chain.w3, FeePolicy(max_fee_cap=base + tip + 1))
    assert capped.max_fee_per_gas == base + tip + 1
    with pytest.raises(FeeCapError, match="exceeds the configured max fee cap"):
        suggest_fees(chain.w3, FeePolicy(max_fee_cap=base))


def test_fee_bump_rises_by_the_percentage_and_respects_the_cap() -> None:
    old = Fees(100 * GWEI, 2 * GWEI)
    bumped = bump_fees(old, Fees(50 * GWEI, GWEI), 15, None)
    assert bumped == Fees(115 * GWEI, 2_300_000_000)
    # A fresher, higher suggestion wins over the bump.
    assert bump_fees(old, Fees(300 * GWEI, 5 * GWEI), 15, None) == Fees(300 * GWEI, 5 * GWEI)
    assert bump_fees(old, Fees(1, 1), 15, cap=110 * GWEI) is None
    assert bump_fees(Fees(0, 0, gas_price=10), Fees(0, 0, gas_price=1), 10, None) == Fees(
        0, 0, gas_price=11
    )
    with pytest.raises(ChainParameterError, match="10 %"):
        bump_fees(old, old, 5, None)


def test_nonce_journal_persists_and_refuses_tampering(tmp_path: Path) -> None:
    path = tmp_path / "j.json"
    journal = NonceJournal.open(path, "0xAbC", 5)
    journal.put(
        JournalEntry(
            nonce=3,
            raw=["0x01"],
            hashes=["0x02"],
            max_fee_per_gas=9,
            max_priority_fee_per_gas=1,
            label="publishTask",
        )
    )
    again = NonceJournal.open(path, "0xabc", 5)
    assert again.entries[3].label == "publishTask"
    assert again.next_nonce(node_pending=2) == 4
    assert again.next_nonce(node_pending=9) == 9
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(NonceJournalError, match="not of 0xdef"):
        NonceJournal.open(path, "0xdef", 5)
    with pytest.raises(NonceJournalError, match="not chain 6"):
        NonceJournal.open(path, "0xabc", 6)
    path.write_text(path.read_text().replace("publishTask", "withdraw"))
    with pytest.raises(NonceJournalError, match="checksum"):
        NonceJournal.open(path, "0xabc", 5)
    again.remove(3)
    assert NonceJournal.open(path, "0xabc", 5).entries == {}


# ------------------------------------------------------------------ signing on py-evm


def test_embedded_chain_signs_locally_and_refuses_node_accounts() -> None:
    chain = embedded_chain(3)
    assert chain.accounts == [a.address for a in dev_accounts(3)]
    assert dev_private_key(0) != dev_private_key(1)
    for call in (
        lambda: chain.w3.eth.accounts,
        lambda: chain.w3.eth.send_transaction({"from": chain.accounts[0], "value": 1}),
        lambda: chain.w3.eth.sign(chain.accounts[0], text="x"),
    ):
        with pytest.raises(ForbiddenRpcError, match="signs locally"):
            call()
    a, b = chain.accounts[:2]
    before = chain.w3.eth.get_balance(b)
    receipt = chain.transfer(a, b, 12345)
    tx = chain.w3.eth.get_transaction(receipt["transactionHash"])
    assert tx["from"] == a and tx["type"] == 2 and tx["chainId"] == chain.chain_id
    assert chain.w3.eth.get_balance(b) == before + 12345
    # The signature is the dev key's: recover the sender from the raw transaction.
    raw = chain.signer(a).account.sign_transaction(
        {
            "to": b,
            "value": 1,
            "gas": 21000,
            "nonce": 1,
            "chainId": chain.chain_id,
            "maxFeePerGas": 10**10,
            "maxPriorityFeePerGas": 1,
            "type": 2,
        }
    )
    assert Account.recover_transaction(raw.raw_transaction) == a
    with pytest.raises(ChainError, match="no local key"):
        chain.signer("0x" + "11" * 20)


def test_wrong_chain_id_is_refused_before_anything_is_signed() -> None:
    chain = embedded_chain(1)
    provider = chain.w3.provider
    assert isinstance(provider, EthereumTesterProvider)
    with pytest.raises(
        ChainIdMismatchError, match=f"serves chain id {chain.chain_id}, not the configured 1"
    ):
        Chain(Web3(provider), "embedded", chain_id=1)
    assert chain.w3.eth.get_transaction_count(chain.accounts[0]) == 0


def test_too_little_eth_names_both_amounts_and_sends_nothing() -> None:
    chain = embedded_chain(1)
    tasks, _ = TasksContract.deploy(chain, chain.accounts[0])
    poor = chain.add_account(Account.from_key(b"\x42" * 32))
    chain.fund(poor.address, 1000)
    with pytest.raises(InsufficientFundsError) as info:
        chain.transfer(poor.address, chain.accounts[0], 500)
    err = info.value
    assert err.balance == 1000
    fees = suggest_fees(chain.w3, FeePolicy())
    assert err.needed == 500 + 21_000 * fees.max_fee_per_gas
    assert f"has 1000 wei but transfer needs {err.needed} wei" in str(err)
    assert chain.w3.eth.get_transaction_count(poor.address) == 0
    assert poor.journal.entries == {}
    # A contract call with a deposit: the same check, before signing.
    from .helpers import DEFAULT_PARAMS

    task_id, _ = tasks.publish_task(chain.accounts[0], "ipfs://x", DEFAULT_PARAMS)
    with pytest.raises(InsufficientFundsError, match="joinAsContributor needs"):
        tasks.join_as_contributor(poor.address, task_id)
    assert chain.w3.eth.get_transaction_count(poor.address) == 0


def test_gas_cap_refuses_an_expensive_transaction() -> None:
    chain = embedded_chain(1, policy=SendPolicy(gas_limit_cap=1_000_000))
    with pytest.raises(GasLimitError, match="above the configured limit 1000000"):
        TasksContract.deploy(chain, chain.accounts[0])
    assert chain.w3.eth.get_transaction_count(chain.accounts[0]) == 0
