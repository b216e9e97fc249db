"""Typed errors of the roles layer (all :class:`~cipherfuse.errors.CipherfuseError`)."""

from __future__ import annotations

from cipherfuse.errors import CipherfuseError


class RolesError(CipherfuseError):
    """Base class of the roles layer's errors."""


class RoleConfigError(RolesError, ValueError):
    """A role's configuration (flags or TOML file) is missing or out of range."""


class SealError(RolesError, ValueError):
    """A sealed model, key box or envelope is malformed, tampered with or does not match."""


class RoleStateError(RolesError, ValueError):
    """A persisted role state file is corrupt, of another version or of another role."""


class StaleWorkdirError(RoleConfigError):
    """A work folder holds state that cannot be resumed (its chain is gone or differs)."""
