"""Test-session settings shared by every test area.

The persistent JAX compilation cache (:mod:`cipherfuse.nn.compilation_cache`) is
pointed at a temporary folder for the session, before any test imports
``cipherfuse.nn``, so the tests never write into the user's cache folder
(subprocesses started by tests inherit the setting). A cache folder given
explicitly in ``CIPHERFUSE_JAX_CACHE_DIR`` (or ``off``) is kept.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

_CACHE_ENV = "CIPHERFUSE_JAX_CACHE_DIR"  # cipherfuse.nn.compilation_cache.ENV_VAR

if _CACHE_ENV not in os.environ:
    _session_cache = tempfile.mkdtemp(prefix="cipherfuse-test-jax-cache-")
    os.environ[_CACHE_ENV] = _session_cache
    atexit.register(shutil.rmtree, _session_cache, True)
