"""JAX's persistent compilation cache in the user cache folder, safe for concurrent processes.

Every jitted function of cipherfuse (training steps, forward passes, fusion heads,
the limb first block) is compiled by XLA the first time it meets a shape; the
compiled executable is then kept on disk, keyed by JAX on the computation, its
shapes, the JAX/XLA versions and the compile options, so later processes (a
second ``cipherfuse demo``, the contributors and verifiers of one task, the test
suite) load it instead of compiling again.

Where: ``$CIPHERFUSE_JAX_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/cipherfuse/jax``
(``~/.cache/cipherfuse/jax``), in a sub-folder per machine type and JAX version,
so executables compiled for one CPU are never loaded on another.
``CIPHERFUSE_JAX_CACHE_DIR=off`` disables the cache.

Safety: each entry is written to a temporary file in the cache folder and renamed
into place (atomic on POSIX), so a reader sees either no entry or a complete one,
whatever other processes do at the same time or if a writer dies; two processes
compiling the same key write identical executables and the last rename wins. An
entry that cannot be read is reported by JAX as a warning and recompiled. The
cache is only a speed-up: results do not depend on it.
"""

from __future__ import annotations

import hashlib
import os
import platform
import threading
from pathlib import Path
from typing import Any

import jax

from cipherfuse.files import atomic_write_bytes

ENV_VAR = "CIPHERFUSE_JAX_CACHE_DIR"
_lock = threading.Lock()
_enabled: Path | None = None
_tried = False


def default_cache_dir() -> Path | None:
    """The cache folder this machine uses, or None when disabled by the environment."""
    configured = os.environ.get(ENV_VAR)
    if configured is not None and configured.strip().lower() in ("", "0", "off", "none"):
        return None
    if configured:
        base = Path(configured).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = (Path(xdg) if xdg else Path.home() / ".cache") / "cipherfuse" / "jax"
    return base / _machine_tag()


def _machine_tag() -> str:
    """JAX version, machine type and a digest of the CPU's feature flags."""
    flags = ""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith(("flags", "Features")):
                    flags = line.split(":", 1)[1].strip()
                    break
    except OSError:
        flags = platform.processor()
    digest = hashlib.sha256(flags.encode()).hexdigest()[:12]
    return f"jax-{jax.__version__}-{platform.machine()}-{digest}"


def _atomic_file_cache_class() -> type | None:
    """A JAX ``CacheInterface`` writing entries atomically (None if JAX lacks the hook)."""
    try:
        from jax._src import compilation_cache as jax_cache
        from jax._src.compilation_cache_interface import CacheInterface
    except ImportError:
        return None
    if not hasattr(jax_cache, "get_file_cache"):
        return None

    class AtomicFileCache(CacheInterface):
        """One file per key; written to a temporary name, then renamed into place."""

        def __init__(self, path: str) -> None:
            self._path = Path(path)
            self._path.mkdir(parents=True, exist_ok=True)

        def _file(self, key: str) -> Path:
            if not key or "/" in key or key.startswith("."):
                raise ValueError(f"invalid compilation cache key {key!r}")
            return self._path / f"{key}-cache"

        def get(self, key: str) -> bytes | None:
            try:
                return self._file(key).read_bytes()
            except FileNotFoundError:
                return None

        def put(self, key: str, value: bytes) -> None:
            target = self._file(key)
            if target.exists():
                return
            # 0600, no fsync: losing an entry on a crash only costs a recompile.
            atomic_write_bytes(target, value, mode=0o600, durable=False, parents=False)

    return AtomicFileCache


def enable_compilation_cache(path: str | os.PathLike[str] | None = None) -> Path | None:
    """Turn on the persistent compilation cache (idempotent); return its folder or None.

    ``path`` overrides :func:`default_cache_dir`. Returns None (and changes nothing)
    when the cache is disabled by ``CIPHERFUSE_JAX_CACHE_DIR=off``, the folder cannot
    be created, or this JAX version offers no atomic-write hook.
    """
    global _enabled, _tried
    with _lock:
        if _enabled is not None or (_tried and path is None):
            return _enabled
        _tried = True
        folder = Path(path) if path is not None else default_cache_dir()
        cache_class = _atomic_file_cache_class()
        if folder is None or cache_class is None:
            return None
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            return None
        from jax._src import compilation_cache as jax_cache

        def get_file_cache(cache_path: str) -> Any:
            return cache_class(cache_path), cache_path

        # JAX builds its file cache through this factory when the first computation
        # is compiled; ours writes atomically (JAX's own writes in place).
        setattr(jax_cache, "get_file_cache", get_file_cache)  # noqa: B010
        jax.config.update(  # type: ignore[no-untyped-call]
            "jax_compilation_cache_dir", str(folder)
        )
        # Cache every executable: the demo's many small compilations (0.1-1 s each)
        # are what dominate its start-up, not a few long ones.
        jax.config.update(  # type: ignore[no-untyped-call]
            "jax_persistent_cache_min_compile_time_secs", 0.0
        )
        jax.config.update(  # type: ignore[no-untyped-call]
            "jax_persistent_cache_min_entry_size_bytes", -1
        )
        _enabled = folder
        return folder
