"""The paradigm's roles as event-driven agents over the chain and the store.

- :mod:`~cipherfuse.roles.initiator`: the application initiator (keys, task, decryption,
  MetaModel).
- :mod:`~cipherfuse.roles.contributor`: a computing contributor (train, encrypt, seal,
  claim, release).
- :mod:`~cipherfuse.roles.verifier`: a verification contributor (judge in cipherspace,
  commit-reveal vote).
- :mod:`~cipherfuse.roles.sealing`: the sealed upload, the
  on-chain envelope and the key boxes for the committee.
- :mod:`~cipherfuse.roles.state`: crash-safe persisted state; :mod:`~cipherfuse.roles.clock`:
  stepping agents and skipping idle dev-chain time; :mod:`~cipherfuse.roles.demo`: the
  one-process demo.
- :mod:`~cipherfuse.roles.config`: the task terms and a role process's settings (flags or
  TOML); :mod:`~cipherfuse.roles.process`: one role as its own process;
  :mod:`~cipherfuse.roles.testbed`: the 1 + 3 + 3 roles as 7 supervised processes.

The learning work (:mod:`~cipherfuse.roles.workload`) needs :mod:`cipherfuse.he.nn`; it is
imported by the modules that use it, not here.
"""

from __future__ import annotations

from cipherfuse.roles.errors import RoleConfigError, RolesError, RoleStateError, SealError

__all__ = ["RoleConfigError", "RoleStateError", "RolesError", "SealError"]
