"""Exception hierarchy shared by every cipherfuse subpackage.

Every error raised on bad input derives from :class:`CipherfuseError`, so a
caller can catch all of them at once; each also derives from the closest
built-in exception (``ValueError``, ``OSError``...) so generic handlers work.
Subpackages define their own subclasses next to their code.
"""

from __future__ import annotations


class CipherfuseError(Exception):
    """Base class of all errors raised by cipherfuse."""


class ParameterError(CipherfuseError, ValueError):
    """A parameter is outside its allowed range; the message names it and the range."""


class SerializationError(CipherfuseError, ValueError):
    """Serialized data is corrupt, truncated, of an unknown version or of the wrong kind."""
