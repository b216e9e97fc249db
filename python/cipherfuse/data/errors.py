"""Errors raised by :mod:`cipherfuse.data`."""

from __future__ import annotations

from cipherfuse.errors import CipherfuseError


class DatasetError(CipherfuseError, ValueError):
    """A dataset file is missing, truncated or corrupt, or a split cannot be drawn.

    The message names the file (or the split parameter) and says what to do.
    """


class DownloadError(DatasetError, OSError):
    """No mirror delivered a file whose md5 matches the published checksum."""
