"""``cipherfuse account new`` and ``cipherfuse deploy`` as a user runs them, and the
network configuration file: every mistake is one line and exit status 2."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from cipherfuse.chain import AnvilNode, TasksContract, http_chain
from cipherfuse.chain.keystore import keystore_address, unlock_keystore
from cipherfuse.chain.netconfig import (
    NetworkConfig,
    NetworkConfigError,
    load_network_config,
    render_network_config,
)
from cipherfuse.cli.main import main

from .conftest import anvil_binary_or_skip


@pytest.fixture(scope="module")
def node() -> Iterator[AnvilNode]:
    with AnvilNode(accounts=0, binary=anvil_binary_or_skip()) as started:
        yield started


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _new_key(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str = "k.json") -> Path:
    password = tmp_path / "pw"
    password.write_text("correct horse\n")
    path = tmp_path / name
    code, out, _ = _run(
        capsys,
        "account",
        "new",
        "--keystore",
        str(path),
        "--password-file",
        str(password),
        "--light",
    )
    assert code == 0
    assert out.startswith("address 0x")
    return path


def test_account_new_writes_a_private_keystore_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _new_key(tmp_path, capsys)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert unlock_keystore(path, "correct horse").address == keystore_address(path)
    code, _, err = _run(
        capsys,
        "account",
        "new",
        "--keystore",
        str(path),
        "--password-file",
        str(tmp_path / "pw"),
        "--light",
    )
    assert code == 2 and err.count("\n") == 1 and "refusing to overwrite" in err
    monkeypatch.setenv("CF_PW", "from the environment")
    other = tmp_path / "env.json"
    code, out, _ = _run(
        capsys, "account", "new", "--keystore", str(other), "--password-env", "CF_PW", "--light"
    )
    assert code == 0
    assert unlock_keystore(other, "from the environment").address in out
    code, _, err = _run(
        capsys,
        "account",
        "new",
        "--keystore",
        str(tmp_path / "x.json"),
        "--password-env",
        "CF_UNSET_VARIABLE",
        "--light",
    )
    assert code == 2 and "CF_UNSET_VARIABLE" in err


def test_deploy_prints_the_address_and_writes_the_config(
    node: AnvilNode, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = _new_key(tmp_path, capsys)
    address = keystore_address(key)
    assert address is not None
    chain = http_chain(node.url, kind="anvil")
    pw = str(tmp_path / "pw")
    base = ["deploy", "--rpc", node.url, "--keystore", str(key), "--password-file", pw]
    # Not funded yet: refused before sending, naming the balance and the need.
    code, _, err = _run(capsys, *base, "--chain-id", "31337", "--confirmations", "0")
    last = err.splitlines()[-1]
    assert code == 2 and last.startswith("error: ") and "has 0 wei but" in last
    chain._rpc("anvil_setBalance", [address, hex(10**18)])
    config = tmp_path / "net.toml"
    code, out, err = _run(capsys, *base, "--confirmations", "0", "--write-config", str(config))
    assert code == 0, err
    assert "the node serves chain id 31337" in err
    deployed = out.strip()
    assert TasksContract(chain, deployed).task_count() == 0  # the packaged code is there
    loaded = load_network_config(config)
    assert loaded.contract == deployed and loaded.chain_id == 31337
    assert loaded.keystore == key and loaded.password_file == Path(pw)
    # Deploying again from the written file works the same (a second contract).
    code, out, _ = _run(capsys, "deploy", "--config", str(config))
    assert code == 0 and out.strip() != deployed
    assert chain.w3.eth.get_transaction_count(address) == 2


def test_deploy_failures_are_one_line_with_exit_2(
    node: AnvilNode, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = _new_key(tmp_path, capsys)
    wrong = tmp_path / "wrong"
    wrong.write_text("not it\n")
    pw = str(tmp_path / "pw")
    cases = [
        (
            [
                "--rpc",
                node.url,
                "--keystore",
                str(key),
                "--password-file",
                str(wrong),
                "--chain-id",
                "31337",
            ],
            "wrong password",
        ),
        (
            [
                "--rpc",
                node.url,
                "--keystore",
                str(tmp_path / "none.json"),
                "--password-file",
                pw,
                "--chain-id",
                "31337",
            ],
            "not found; create one with `cipherfuse account new",
        ),
        (
            [
                "--rpc",
                node.url,
                "--keystore",
                str(key),
                "--password-file",
                pw,
                "--chain-id",
                "11155111",
            ],
            "serves chain id 31337, not the configured 11155111",
        ),
        (
            [
                "--rpc",
                "http://127.0.0.1:9",
                "--keystore",
                str(key),
                "--password-file",
                pw,
                "--chain-id",
                "1",
            ],
            "does not answer",
        ),
        (["--rpc", node.url], "give --rpc and --keystore"),
    ]
    for argv, message in cases:
        code, _, err = _run(capsys, "deploy", *argv)
        assert code == 2, argv
        assert err.count("\n") == 1 and message in err, err


def test_network_config_validates_every_field(tmp_path: Path) -> None:
    good = NetworkConfig(
        rpc_url="https://rpc.example",
        chain_id=11155111,
        keystore=tmp_path / "k.json",
        password_env="PW",
        max_fee_gwei=40,
    )
    path = tmp_path / "role.toml"
    path.write_text(render_network_config(good))
    assert load_network_config(path) == good
    policy = good.send_policy()
    assert policy.fees.max_fee_cap == 40 * 10**9 and policy.confirmations == 2
    bad = [
        ({"rpc_url": "ftp://x"}, "rpc_url"),
        ({"chain_id": 0}, "chain_id"),
        ({"contract": "0x12"}, "contract"),
        ({"confirmations": -1}, "confirmations"),
        ({"gas_limit_cap": 100}, "gas_limit_cap"),
        ({"max_fee_gwei": 0}, "max_fee_gwei"),
        ({"fee_bump_percent": 5}, "fee_bump_percent"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"password_file": tmp_path / "pw"}, "not both"),
    ]
    for change, name in bad:
        fields = {**good.__dict__, **change}
        with pytest.raises(NetworkConfigError, match=name):
            NetworkConfig(**fields)
    path.write_text('rpc_url = "http://x"\nchain_id = 1\nkeystore = "k"\ncolour = "red"\n')
    with pytest.raises(NetworkConfigError, match=r"unknown network keys \['colour'\]"):
        load_network_config(path)
    path.write_text('rpc_url = "http://x"\nchain_id = 1\n')
    with pytest.raises(NetworkConfigError, match="missing required key 'keystore'"):
        load_network_config(path)
