"""The persistent compilation cache: entries written atomically, hit by a later process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cipherfuse.nn import compilation_cache

_PROBE = """
import json, jax, jax.numpy as jnp
events = []
jax.monitoring.register_event_listener(lambda name, **kw: events.append(name))
import cipherfuse.nn as nn
folder = nn.enable_compilation_cache()
value = float(jax.jit(lambda x: jnp.sin(x) * 3 + 1)(jnp.float32(0.5)))
print(json.dumps({"folder": None if folder is None else str(folder), "value": value,
                  "hits": events.count("/jax/compilation_cache/cache_hits"),
                  "misses": events.count("/jax/compilation_cache/cache_misses")}))
"""


def _probe(cache: str) -> dict[str, object]:
    env = {**os.environ, compilation_cache.ENV_VAR: cache}
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], env=env, check=True, capture_output=True, text=True
    )
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_a_second_process_loads_what_the_first_compiled(tmp_path: Path) -> None:
    first = _probe(str(tmp_path))
    assert first["folder"] is not None
    folder = Path(str(first["folder"]))
    assert folder.parent == tmp_path and folder.name.startswith("jax-")
    entries = sorted(p.name for p in folder.iterdir())
    assert entries and all(name.endswith("-cache") for name in entries)  # no temp files left
    assert first["misses"] and not first["hits"]
    second = _probe(str(tmp_path))
    assert second["value"] == first["value"]
    assert second["hits"] == first["misses"] and not second["misses"]
    assert sorted(p.name for p in folder.iterdir()) == entries


def test_off_disables_the_cache(tmp_path: Path) -> None:
    result = _probe("off")
    assert result["folder"] is None and not result["hits"]


def test_default_folder_is_per_machine_in_the_user_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(compilation_cache.ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    folder = compilation_cache.default_cache_dir()
    assert folder is not None and folder.parent == tmp_path / "cipherfuse" / "jax"
    monkeypatch.setenv(compilation_cache.ENV_VAR, "off")
    assert compilation_cache.default_cache_dir() is None


def test_atomic_file_cache_round_trip_and_first_write_wins(tmp_path: Path) -> None:
    cache_class = compilation_cache._atomic_file_cache_class()
    assert cache_class is not None
    cache = cache_class(str(tmp_path))
    assert cache.get("k1") is None
    cache.put("k1", b"executable")
    cache.put("k1", b"other")  # an existing entry is kept
    assert cache.get("k1") == b"executable"
    assert [p.name for p in tmp_path.iterdir()] == ["k1-cache"]
    with pytest.raises(ValueError, match="invalid compilation cache key"):
        cache.put("../escape", b"x")


def test_the_test_session_does_not_use_the_user_cache() -> None:
    """tests/conftest.py points the cache at a temporary folder (or the caller's choice)."""
    folder = compilation_cache.default_cache_dir()
    user = Path.home() / ".cache" / "cipherfuse"
    xdg = os.environ.get("XDG_CACHE_HOME")
    assert folder is None or not folder.is_relative_to(user)
    assert folder is None or xdg is None or not folder.is_relative_to(Path(xdg) / "cipherfuse")
