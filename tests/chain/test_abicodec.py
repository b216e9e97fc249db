"""FunctionCodec against web3's own contract objects: the same call data, the same results."""

from __future__ import annotations

from dataclasses import astuple

import pytest
from hexbytes import HexBytes

from cipherfuse.chain import Chain, ChainError, ChainParameterError, TasksContract
from cipherfuse.chain.abicodec import FunctionCodec, abi_type

from .helpers import DEFAULT_PARAMS, det_bytes, setup_task


def test_call_data_matches_web3(tasks: TasksContract) -> None:
    calls = [
        ("publishTask", ["ipfs://objective", astuple(DEFAULT_PARAMS)]),
        ("joinAsVerifier", [7, det_bytes("key"), b"10.0.0.1:7400"]),
        ("submitClaim", [3, "bafy-x", det_bytes("m"), 2**40, det_bytes("s"), det_bytes("e")]),
        ("postKeyBoxes", [5, [b"\x01" * 98, b"", b"\x02" * 3]]),
        ("revealVote", [9, True, det_bytes("salt")]),
        ("withdraw", []),
        ("getParticipant", [1, tasks.chain.accounts[3]]),
    ]
    for name, args in calls:
        expected = bytes(HexBytes(tasks.contract.encode_abi(name, args=args)))
        assert tasks.codec.encode(name, args) == expected, name


def test_results_match_web3(chain: Chain, tasks: TasksContract) -> None:
    s = setup_task(chain, tasks, contributors=1, verifiers=3)
    s.to_claim_window()
    h = s.claim(s.contributors[0])
    s.draw(h)
    member = tasks.committee_of(h.claim_id)[0]
    for name, args in [
        ("getTask", [s.task_id]),
        ("getClaim", [h.claim_id]),
        ("committeeOf", [h.claim_id]),
        ("verifierKeyOf", [s.task_id, member]),
        ("ballotOf", [h.claim_id, member]),
        ("getParticipant", [s.task_id, h.claimant]),
        ("taskCount", []),
    ]:
        ours = tasks._call(name, *args)
        theirs = getattr(tasks.contract.functions, name)(*args).call()
        assert _plain(ours) == _plain(theirs), name
    # Addresses come back checksummed, inside structs and arrays too.
    assert tasks._call("getTask", s.task_id)[0] == s.initiator
    assert tasks._call("committeeOf", h.claim_id) == tasks.committee_of(h.claim_id)


def _plain(value: object) -> object:
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return bytes(value)
    return value


def test_refuses_what_does_not_fit(tasks: TasksContract) -> None:
    codec = tasks.codec
    with pytest.raises(ChainParameterError, match="no function 'nope'"):
        codec.encode("nope", [])
    with pytest.raises(ChainParameterError, match="takes 0 arguments"):
        codec.encode("withdraw", [1])
    with pytest.raises(ChainParameterError, match="takes 1 arguments"):
        codec.encode("taskHoldings", [])
    with pytest.raises(ChainParameterError, match="do not fit"):
        codec.encode("taskHoldings", [-1])
    with pytest.raises(ChainParameterError, match="do not fit"):
        codec.encode("revealVote", [1, True, b"\x01" * 33])
    with pytest.raises(ChainError, match="undecodable result of getTask"):
        codec.decode("getTask", b"\x00" * 31)


def test_overloads_and_tuple_types_are_handled() -> None:
    fn = {"type": "function", "name": "f", "inputs": [], "outputs": []}
    with pytest.raises(ChainError, match="overloads 'f'"):
        FunctionCodec([fn, fn])
    nested = {
        "type": "tuple[]",
        "components": [{"type": "uint8"}, {"type": "tuple", "components": [{"type": "bool"}]}],
    }
    assert abi_type(nested) == "(uint8,(bool))[]"
