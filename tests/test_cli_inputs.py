"""Every option of every command, given a bad value, ends in one ``error:`` line and exit 2.

The values are derived from each option's declared type (below a range, not a number, not
a choice, a missing path, a malformed address or URL), so a new option is covered without
editing this file; the issue's concrete mistakes are listed as well.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest

from cipherfuse.cli.main import cli, main
from cipherfuse.cli.params import AddressType, HttpUrlType
from cipherfuse.roles.config import load_role_config
from cipherfuse.roles.errors import RoleConfigError


def _bad_values(param: click.Option) -> list[str]:
    t = param.type
    if param.is_flag or param.count:
        return []
    if isinstance(t, AddressType):
        return ["0x1234", "notanaddress"]
    if isinstance(t, HttpUrlType):
        return ["ftp://example"]
    if isinstance(t, click.Choice):
        return ["no-such-choice"]
    if isinstance(t, click.IntRange):
        bad = ["abc"]
        if t.min is not None:
            bad.append(str(t.min - 1))
        if t.max is not None:
            bad.append(str(t.max + 1))
        return bad
    if isinstance(t, click.FloatRange):
        bad = ["abc"]
        if t.min is not None:
            bad.append(str(t.min - 1))
        if t.max is not None:
            bad.append(str(t.max + 1))
        return bad
    if t is click.INT or t is click.FLOAT:
        return ["abc"]
    if isinstance(t, click.Path) and t.exists:
        return ["/no/such/path/cipherfuse"]
    return []


def _cases() -> list[tuple[str, ...]]:
    cases: list[tuple[str, ...]] = []

    def walk(command: click.Command, path: tuple[str, ...]) -> None:
        if isinstance(command, click.Group):
            for name, sub in sorted(command.commands.items()):
                walk(sub, (*path, name))
            return
        for param in command.params:
            if isinstance(param, click.Option):
                for value in _bad_values(param):
                    cases.append((*path, param.opts[0], value))

    walk(cli, ())
    return cases


CASES = _cases()


def test_the_walk_covers_the_commands_and_types() -> None:
    commands = {c[0] for c in CASES}
    assert {"demo", "initiator", "contributor", "verifier", "testbed", "reproduce"} <= commands
    options = {c[-2] for c in CASES}
    assert {"--seed", "--contract", "--account", "--task-id", "--rpc-url"} <= options


@pytest.mark.parametrize("argv", CASES, ids=[" ".join(c) for c in CASES])
def test_a_bad_option_value_is_one_line_and_exit_2(
    argv: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(list(argv)) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error: "), captured.err
    assert captured.err.count("\n") == 1, captured.err
    assert "Traceback" not in captured.err + captured.out


ISSUE_MISTAKES = [
    ["demo", "--seed", "-1"],
    ["demo", "--seed", str(2**64)],
    [
        "initiator",
        "--rpc-url",
        "http://127.0.0.1:1",
        "--contract",
        "0x1234",
        "--account",
        "1",
        "--workdir",
        "w",
    ],
    [
        "contributor",
        "--rpc-url",
        "http://127.0.0.1:1",
        "--contract",
        "notanaddress",
        "--account",
        "1",
        "--workdir",
        "w",
        "--task-id",
        "1",
    ],
    [
        "verifier",
        "--rpc-url",
        "http://127.0.0.1:1",
        "--contract",
        "0x" + "ab" * 20,
        "--account",
        "1",
        "--workdir",
        "w",
        "--task-id",
        "-3",
    ],
    [
        "contributor",
        "--rpc-url",
        "http://127.0.0.1:1",
        "--contract",
        "0x" + "ab" * 20,
        "--account",
        "1",
        "--workdir",
        "w",
    ],
    ["demo", "--behaviour", "lazy"],
    ["demo", "--params", "insecure"],
    ["demo", "--fresh"],
    ["demo", "--report", "/no/such/folder/report.json"],
    ["store", "get", "bafy", "-o", "/no/such/folder/out"],
]


@pytest.mark.parametrize("argv", ISSUE_MISTAKES, ids=[" ".join(a) for a in ISSUE_MISTAKES])
def test_the_issues_mistakes_get_one_line(
    argv: list[str],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err


def test_task_id_below_one_says_what_it_must_be(capsys: pytest.CaptureFixture[str]) -> None:
    main(["verifier", "--task-id", "-3"])
    assert "-3 is not in the range x>=1" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('account = "two"', "account must be an integer"),
        ('index = "1"', "index must be an integer"),
        ("seed = -1", "--seed must be in 0.."),
        ("task_id = -3", "--task-id must be >= 1"),
        ('contract = "0x1234"', "--contract must be a contract address"),
        ("quick = 1", "quick must be true or false"),
    ],
)
def test_toml_settings_are_type_checked(tmp_path: Path, body: str, message: str) -> None:
    good = {
        "rpc_url": '"http://127.0.0.1:8545"',
        "contract": '"0x' + "ab" * 20 + '"',
        "account": "2",
        "workdir": '"w"',
        "task_id": "1",
    }
    key = body.split(" = ")[0]
    good.pop(key, None)
    path = tmp_path / "role.toml"
    path.write_text("\n".join([f"{k} = {v}" for k, v in good.items()] + [body]) + "\n")
    with pytest.raises(RoleConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        load_role_config(path, role="contributor").validate()


def test_store_get_refuses_to_overwrite_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "in.bin"
    src.write_bytes(b"content")
    store = str(tmp_path / "store")
    assert main(["store", "add", "--store", store, str(src)]) == 0
    cid = capsys.readouterr().out.strip()
    out = tmp_path / "out.bin"
    out.write_bytes(b"precious")
    assert main(["store", "get", "--store", store, "-o", str(out), cid]) == 2
    assert "add --force" in capsys.readouterr().err
    assert out.read_bytes() == b"precious"
    assert main(["store", "get", "--store", store, "-o", str(out), "--force", cid]) == 0
    assert out.read_bytes() == b"content"


def test_he_params_json_has_every_field_the_text_shows() -> None:
    from cipherfuse import he

    assert main(["he", "params", "paper"]) == 0  # smoke; the text is compared below
    text = subprocess.run(
        [sys.executable, "-m", "cipherfuse", "he", "params", "paper"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    data = json.loads(
        subprocess.run(
            [sys.executable, "-m", "cipherfuse", "he", "params", "paper", "--json"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert data["w_log2"] == 64 - he.PAPER.plaintext_bits
    assert f"2^{data['w_log2']}" in text
    assert data["fresh_noise_bound"] == he.PAPER.fresh_noise_bound()
    assert f"<= {data['fresh_noise_bound']}" in text
    for key in (line.split()[0] for line in text.splitlines() if not line.startswith("WARN")):
        if key not in ("w", "fresh"):
            assert key in data


def test_python_dash_m_cipherfuse_works() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "cipherfuse", "--version"], capture_output=True, text=True
    )
    assert res.returncode == 0 and "cipherfuse" in res.stdout


def _groups(command: click.Command, path: tuple[str, ...]) -> list[tuple[str, ...]]:
    if not isinstance(command, click.Group):
        return []
    found = [path]
    for name, sub in sorted(command.commands.items()):
        found += _groups(sub, (*path, name))
    return found


@pytest.mark.parametrize("path", _groups(cli, ()), ids=lambda p: " ".join(p) or "cipherfuse")
def test_command_summaries_are_not_cut(
    path: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main([*path, "--help"], prog_name="cipherfuse", standalone_mode=True)
    assert info.value.code == 0
    listing = capsys.readouterr().out.split("Commands:", 1)[1]
    assert "..." not in listing
    if path == ("reproduce",):
        assert "Case Study I (Figs. 11-12): local accuracies" in " ".join(listing.split())


@pytest.mark.parametrize("role", ["initiator", "contributor", "verifier"])
def test_required_role_options_are_marked(role: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main([role, "--help"], prog_name="cipherfuse", standalone_mode=True)
    text = " ".join(capsys.readouterr().out.split())
    for option in ("--rpc-url", "--contract", "--account", "--workdir"):
        assert option in text
    # --account is optional with --keystore (it then only names the role's files).
    assert text.count("[required unless --config gives it]") == (3 if role == "initiator" else 4)


def test_node_is_an_alias_of_chain_node() -> None:
    assert cli.commands["node"] is cli.commands["chain"].commands["node"]  # type: ignore[attr-defined]
