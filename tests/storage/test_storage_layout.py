"""The streaming importer against an independent port of Kubo's recursive balanced layout."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cipherfuse.errors import ParameterError
from cipherfuse.storage import CID, FileImporter, compute_cid
from cipherfuse.storage.cid import DAG_PB, RAW
from cipherfuse.storage.protobuf import PBLink, PBNode, UnixFSData, encode_pbnode, encode_unixfs


class _KuboBalanced:
    """Direct transcription of boxo importer/balanced Layout + fillNodeRec."""

    def __init__(self, data: bytes, chunk: int, max_links: int, version: int) -> None:
        self.chunks = [data[i : i + chunk] for i in range(0, len(data), chunk)]
        self.max_links = max_links
        self.version = version

    def done(self) -> bool:
        return not self.chunks

    def leaf(self) -> tuple[CID, int, int]:
        data = self.chunks.pop(0)
        if self.version == 1:
            return CID(1, RAW, hashlib.sha256(data).digest()), len(data), len(data)
        block = encode_pbnode(PBNode(encode_unixfs(UnixFSData(2, data, len(data)))))
        return CID.for_block(block, DAG_PB, 0), len(block), len(data)

    def commit(self, children: list[tuple[CID, int, int]]) -> tuple[CID, int, int]:
        fs = sum(c[2] for c in children)
        unixfs = encode_unixfs(UnixFSData(2, None, fs, tuple(c[2] for c in children)))
        links = tuple(PBLink(c[0].to_bytes(), c[1]) for c in children)
        block = encode_pbnode(PBNode(unixfs, links))
        cid = CID.for_block(block, DAG_PB, self.version)
        return cid, len(block) + sum(c[1] for c in children), fs

    def fill(self, children: list[tuple[CID, int, int]], depth: int) -> tuple[CID, int, int]:
        while len(children) < self.max_links and not self.done():
            children.append(self.leaf() if depth == 1 else self.fill([], depth - 1))
        return self.commit(children)

    def layout(self) -> str:
        root = self.leaf()
        depth = 1
        while not self.done():
            root = self.fill([root], depth)
            depth += 1
        return str(root[0])


@settings(max_examples=60, deadline=None)
@given(
    size=st.integers(min_value=1, max_value=400),
    chunk=st.integers(min_value=1, max_value=9),
    max_links=st.integers(min_value=2, max_value=5),
    version=st.sampled_from([0, 1]),
)
def test_streaming_importer_equals_recursive_layout(
    size: int, chunk: int, max_links: int, version: int
) -> None:
    data = hashlib.shake_256(f"{size}".encode()).digest(size)
    expected = _KuboBalanced(data, chunk, max_links, version).layout()
    assert compute_cid(data, version, chunk_size=chunk, max_links=max_links) == expected


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=50), max_size=20))
def test_write_split_does_not_matter(pieces: list[int]) -> None:
    data = hashlib.shake_256(b"x").digest(sum(pieces))
    importer = FileImporter(0, chunk_size=7, max_links=3)
    pos = 0
    for n in pieces:
        importer.write(data[pos : pos + n])
        pos += n
    assert str(importer.finish().cid) == compute_cid(data, chunk_size=7, max_links=3)


def test_cidv1_uses_raw_leaves_and_base32() -> None:
    blocks: list[CID] = []
    importer = FileImporter(1, chunk_size=4, max_links=3, sink=lambda c, _p: blocks.append(c))
    importer.write(b"0123456789")
    root = importer.finish().cid
    assert [b.codec for b in blocks[:3]] == [RAW, RAW, RAW]
    assert root.codec == DAG_PB
    assert root.version == 1
    assert str(root).startswith("bafy")
    assert compute_cid(b"abc", 1).startswith("bafkrei")  # single chunk: the raw block


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"cid_version": 2}, "cid_version"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"chunk_size": 2 * 1024 * 1024}, "chunk_size"),
        ({"max_links": 1}, "max_links"),
    ],
)
def test_bad_parameters(kwargs: dict[str, int], match: str) -> None:
    with pytest.raises(ParameterError, match=match):
        compute_cid(b"x", **kwargs)


def test_bad_content_types(tmp_path: object) -> None:
    with pytest.raises(ParameterError, match="not an existing regular file"):
        compute_cid("/nonexistent/file")
    with pytest.raises(ParameterError, match="content must be"):
        compute_cid(12)  # type: ignore[arg-type]
