"""``compute_cid``: the CID ``ipfs add --only-hash`` would print, without storing."""

from __future__ import annotations

from cipherfuse.storage.importer import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_MAX_LINKS,
    FileImporter,
    ImportResult,
)
from cipherfuse.storage.source import Content, iter_chunks


def import_content(
    content: Content,
    *,
    cid_version: int = 0,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    max_links: int = DEFAULT_MAX_LINKS,
    importer: FileImporter | None = None,
) -> ImportResult:
    """Stream ``content`` through a :class:`FileImporter` and return the result."""
    if importer is None:
        importer = FileImporter(cid_version, chunk_size=chunk_size, max_links=max_links)
    for chunk in iter_chunks(content, importer.chunk_size):
        importer.write_chunk(chunk)
    return importer.finish()


def compute_cid(
    content: Content,
    cid_version: int = 0,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    max_links: int = DEFAULT_MAX_LINKS,
) -> str:
    """Return the CID Kubo's ``ipfs add --only-hash`` gives for ``content``.

    ``content`` is bytes-like, a path to a regular file, or a binary file object; it
    is read one chunk at a time, so memory stays flat for any size. ``cid_version=0``
    gives Kubo's default ``Qm...``; ``cid_version=1`` matches ``--cid-version=1``
    (raw leaves, base32). ``chunk_size``/``max_links`` correspond to Kubo's
    ``--chunker=size-N`` and ``Import.UnixFSFileMaxLinks``.
    """
    result = import_content(
        content, cid_version=cid_version, chunk_size=chunk_size, max_links=max_links
    )
    return str(result.cid)
