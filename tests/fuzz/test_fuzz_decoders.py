"""Fuzz every decoder of untrusted bytes: only typed errors or exact round-trips come out.

Short by default (a few hundred examples per decoder and input shape, for CI). Longer runs::

    CIPHERFUSE_FUZZ_EXAMPLES=20000 pytest tests/fuzz -q
    pytest tests/fuzz -q --hypothesis-profile=fuzz      # 20,000 examples per test

The seed corpus (``targets.hostile_corpus``: 70,000-deep JSON, DAG bombs, kernel shapes
whose product wraps int64, huge and truncated length fields) runs on every invocation.
For coverage-guided runs, ``python -m tests.fuzz.atheris_main TARGET`` (needs ``atheris``).
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cipherfuse.errors import CipherfuseError
from tests.fuzz.targets import TARGETS, Target, hostile_corpus, reseal

_default = settings.default.max_examples
EXAMPLES = int(os.environ.get("CIPHERFUSE_FUZZ_EXAMPLES", "0")) or (
    _default if _default > 100 else 200
)
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)
NAMES = sorted(TARGETS)
CORPUS = hostile_corpus()


def check(target: Target, data: bytes) -> None:
    """The contract: a typed error, or a value that re-encodes to exactly ``data``."""
    try:
        value = target.decode(data)
    except CipherfuseError:
        return
    if target.encode is not None:
        assert target.encode(value) == data, "accepted bytes that differ from the encoding"


def mutate(data: bytes, edits: list[tuple[int, int, int]]) -> bytes:
    """Apply (kind, position, value) edits: flip, insert, delete, truncate, overwrite u32."""
    buf = bytearray(data)
    for kind, pos, value in edits:
        if not buf:
            buf.append(value & 0xFF)
            continue
        i = pos % len(buf)
        if kind == 0:
            buf[i] ^= 1 << (value % 8)
        elif kind == 1:
            buf.insert(i, value & 0xFF)
        elif kind == 2:
            del buf[i]
        elif kind == 3:
            del buf[i:]
        else:
            buf[i : i + 4] = (value * 0x01000193 & 0xFFFFFFFF).to_bytes(4, "little")
    return bytes(buf)


EDITS = st.lists(
    st.tuples(st.integers(0, 4), st.integers(0, 1 << 30), st.integers(0, 1 << 32)),
    min_size=1,
    max_size=8,
)


@pytest.mark.parametrize("name", NAMES)
def test_valid_samples_round_trip(name: str) -> None:
    target = TARGETS[name]
    for sample in target.samples():
        value = target.decode(sample)
        if target.encode is not None:
            assert target.encode(value) == sample


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_hostile_corpus_gives_typed_errors(name: str) -> None:
    for data in CORPUS[name]:
        with pytest.raises(CipherfuseError):
            TARGETS[name].decode(data)


@pytest.mark.parametrize("name", NAMES)
@FUZZ
@given(data=st.binary(max_size=2048))
def test_random_bytes(name: str, data: bytes) -> None:
    check(TARGETS[name], data)


@pytest.mark.parametrize("name", [n for n in NAMES if TARGETS[n].samples()])
@FUZZ
@given(choice=st.integers(0, 1 << 16), edits=EDITS, resealed=st.booleans())
def test_mutated_samples(name: str, choice: int, edits: Any, resealed: bool) -> None:
    """Mutations of valid inputs, also behind a recomputed checksum (as an attacker would)."""
    target = TARGETS[name]
    samples = target.samples()
    data = mutate(samples[choice % len(samples)], edits)
    check(target, reseal(data) if resealed else data)


@pytest.mark.parametrize("name", sorted(CORPUS))
@FUZZ
@given(choice=st.integers(0, 1 << 16), edits=EDITS, resealed=st.booleans())
def test_mutated_hostile_corpus(name: str, choice: int, edits: Any, resealed: bool) -> None:
    corpus = CORPUS[name]
    data = mutate(corpus[choice % len(corpus)], edits)
    check(TARGETS[name], reseal(data) if resealed else data)
